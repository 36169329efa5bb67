"""`kosim evaluate --ir kornli` / `--beir DIR`: retrieval metrics equal to sentence-transformers' evaluator."""

from __future__ import annotations

import json

import pytest
from helpers import write_beir

from kosim.cli.main import main
from kosim.data import kornli_retrieval_task
from kosim.model import SentenceEncoder


@pytest.fixture(scope="module")
def model_dir(bert_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ir-model")
    SentenceEncoder.load(bert_dir).save(out)
    return out


def test_evaluate_ir_kornli_equals_sentence_transformers(model_dir, capsys):
    st = pytest.importorskip("sentence_transformers")
    from sentence_transformers.evaluation import InformationRetrievalEvaluator

    assert main(["evaluate", "--model", str(model_dir), "--ir", "kornli", "--batch-size", "64"]) == 0
    ours = json.loads(capsys.readouterr().out)
    task = kornli_retrieval_task("dev")
    ref = InformationRetrievalEvaluator(*task.as_dicts(), name=task.name, batch_size=64)(
        st.SentenceTransformer(str(model_dir), device="cpu")
    )
    assert set(ours) == set(ref) and "kornli-retrieval-dev_cosine_ndcg@10" in ours
    assert max(abs(ours[k] - ref[k]) for k in ref) <= 1e-6


def test_evaluate_beir_directory(model_dir, tmp_path, capsys):
    root = write_beir(tmp_path / "beir")
    argv = ["evaluate", "--model", str(model_dir), "--beir", str(root), "--similarity-fns", "cosine", "dot"]
    assert main([*argv, "--name", "tiny"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert "tiny_cosine_ndcg@10" in metrics and "tiny_dot_mrr@10" in metrics
    assert len(metrics) == 30 and all(0.0 <= v <= 1.0 for v in metrics.values())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--ir", "kornli", "--split", "test"], "--split: --ir kornli has the splits"),
        (["--beir", "BEIR", "--split", "dev"], "dev.tsv: no such file; qrels splits in"),
        (["--beir", "BEIR", "--similarity-fns", "euclidean"], "--similarity-fns: retrieval ranks with cosine or dot"),
        (["--beir", "nowhere"], "--beir: not a directory"),
        (["--sts", "STS", "--split", "dev"], "--split applies to --ir / --beir"),
    ],
)
def test_evaluate_retrieval_errors(model_dir, tmp_path, capsys, extra, message):
    root = write_beir(tmp_path / "beir")
    sts = tmp_path / "sts.tsv"
    sts.write_text("x", encoding="utf-8")
    extra = [str(root) if a == "BEIR" else str(sts) if a == "STS" else a for a in extra]
    assert main(["evaluate", "--model", str(model_dir), *extra]) == 2
    assert message in capsys.readouterr().err
