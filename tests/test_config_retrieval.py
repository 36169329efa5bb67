"""The retrieval parts of a run config: `[[evaluators]] type = "ir"` and `[mining]`, checked at the edge and run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import write_beir

from kosim.config import ConfigError, parse_config
from kosim.config.runner import build_evaluator, load_retrieval_task, run_config


def config(evaluators=(), mining=None, model="m"):
    raw = {"model": {"name_or_path": model}, "evaluators": list(evaluators), "training": {"output_dir": "o"}}
    if mining is not None:
        raw["mining"] = mining
    else:
        raw["datasets"] = [
            {"name": "d", "path": "kosim:KorSTS/sts-dev.tsv", "format": "korsts", "loss": "CosineSimilarityLoss"}
        ]
    return raw


def test_ir_evaluator_entry_is_validated_into_options(tmp_path):
    entry = {
        "type": "ir",
        "name": "dev",
        "source": "kornli",
        "split": "dev",
        "dev_size": 100,
        "ndcg_at_k": [5, 10],
        "score_functions": ["cosine", "dot"],
        "main_score_function": "dot",
        "query_prompt": "질문: ",
        "corpus_chunk_size": 500,
        "max_rows": 20,
    }
    cfg = parse_config(config([entry]), tmp_path, "c.toml").evaluators[0]
    assert (cfg.type, cfg.format, cfg.split, cfg.dev_size, cfg.path) == ("ir", "kornli", "dev", 100, None)
    assert cfg.options == {
        "ndcg_at_k": [5, 10],
        "score_functions": ["cosine", "dot"],
        "main_score_function": "dot",
        "corpus_chunk_size": 500,
        "query_prompt": "질문: ",
    }
    beir = parse_config(config([{"type": "ir", "path": str(write_beir(tmp_path / "b"))}]), tmp_path).evaluators[0]
    assert (beir.format, beir.split, beir.name) == ("beir", "test", "ir-eval")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"type": "ir"}, r"\[\[evaluators\]\] 'ir-eval' source: missing"),
        ({"type": "ir", "source": "kornil"}, r"source: unknown value 'kornil'.*did you mean 'kornli'"),
        ({"type": "ir", "source": "kornli", "split": "test"}, r"split: unknown value 'test'"),
        ({"type": "ir", "source": "kornli", "ndcg_at_k": [0]}, r"ndcg_at_k: expected a non-empty array of positive"),
        ({"type": "ir", "source": "kornli", "ndcg_at_k": 10}, r"ndcg_at_k: expected an array"),
        ({"type": "ir", "source": "kornli", "score_functions": ["euclidean"]}, r"score_functions: unknown score"),
        (
            {"type": "ir", "source": "kornli", "score_functions": "cosine", "main_score_function": "dot"},
            r"main_score_function: 'dot' is not one of score_functions",
        ),
        ({"type": "ir", "source": "kornli", "query_prompt": "a", "query_prompt_name": "q"}, r"not both"),
        ({"type": "ir", "source": "kornli", "similarity_fns": ["cosine"]}, r"unknown key 'similarity_fns'"),
        ({"type": "ir", "source": "kornli", "dev_size": 1.5}, r"dev_size: a fraction must be in \(0, 1\)"),
        ({"type": "ir", "source": "beir"}, r"path: source 'beir' needs path"),
        ({"type": "ir", "path": "nowhere"}, r"path: not a directory"),
        ({"type": "ir", "source": "kornli", "truncate_dim": 0}, r"truncate_dim: must be a positive integer"),
    ],
)
def test_ir_evaluator_errors_name_the_key(entry, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        parse_config(config([entry]), tmp_path, "c.toml")


def test_beir_split_and_kornli_only_keys_are_checked(tmp_path):
    root = write_beir(tmp_path / "b")
    with pytest.raises(ConfigError, match=r"split: .*dev.tsv not found; qrels splits in .*\['test'\]"):
        parse_config(config([{"type": "ir", "path": str(root), "split": "dev"}]), tmp_path)
    with pytest.raises(ConfigError, match=r"dev_size: applies to source 'kornli' only"):
        parse_config(config([{"type": "ir", "path": str(root), "dev_size": 0.2}]), tmp_path)


def test_mining_table_is_validated(tmp_path):
    mining = {"source": "kornli", "num_negatives": 2, "relative_margin": 0.05, "output_format": "n-tuple"}
    cfg = parse_config(config(mining=mining), tmp_path, "c.toml")
    assert cfg.datasets == [] and cfg.mining.split == "train" and cfg.mining.loss == "MultipleNegativesRankingLoss"
    assert cfg.mining.options["num_negatives"] == 2 and cfg.mining.options["output_format"] == "n-tuple"
    assert cfg.to_dict()["mining"]["source"] == "kornli"
    for bad, message in [
        ({"source": "kornli", "output_format": "labeled-list"}, r"\[mining\] output_format: unknown value"),
        ({"source": "kornli", "num_negative": 2}, r"\[mining\] unknown key 'num_negative'.*did you mean"),
        ({"source": "kornli", "loss": "NoSuchLoss"}, r"\[mining\] loss:"),
        ({"source": "kornli", "range_min": -1}, r"\[mining\] range_min: must be 0 or more"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_config(config(mining=bad), tmp_path, "c.toml")
    no_data = config()
    no_data["datasets"] = []
    with pytest.raises(ConfigError, match=r"needs at least one training dataset \(or a \[mining\] table\)"):
        parse_config(no_data, tmp_path)


def test_ir_evaluator_runs_on_the_task_it_names(bert_dir, tmp_path):
    """The built evaluator scores the kornli dev queries (first max_rows) and a BEIR directory, as the
    InformationRetrievalEvaluator built directly from the same dicts does."""
    from kosim.data import kornli_retrieval_task, load_beir
    from kosim.evaluation import InformationRetrievalEvaluator
    from kosim.model import SentenceEncoder

    model = SentenceEncoder.load(bert_dir)
    entries = [
        {"type": "ir", "name": "k", "source": "kornli", "max_rows": 30, "ndcg_at_k": [3], "score_functions": "dot"},
        {"type": "ir", "name": "b", "path": str(write_beir(tmp_path / "b"))},
    ]
    cfgs = parse_config(config(entries), tmp_path).evaluators
    dev = kornli_retrieval_task("dev")
    assert len(load_retrieval_task(cfgs[0]).queries) == 30
    queries = dict(list(dev.queries.items())[:30])
    ref = InformationRetrievalEvaluator(queries, dev.corpus, dev.relevant_docs, ndcg_at_k=[3], score_functions=["dot"])
    ours = build_evaluator(cfgs[0], 16)(model)
    assert ours == {f"k_{key}": value for key, value in ref(model).items()} and "k_dot_ndcg@3" in ours
    beir = load_beir(tmp_path / "b", "test")
    ref = InformationRetrievalEvaluator(*beir.as_dicts(), name="b")
    assert build_evaluator(cfgs[1], 16)(model) == ref(model)


def test_mining_run_trains_on_the_mined_rows_and_reports_ndcg(bert_dir, tmp_path):
    """[mining] mines with the start model into output_dir, trains on it (no [[datasets]]), and the IR metrics
    are reported before and after and shown on the card."""
    raw = config(
        [{"type": "ir", "name": "kornli-dev", "source": "kornli", "max_rows": 40}],
        mining={"source": "kornli", "max_rows": 32, "num_negatives": 1},
        model=str(bert_dir),
    )
    raw["training"] = {
        "output_dir": str(tmp_path / "out"),
        "per_device_train_batch_size": 8,
        "num_train_epochs": 1,
        "learning_rate": 1e-3,
        "batch_sampler": "no_duplicates",
        "disable_tqdm": True,
    }
    result = run_config(parse_config(raw, tmp_path), log=lambda m: None)
    key = "kornli-dev_cosine_ndcg@10"
    assert key in result["before"] and key in result["after"] and result["before"] != result["after"]
    mined = [json.loads(line) for line in (tmp_path / "out" / "mined-mined.jsonl").read_text("utf-8").splitlines()]
    assert len(mined) == 32 and set(mined[0]) == {"query", "positive", "negative"}
    assert all(row["negative"] != row["positive"] for row in mined)
    card = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    assert "Information Retrieval" in card and "cosine_ndcg@10" in card
    assert np.isfinite(result["after"][key])
