"""InformationRetrievalEvaluator against sentence-transformers 6.2: same keys, same values (1e-6), same errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sentence_transformers.sentence_transformer.evaluation import (
    InformationRetrievalEvaluator as STInformationRetrievalEvaluator,
)
from sentence_transformers.util import cos_sim, dot_score

from kosim.data.retrieval_task import kornli_retrieval_task
from kosim.evaluation.information_retrieval import InformationRetrievalEvaluator
from kosim.model import SentenceEncoder

ALL_K = dict(
    mrr_at_k=[1, 10, 100],
    ndcg_at_k=[1, 5, 10, 100],
    accuracy_at_k=[1, 3, 5, 10],
    precision_recall_at_k=[1, 3, 5, 10, 100],
    map_at_k=[5, 100],
)
BOTH = {"cosine": cos_sim, "dot": dot_score}


class _CardData:
    def set_evaluation_metrics(self, *args, **kwargs) -> None:
        pass


class TableEncoder:
    """A fixed embedding per text, with the surface sentence-transformers' evaluator calls."""

    def __init__(self, table: dict[str, np.ndarray], similarity_fn_name: str = "cosine") -> None:
        self.table = table
        self.similarity_fn_name = similarity_fn_name
        self.prompts: dict[str, str] = {}
        self.model_card_data = _CardData()
        self.calls = 0

    def similarity(self, a, b):
        return cos_sim(a, b) if self.similarity_fn_name == "cosine" else dot_score(a, b)

    def encode(self, texts, convert_to_tensor: bool = False, truncate_dim=None, **kwargs):
        self.calls += 1
        out = np.stack([self.table[t] for t in texts])
        out = out[:, :truncate_dim] if truncate_dim else out
        return torch.from_numpy(out) if convert_to_tensor else out

    encode_query = encode
    encode_document = encode


def random_task(seed: int = 0, n_queries: int = 40, n_docs: int = 150, dim: int = 8, duplicates: bool = True):
    rng = np.random.default_rng(seed)
    queries = {f"q{i:03d}": f"query {i}" for i in range(n_queries)}
    corpus = {f"d{i:03d}": f"doc {i}" for i in range(n_docs)}
    table = {t: rng.standard_normal(dim).astype(np.float32) for t in [*queries.values(), *corpus.values()]}
    if duplicates:  # runs of equal documents: exact ties inside and across the top-k cut-off
        for i in range(0, 45, 3):
            table[f"doc {i + 1}"] = table[f"doc {i + 2}"] = table[f"doc {i}"]
    relevant = {
        qid: {f"d{j:03d}" for j in rng.choice(n_docs, size=int(rng.integers(1, 6)), replace=False)}
        for qid in list(queries)[:-3]  # the last queries have no judgements and are skipped
    }
    relevant["q001"] = {"d001", "d002"}
    return queries, corpus, relevant, table


def assert_same(ours: dict[str, float], ref: dict[str, float], tol: float = 1e-6) -> None:
    assert list(ours) == list(ref)
    worst = max(abs(ours[k] - ref[k]) for k in ref)
    assert worst <= tol, {k: (ours[k], ref[k]) for k in ref if abs(ours[k] - ref[k]) > tol}


@pytest.mark.parametrize("chunk", [7, 50, 1000])
@pytest.mark.parametrize("functions", [None, BOTH, {"dot": dot_score}])
def test_equal_to_sentence_transformers_on_the_same_embeddings(chunk, functions):
    queries, corpus, relevant, table = random_task()
    model = TableEncoder(table)
    kwargs = dict(name="toy", corpus_chunk_size=chunk, score_functions=functions, **ALL_K)
    ref = STInformationRetrievalEvaluator(queries, corpus, relevant, write_csv=False, **kwargs)(model)
    ours = InformationRetrievalEvaluator(queries, corpus, relevant, **kwargs)
    assert_same(ours(model), ref)
    assert ours.metric_keys == list(ref)
    assert ours.primary_metric in ref


def test_every_score_tied_follows_corpus_id_order_for_any_chunk_size():
    queries, corpus, relevant, table = random_task()
    constant = TableEncoder({t: np.ones(8, dtype=np.float32) for t in table})
    results = []
    for chunk in (1, 7, 1000):
        ref = STInformationRetrievalEvaluator(queries, corpus, relevant, corpus_chunk_size=chunk, write_csv=False)
        ours = InformationRetrievalEvaluator(queries, corpus, relevant, corpus_chunk_size=chunk)(constant)
        assert_same(ours, ref(constant))
        results.append(ours)
    assert results[0] == results[1] == results[2]


def test_integer_ids_truncate_dim_and_default_cutoffs():
    queries, corpus, relevant, table = random_task(seed=3, duplicates=False)
    as_int = lambda key: int(key[1:])  # noqa: E731
    queries = {as_int(k): v for k, v in queries.items()}
    corpus = {as_int(k): v for k, v in corpus.items()}
    relevant = {as_int(k): {as_int(c) for c in v} for k, v in relevant.items()}
    model = TableEncoder(table)
    ref = STInformationRetrievalEvaluator(queries, corpus, relevant, truncate_dim=4, write_csv=False)(model)
    assert_same(InformationRetrievalEvaluator(queries, corpus, relevant, truncate_dim=4)(model), ref)


def test_corpus_embeddings_and_primary_metric_choice():
    queries, corpus, relevant, table = random_task(seed=5)
    model = TableEncoder(table)
    ours = InformationRetrievalEvaluator(queries, corpus, relevant, score_functions=["cosine", "dot"], name="x")
    assert ours.primary_metric is None  # chosen by the first call, as sentence-transformers does
    ref_eval = STInformationRetrievalEvaluator(queries, corpus, relevant, score_functions=BOTH, name="x", write_csv=0)
    ref = ref_eval(model)
    embeddings = np.stack([table[t] for t in corpus.values()])
    calls = model.calls
    assert_same(ours(model, corpus_embeddings=embeddings), ref)
    assert model.calls == calls + 1  # only the queries were encoded
    assert ours.primary_metric == ref_eval.primary_metric
    fixed = InformationRetrievalEvaluator(queries, corpus, relevant, main_score_function="dot", name="x")
    assert fixed.primary_metric == "x_dot_ndcg@10"


def test_score_function_follows_the_model():
    queries, corpus, relevant, table = random_task(seed=2)
    dot_model = TableEncoder(table, similarity_fn_name="dot")
    ours = InformationRetrievalEvaluator(queries, corpus, relevant)
    result = ours(dot_model)
    assert set(result) == set(STInformationRetrievalEvaluator(queries, corpus, relevant, write_csv=False)(dot_model))
    assert ours.primary_metric == "dot_ndcg@10"
    assert "cosine_ndcg@10" in ours(TableEncoder(table)) and ours.primary_metric == "cosine_ndcg@10"


def _st_and_kosim(path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu"), SentenceEncoder.load(path)


@pytest.mark.parametrize("prompts", [False, True])
def test_minilm_on_the_kornli_task_equals_sentence_transformers(minilm, prompts):
    task = kornli_retrieval_task("dev", dev_size=60, seed=1)
    corpus = dict(list(task.corpus.items())[:240])
    corpus.update({cid: task.corpus[cid] for rel in task.relevant_docs.values() for cid in rel})
    st_model, model = _st_and_kosim(minilm)
    kwargs = dict(name="kornli", score_functions=BOTH, batch_size=64, **ALL_K)
    if prompts:
        kwargs.update(query_prompt="query: ", corpus_prompt="passage: ")
    ref = STInformationRetrievalEvaluator(task.queries, corpus, task.relevant_docs, write_csv=False, **kwargs)
    ours = InformationRetrievalEvaluator(task.queries, corpus, task.relevant_docs, **kwargs)
    assert_same(ours(model), ref(st_model))


@pytest.mark.parametrize("side", ["query", "corpus"])
def test_tiny_model_prompts_and_prompt_names(bert_dir, tmp_path, side):
    from sentence_transformers import SentenceTransformer

    st_model = SentenceTransformer(str(bert_dir), device="cpu")
    st_model.prompts = {"query": "질문: ", "document": "문서: ", "other": "다른 "}
    st_model.save(str(tmp_path / "m"))
    st_model = SentenceTransformer(str(tmp_path / "m"), device="cpu")
    model = SentenceEncoder.load(tmp_path / "m")
    task = kornli_retrieval_task("dev", dev_size=40, seed=3)
    corpus = {cid: task.corpus[cid] for rel in task.relevant_docs.values() for cid in rel}
    corpus.update(dict(list(task.corpus.items())[:200]))
    # The tiny vocabulary maps many Korean words to [UNK]: keep one document per token sequence, so no two documents
    # tie exactly in one library and only nearly in the other (their order would then differ).
    distinct = {tuple(ids): cid for cid, ids in zip(corpus, model.tokenize(list(corpus.values())))}
    corpus = {cid: corpus[cid] for cid in distinct.values()}
    relevant = {qid: rel & corpus.keys() for qid, rel in task.relevant_docs.items() if rel & corpus.keys()}
    for extra in ({}, {f"{side}_prompt_name": "other"}, {f"{side}_prompt": "검색: "}):
        kwargs = dict(score_functions=BOTH, **ALL_K, **extra)
        ref = STInformationRetrievalEvaluator(task.queries, corpus, relevant, write_csv=False, **kwargs)
        ours = InformationRetrievalEvaluator(task.queries, corpus, relevant, **kwargs)
        assert_same(ours(model), ref(st_model))


def test_model_prompts_are_used_without_encode_query():
    """A model with ``prompts`` but no ``encode_query`` gets its "query" / "document" prompt, as ST's would."""
    queries, corpus, relevant, table = random_task(seed=1, duplicates=False)

    class PromptedEncoder:
        prompts = {"query": "Q ", "passage": "P "}

        def __init__(self) -> None:
            self.seen: list[str | None] = []

        def encode(self, texts, batch_size=32, prompt=None, prompt_name=None, progress=None):
            self.seen.append(prompt_name)
            return np.stack([table[t] for t in texts])

    model = PromptedEncoder()
    InformationRetrievalEvaluator(queries, corpus, relevant)(model)
    assert model.seen == ["query", "passage"]


def test_bad_inputs_raise_clear_errors():
    queries, corpus, relevant, _ = random_task()
    make = InformationRetrievalEvaluator
    with pytest.raises(ValueError, match="queries is empty"):
        make({}, corpus, relevant)
    with pytest.raises(ValueError, match="none of the 2 queries has a relevant document"):
        make({"a": "x", "b": "y"}, corpus, relevant)
    with pytest.raises(ValueError, match="'nope', which is not a corpus id"):
        make(queries, corpus, {"q000": {"d000", "nope"}})
    with pytest.raises(ValueError, match="not a corpus id .*look like 'd000'"):
        make(queries, corpus, {"q000": {0}})
    with pytest.raises(ValueError, match="ndcg_at_k must hold positive ints, got 0"):
        make(queries, corpus, relevant, ndcg_at_k=[0])
    with pytest.raises(ValueError, match="map_at_k must name at least one k"):
        make(queries, corpus, relevant, map_at_k=[])
    with pytest.raises(ValueError, match="corpus_chunk_size must be a positive int"):
        make(queries, corpus, relevant, corpus_chunk_size=0)
    with pytest.raises(ValueError, match="write_csv=True is not supported"):
        make(queries, corpus, relevant, write_csv=True)
    with pytest.raises(ValueError, match="'cosine' or 'dot'; got 'manhattan'"):
        make(queries, corpus, relevant, score_functions=["manhattan"])
    with pytest.raises(ValueError, match=r"score_functions\['mine'\].*got '<lambda>'"):
        make(queries, corpus, relevant, score_functions={"mine": lambda a, b: a @ b.T})
    with pytest.raises(ValueError, match="main_score_function 'dot' is not a key"):
        make(queries, corpus, relevant, score_functions=["cosine"], main_score_function="dot")
    with pytest.raises(ValueError, match="query_prompt or query_prompt_name, not both"):
        make(queries, corpus, relevant, query_prompt="q: ", query_prompt_name="query")
    with pytest.raises(TypeError, match=r"relevant_docs\['q000'\] must be a set"):
        make(queries, corpus, {"q000": "d000"})
    with pytest.raises(TypeError, match=r"corpus\['d1'\] must be a str"):
        make(queries, {"d1": 3}, relevant)


def test_missing_relevant_documents_can_be_allowed_as_sentence_transformers_does():
    queries, corpus, relevant, table = random_task(seed=4, duplicates=False)
    relevant = {qid: rel | {"gone"} for qid, rel in relevant.items()}
    model = TableEncoder(table)
    ref = STInformationRetrievalEvaluator(queries, corpus, relevant, write_csv=False)(model)
    ours = InformationRetrievalEvaluator(queries, corpus, relevant, allow_missing_relevant=True)(model)
    assert_same(ours, ref)
    with pytest.raises(ValueError, match="model's similarity_fn_name"):
        InformationRetrievalEvaluator(queries, corpus, relevant, allow_missing_relevant=True)(
            TableEncoder(table, similarity_fn_name="euclidean")
        )
