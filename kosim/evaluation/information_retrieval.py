"""Information retrieval evaluation: rank a corpus for every query (`ir_ranking`) and score the ranking against
relevance sets (`ir_metrics`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from kosim.evaluation.common import progress_kwargs
from kosim.evaluation.ir_metrics import FAMILIES as _FAMILIES
from kosim.evaluation.ir_metrics import ranking_metrics, relevance_hits
from kosim.evaluation.ir_ranking import rank_corpus

__all__ = ["InformationRetrievalEvaluator"]

#: Accepted spellings of the score functions kosim ranks with (``ir_ranking.SEARCH_NAMES``), and the ``__name__`` of the functions that compute them (kosim's and
#: sentence-transformers' ``cos_sim`` / ``dot_score``), so ``score_functions={"cosine": cos_sim}`` keeps working.
_ALIASES = {"cosine": "cosine", "cos": "cosine", "cos_sim": "cosine", "dot": "dot", "dot_score": "dot"}


def _check_ks(value: Any, name: str) -> list[int]:
    """A non-empty list of positive ints, duplicates dropped (first position kept, as a dict keyed by k would)."""
    if isinstance(value, (int, str)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a list of positive ints, got {value!r}")
    ks = list(value)
    if not ks:
        raise ValueError(f"{name} must name at least one k")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise ValueError(f"{name} must hold positive ints, got {k!r}")
    return list(dict.fromkeys(int(k) for k in ks))


def _check_positive(value: Any, name: str, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _canonical_score_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or name not in _ALIASES:
        raise ValueError(
            f"{where}: kosim ranks with its exact chunked search, which scores with 'cosine' or 'dot'; got {name!r}"
        )
    return _ALIASES[name]


def _resolve_score_functions(score_functions: Any) -> dict[str, str] | None:
    """``{key used in metric names: "cosine" | "dot"}``, or None to take the model's similarity at call time.

    A sequence names the functions (``["cosine", "dot"]``); a mapping is sentence-transformers' form
    ``{"cosine": cos_sim, ...}``, accepted when each value is a cosine or dot-product function (by ``__name__``),
    its key kept verbatim in the metric names as sentence-transformers does.
    """
    if score_functions is None:
        return None
    out: dict[str, str] = {}
    if isinstance(score_functions, Mapping):
        for key, fn in score_functions.items():
            if not isinstance(key, str) or not key:
                raise ValueError(f"score_functions keys must be non-empty strings, got {key!r}")
            if isinstance(fn, str):
                out[key] = _canonical_score_name(fn, f"score_functions[{key!r}]")
            elif callable(fn):
                out[key] = _canonical_score_name(getattr(fn, "__name__", repr(fn)), f"score_functions[{key!r}]")
            else:
                raise TypeError(f"score_functions[{key!r}] must be a similarity function or its name, got {fn!r}")
    else:
        if isinstance(score_functions, str):
            score_functions = [score_functions]
        for name in score_functions:
            canonical = _canonical_score_name(name, "score_functions")
            out.setdefault(canonical, canonical)
    if not out:
        raise ValueError("score_functions must name at least one score function")
    return out


def _as_texts(mapping: Any, what: str) -> tuple[list[Any], list[str]]:
    if not isinstance(mapping, Mapping):
        raise TypeError(f"{what} must be a dict {{id: text}}, got {type(mapping).__name__}")
    if not mapping:
        raise ValueError(f"{what} is empty")
    for key, text in mapping.items():
        if not isinstance(text, str):
            raise TypeError(f"{what}[{key!r}] must be a str, got {type(text).__name__}")
    return list(mapping.keys()), list(mapping.values())


def _float_matrix(x: Any, what: str, rows: int) -> Tensor:
    tensor = x.detach().cpu() if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))
    if tensor.dim() != 2 or tensor.shape[0] != rows:
        raise ValueError(f"{what} has shape {tuple(tensor.shape)}; expected [{rows}, dim]")
    return tensor.float()


class InformationRetrievalEvaluator:
    """Accuracy, precision, recall, MRR, nDCG and MAP at k of exact dense retrieval, as sentence-transformers 6.2.

    Each query (one with at least one relevant document; the others are skipped, as sentence-transformers does)
    is embedded, the corpus is embedded once, and the top ``max(all k)`` documents of each query are found by
    :func:`kosim.search.topk_search`, ``corpus_chunk_size`` documents at a time (memory stays bounded for a
    million-document corpus). Documents with equal scores rank by ascending corpus id, as in sentence-transformers,
    so the metrics do not depend on the chunk size. Relevance is binary. Metric keys are
    ``"{name}_{score_function}_{metric}@{k}"`` (``"cosine_ndcg@10"`` without a name) in sentence-transformers'
    order, and the values equal its ``InformationRetrievalEvaluator`` on the same embeddings.

    Args:
        queries: ``{query_id: text}``.
        corpus: ``{corpus_id: text}``; ids must be mutually comparable (all str, or all int): ties sort by them.
        relevant_docs: ``{query_id: set of corpus ids}``.
        corpus_chunk_size: documents scored per search step.
        mrr_at_k, ndcg_at_k, accuracy_at_k, precision_recall_at_k, map_at_k: the cut-offs of each metric.
        show_progress_bar: forwarded to the model's encode (as ``progress`` for kosim models).
        batch_size: encode batch size.
        name: prefix of every metric key.
        write_csv, write_predictions: accepted for sentence-transformers' signature; kosim returns the metrics and
            writes no files, so True raises a ValueError.
        truncate_dim: keep only the first ``truncate_dim`` embedding dimensions (Matryoshka evaluation).
        score_functions: ``["cosine", "dot"]`` or ``{"cosine": cos_sim, ...}``; None scores with the model's own
            ``similarity_fn_name`` at each call (cosine for a model without one). Only cosine and dot are supported.
        main_score_function: the score function of the primary metric; None picks the one with the best
            ``ndcg@max(ndcg_at_k)`` at the first call, as sentence-transformers does.
        query_prompt, query_prompt_name, corpus_prompt, corpus_prompt_name: a prompt string, or the name of one of
            the model's prompts, for each side (not both). Without either, the model's ``"query"`` prompt (and
            ``"document"``, ``"passage"`` or ``"corpus"`` for the corpus) is used when it has one, as in
            sentence-transformers' ``encode_query`` / ``encode_document``.
        allow_missing_relevant: a relevant id that is not in the corpus is an error (usually an id type mismatch,
            ``1`` vs ``"1"``); True accepts it as sentence-transformers does: relevant, but never retrieved.
        query_chunk_size: queries scored per search step.
        pool: an ``EncodePool`` (or ``RankShards()``) from :mod:`kosim.encode_pool`, passed to the model's encode.
    """

    def __init__(
        self,
        queries: Mapping[Any, str],
        corpus: Mapping[Any, str],
        relevant_docs: Mapping[Any, Iterable[Any]],
        corpus_chunk_size: int = 50_000,
        mrr_at_k: Sequence[int] = (10,),
        ndcg_at_k: Sequence[int] = (10,),
        accuracy_at_k: Sequence[int] = (1, 3, 5, 10),
        precision_recall_at_k: Sequence[int] = (1, 3, 5, 10),
        map_at_k: Sequence[int] = (100,),
        show_progress_bar: bool = False,
        batch_size: int = 32,
        name: str = "",
        write_csv: bool = False,
        truncate_dim: int | None = None,
        score_functions: Sequence[str] | Mapping[str, Callable | str] | None = None,
        main_score_function: str | None = None,
        query_prompt: str | None = None,
        query_prompt_name: str | None = None,
        corpus_prompt: str | None = None,
        corpus_prompt_name: str | None = None,
        write_predictions: bool = False,
        allow_missing_relevant: bool = False,
        query_chunk_size: int = 1024,
        pool: Any = None,
    ) -> None:
        self.pool = pool
        for flag, value in (("write_csv", write_csv), ("write_predictions", write_predictions)):
            if value:
                raise ValueError(
                    f"{flag}=True is not supported: kosim's evaluators return their metrics and write no files"
                )
        self.ks = {
            "accuracy": _check_ks(accuracy_at_k, "accuracy_at_k"),
            "precision": _check_ks(precision_recall_at_k, "precision_recall_at_k"),
            "recall": _check_ks(precision_recall_at_k, "precision_recall_at_k"),
            "ndcg": _check_ks(ndcg_at_k, "ndcg_at_k"),
            "mrr": _check_ks(mrr_at_k, "mrr_at_k"),
            "map": _check_ks(map_at_k, "map_at_k"),
        }
        self.max_k = max(max(ks) for ks in self.ks.values())
        self.corpus_chunk_size = _check_positive(corpus_chunk_size, "corpus_chunk_size")
        self.query_chunk_size = _check_positive(query_chunk_size, "query_chunk_size")
        self.batch_size = _check_positive(batch_size, "batch_size")
        self.truncate_dim = _check_positive(truncate_dim, "truncate_dim", allow_none=True)
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}")
        self.name = name
        self.show_progress_bar = bool(show_progress_bar)
        self.prompts: dict[str, tuple[str | None, str | None]] = {}
        for side, prompt, prompt_name in (
            ("query", query_prompt, query_prompt_name),
            ("corpus", corpus_prompt, corpus_prompt_name),
        ):
            for label, value in ((f"{side}_prompt", prompt), (f"{side}_prompt_name", prompt_name)):
                if value is not None and not isinstance(value, str):
                    raise TypeError(f"{label} must be a str, got {type(value).__name__}")
            if prompt is not None and prompt_name is not None:
                raise ValueError(f"give {side}_prompt or {side}_prompt_name, not both")
            self.prompts[side] = (prompt, prompt_name)
        self.score_functions = _resolve_score_functions(score_functions)
        self.main_score_function = (
            None if main_score_function is None else _canonical_score_name(main_score_function, "main_score_function")
        )
        if self.main_score_function is not None and self.score_functions is not None:
            if self.main_score_function not in self.score_functions:
                raise ValueError(
                    f"main_score_function {self.main_score_function!r} is not a key of score_functions "
                    f"{list(self.score_functions)}"
                )
        self._primary: str | None = None
        self._last_names: list[str] | None = None
        self._index_inputs(queries, corpus, relevant_docs, allow_missing_relevant)

    # ------------------------------------------------------------------------------------------------ inputs
    def _index_inputs(self, queries: Any, corpus: Any, relevant_docs: Any, allow_missing: bool) -> None:
        """Keep the queries that have relevant documents; map relevance to sorted ``query_row * n + doc_row``."""
        query_ids, query_texts = _as_texts(queries, "queries")
        self.corpus_ids, self.corpus = _as_texts(corpus, "corpus")
        if not isinstance(relevant_docs, Mapping):
            raise TypeError(
                f"relevant_docs must be a dict {{query_id: set of corpus ids}}, got {type(relevant_docs).__name__}"
            )
        position = {cid: i for i, cid in enumerate(self.corpus_ids)}
        try:
            order = sorted(range(len(self.corpus_ids)), key=self.corpus_ids.__getitem__)
        except TypeError as exc:
            raise TypeError(f"corpus ids must be mutually comparable (all str or all int): {exc}") from None
        self._id_rank = np.empty(len(order), dtype=np.int64)  # [n_corpus] rank of each id in ascending order
        self._id_rank[np.asarray(order, dtype=np.int64)] = np.arange(len(order))

        self.query_ids: list[Any] = []
        self.queries: list[str] = []
        self.relevant_docs: dict[Any, frozenset] = {}
        pairs: list[int] = []
        n_relevant: list[int] = []
        n = len(self.corpus_ids)
        for qid, text in zip(query_ids, query_texts):
            rel = relevant_docs.get(qid)
            if rel is None:
                continue
            if isinstance(rel, (str, bytes)) or not isinstance(rel, Iterable):
                raise TypeError(f"relevant_docs[{qid!r}] must be a set of corpus ids, got {type(rel).__name__}")
            rel = frozenset(rel)
            if not rel:
                continue
            row = len(self.query_ids)
            for cid in rel:
                doc = position.get(cid)
                if doc is not None:
                    pairs.append(row * n + doc)
                elif not allow_missing:
                    example = next(iter(position))
                    raise ValueError(
                        f"relevant_docs[{qid!r}] holds {cid!r}, which is not a corpus id (corpus ids look like "
                        f"{example!r}); pass allow_missing_relevant=True to count it as relevant but unretrievable"
                    )
            self.query_ids.append(qid)
            self.queries.append(text)
            self.relevant_docs[qid] = rel
            n_relevant.append(len(rel))
        if not self.query_ids:
            example = next(iter(relevant_docs), None)
            raise ValueError(
                f"none of the {len(query_ids)} queries has a relevant document in relevant_docs (query ids look like "
                f"{query_ids[0]!r}, relevant_docs keys like {example!r})"
            )
        self._pairs = np.sort(np.asarray(pairs, dtype=np.int64))  # [n_relevant_pairs]
        self._n_relevant = np.asarray(n_relevant, dtype=np.float64)  # [n_queries]

    # ------------------------------------------------------------------------------------------------ names
    def _key(self, metric: str) -> str:
        return f"{self.name}_{metric}" if self.name else metric

    def _names(self) -> list[str] | None:
        return list(self.score_functions) if self.score_functions is not None else self._last_names

    @property
    def primary_metric(self) -> str | None:
        """The key of the headline metric, ``ndcg@max(ndcg_at_k)`` of the main score function.

        None while it is not known yet: before the first call when neither ``main_score_function`` nor a single
        explicit score function fixes it.
        """
        top = f"ndcg@{max(self.ks['ndcg'])}"
        if self.main_score_function is not None:
            return self._key(f"{self.main_score_function}_{top}")
        names = self._names()
        if self._primary is None and names is not None and len(names) == 1:
            return self._key(f"{names[0]}_{top}")
        return self._key(self._primary) if self._primary is not None else None

    @property
    def metric_keys(self) -> list[str]:
        """Every key a call returns, in order; needs the score function names (given, or from a first call)."""
        names = self._names()
        if names is None:
            raise RuntimeError(
                "the score functions come from the model's similarity: call the evaluator once or pass score_functions"
            )
        return [self._key(f"{fn}_{fam}@{k}") for fn in names for fam in _FAMILIES for k in self.ks[fam]]

    # ------------------------------------------------------------------------------------------------ call
    def __call__(self, model: Any, corpus_model: Any = None, corpus_embeddings: Any = None) -> dict[str, float]:
        """Embed, rank and score. ``corpus_model`` embeds the corpus instead of ``model``; ``corpus_embeddings``
        (``[n_corpus, dim]``, in corpus order) skip embedding it."""
        functions = self.score_functions
        if functions is None:
            own = getattr(model, "similarity_fn_name", None) or "cosine"
            name = _canonical_score_name(own, "the model's similarity_fn_name (pass score_functions to override)")
            functions = {name: name}
            if self._last_names is not None and self._last_names != [name]:
                self._primary = None  # a different model's similarity: pick the primary metric again
            self._last_names = [name]
        if self.main_score_function is not None and self.main_score_function not in functions:
            raise ValueError(f"main_score_function {self.main_score_function!r} is not among {list(functions)}")

        queries = self._encode(model, self.queries, "query")  # [n_queries, dim]
        if corpus_embeddings is None:
            corpus = self._encode(corpus_model if corpus_model is not None else model, self.corpus, "corpus")
        else:
            corpus = _float_matrix(corpus_embeddings, "corpus_embeddings", len(self.corpus))
            corpus = corpus[:, : self.truncate_dim] if self.truncate_dim else corpus
        if queries.shape[1] != corpus.shape[1]:
            raise ValueError(f"query embeddings have dimension {queries.shape[1]} but the corpus has {corpus.shape[1]}")

        metrics: dict[str, float] = {}
        by_function: dict[str, dict[str, float]] = {}
        for key, fn in functions.items():
            ranked = rank_corpus(  # [n_queries, min(max_k, n_corpus)] corpus rows, best first
                queries, corpus, fn, self.max_k, self._id_rank, self.corpus_chunk_size, self.query_chunk_size
            )
            by_function[key] = self._metrics(ranked)
            metrics.update({f"{key}_{metric}": value for metric, value in by_function[key].items()})
        if self.main_score_function is None and self._primary is None and len(functions) > 1:
            top = f"ndcg@{max(self.ks['ndcg'])}"
            best = max(sorted(functions), key=lambda k: by_function[k][top])
            self._primary = f"{best}_{top}"
        return {self._key(key): value for key, value in metrics.items()}

    def _encode(self, model: Any, texts: list[str], side: str) -> Tensor:
        """Float32 embeddings ``[len(texts), dim]``, each distinct text encoded once, with the side's prompt."""
        prompt, prompt_name = self.prompts[side]
        method = getattr(model, "encode_query" if side == "query" else "encode_document", None)
        kwargs: dict[str, Any] = {"batch_size": self.batch_size}
        if self.pool is not None:
            kwargs["pool"] = self.pool
        if prompt is not None:
            kwargs["prompt"] = prompt
        elif prompt_name is not None:
            kwargs["prompt_name"] = prompt_name
        if method is None:
            method = model.encode
            if prompt is None and prompt_name is None:
                candidates = ("query",) if side == "query" else ("document", "passage", "corpus")
                own = getattr(model, "prompts", None) or {}
                fallback = next((c for c in candidates if c in own), None)
                if fallback is not None:
                    kwargs["prompt_name"] = fallback
        kwargs.update(progress_kwargs(method, self.show_progress_bar))
        unique = list(dict.fromkeys(texts))
        embeddings = _float_matrix(method(unique, **kwargs), f"the {side} embeddings", len(unique))
        if len(unique) != len(texts):
            position = {text: i for i, text in enumerate(unique)}
            embeddings = embeddings[torch.as_tensor([position[t] for t in texts])]
        return embeddings[:, : self.truncate_dim] if self.truncate_dim else embeddings

    # ------------------------------------------------------------------------------------------------ metrics
    def _metrics(self, ranked: np.ndarray) -> dict[str, float]:
        """All metrics from the ranked corpus rows ``[n_queries, k]``: mark the relevant ones, then score."""
        hits = relevance_hits(ranked, self._pairs, len(self.corpus_ids), self.max_k)  # [nq, max_k]
        return ranking_metrics(hits, self._n_relevant, self.ks)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, queries={len(self.queries)}, corpus={len(self.corpus)}, "
            f"score_functions={self._names()}, primary_metric={self.primary_metric!r})"
        )
