"""`[[evaluators]]` of type sts / triplet: `main_similarity` (the similarity of the primary metric), validated in
the config with a typo hint, and handed to the evaluator."""

from __future__ import annotations

import pytest

from kosim.config import ConfigError, parse_config
from kosim.config.runner import build_evaluator


def _config(**evaluator):
    raw = {
        "model": {"name_or_path": "klue/roberta-base"},
        "datasets": [
            {
                "name": "nli",
                "path": "kosim:KorNLI/xnli.dev.ko.tsv",
                "format": "kornli_triplets",
                "loss": "MultipleNegativesRankingLoss",
            }
        ],
        "evaluators": [{"type": "sts", "name": "sts-dev", "path": "kosim:KorSTS/sts-dev.tsv", **evaluator}],
    }
    return parse_config(raw, source="inline.toml")


def _error(**evaluator) -> str:
    with pytest.raises(ConfigError) as info:
        _config(**evaluator)
    return str(info.value)


@pytest.mark.parametrize(
    ("keys", "fns", "main", "primary"),
    [
        ({}, ["cosine"], None, "sts-dev_spearman_cosine"),
        ({"main_similarity": "dot"}, ["dot"], "dot", "sts-dev_spearman_dot"),  # the only one computed
        ({"similarity_fns": ["cosine", "dot"], "main_similarity": "dot_score"}, ["cosine", "dot"], "dot", None),
        ({"similarity_fns": ["cos_sim", "manhattan"], "main_similarity": "cosine"}, ["cos_sim", "manhattan"], "cosine",
         None),
    ],
)  # fmt: skip
def test_main_similarity_reaches_the_evaluator(keys, fns, main, primary):
    cfg = _config(**keys).evaluators[0]
    assert cfg.similarity_fns == fns and cfg.main_similarity == main
    evaluator = build_evaluator(cfg, batch_size=8)
    assert evaluator.primary_metric == (primary or f"sts-dev_spearman_{main}")


def test_triplet_evaluator_takes_main_similarity(tmp_path):
    path = tmp_path / "triplets.tsv"
    path.write_text("a\tp\tn\n하나\t둘\t셋\n넷\t다섯\t여섯\n", encoding="utf-8")
    cfg = _config(
        type="triplet",
        path=str(path),
        format="tsv",
        similarity_fns=["cosine", "euclidean"],
        main_similarity="euclidean",
    ).evaluators[0]
    evaluator = build_evaluator(cfg, batch_size=8)
    assert evaluator.primary_metric.endswith("euclidean_accuracy")


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"main_similarity": "cosin"}, "'sts-dev' main_similarity: unknown similarity function 'cosin'"),
        ({"main_similarity": "cosin"}, "did you mean 'cosine'?"),
        ({"similarity_fns": ["cosine", "manhatan"]}, "similarity_fns: unknown similarity function 'manhatan'"),
        ({"similarity_fns": ["cosine", "manhatan"]}, "did you mean 'manhattan'?"),
        ({"similarity_fns": ["cosine"], "main_similarity": "dot"}, "main_similarity: 'dot' is not one of"),
        ({"main_similarity": 3}, "main_similarity: expected a string"),
    ],
)
def test_bad_main_similarity_names_the_key(keys, message):
    assert message in _error(**keys)
