"""Model cards: every section present with values recomputed here from the same inputs."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from kosim.card import architecture, build_model_card, log_rows
from kosim.card.template import yaml_scalar
from kosim.data.datasets import ColumnDataset
from kosim.evaluation import EmbeddingSimilarityEvaluator, TripletEvaluator
from kosim.losses import CosineSimilarityLoss, MatryoshkaLoss, MultipleNegativesRankingLoss
from kosim.model import SentenceEncoder
from kosim.st_format import versions
from kosim.training.arguments import TrainingArguments

LONG = "한 남자가 큰 플루트를 연주하고 있다. " * 20  # far past max_seq_length: truncated
ANCHORS = ["안전모를 가진 한 남자가 춤을 추고 있다.", "어린아이가 말을 타고 있다.", "yes", LONG, "아이가 밖에 있다."]
POSITIVES = ["한 남자가 춤을 춘다.", "아이가 말을 탄다: 빠르게", "- 비행기가 이륙하고 있다.", "플루트 | 연주", "아이"]
NEGATIVES = [
    "비행기가 이륙하고 있다.",
    "한 여성이 고기를 요리하고 있다.",
    "사람들이 기차를 타고 있다.",
    "#1",
    "<b>x</b>",
]
PAIRS1 = ["한 여성이 고기를 요리하고 있다.", "사람들이 기차를 타고 있다.", "The quick brown fox", "아이가 밖에 있다."]
PAIRS2 = ["여자가 요리한다.", "기차에 사람들이 있다.", "A fox jumps", "아이가 안에 있다."]
SCORES = [0.9, 0.75, 0.4, 0.1]


@pytest.fixture(scope="module")
def model(bert_dir) -> SentenceEncoder:
    return SentenceEncoder.load(bert_dir)


@pytest.fixture(scope="module")
def setup(model, tmp_path_factory):
    nli = ColumnDataset({"anchor": ANCHORS, "positive": POSITIVES, "negative": NEGATIVES}, name="nli")
    sts = ColumnDataset({"sentence1": PAIRS1, "sentence2": PAIRS2}, labels=SCORES, name="sts")
    all_fns = ["cosine", "euclidean", "manhattan", "dot"]  # several similarities; cosine the primary one
    sts_dev = EmbeddingSimilarityEvaluator(
        PAIRS1, PAIRS2, SCORES, name="sts-dev", similarity_fns=all_fns, main_similarity="cosine"
    )
    nli_dev = TripletEvaluator(
        ANCHORS, POSITIVES, NEGATIVES, name="nli-dev", similarity_fns=["cosine", "dot"], main_similarity="cosine"
    )
    metrics = {**sts_dev(model), **nli_dev(model), "validation_loss": 0.25}
    log_history = [
        {"step": 5, "epoch": 0.5, "loss": 2.345678, "learning_rate": 4e-5},
        {
            "step": 5,
            "epoch": 0.5,
            "validation_loss": 0.5,
            "sts-dev_spearman_cosine": 0.91,
            "nli-dev_cosine_accuracy": 0.6,
        },
        {"step": 8, "epoch": 0.8, "loss": 1.5, "learning_rate": 2e-5},
        {"step": 10, "epoch": 1.0, "loss": 1.25, "learning_rate": 0.0},
        {"step": 10, "epoch": 1.0, **metrics},
    ]
    args = TrainingArguments(
        output_dir=str(tmp_path_factory.mktemp("run")),
        per_device_train_batch_size=4,
        num_train_epochs=1,
        warmup_ratio=0.1,
        batch_sampler="no_duplicates",
        card_notes={"note": "card test"},
    )
    losses = {"nli": MatryoshkaLoss(MultipleNegativesRankingLoss(scale=30.0), [32, 16]), "sts": CosineSimilarityLoss()}
    kwargs = dict(
        train_datasets={"nli": nli, "sts": sts},
        losses=losses,
        args=args,
        log_history=log_history,
        metrics=metrics,
        evaluators=[sts_dev, nli_dev],
        base_model="klue/bert-base",
    )
    return kwargs, build_model_card(model, **kwargs)


def front_matter(card: str) -> str:
    assert card.startswith("---\n")
    return card[4 : card.index("\n---\n", 4)]


def section(card: str, heading: str) -> str:
    """Text after ``heading`` up to the next heading of the same or a higher level (code blocks skipped)."""
    level = len(heading.split(" ")[0])
    lines = card[card.index(heading + "\n") + len(heading) + 1 :].split("\n")
    in_code = False
    for i, line in enumerate(lines):
        in_code ^= line.lstrip().startswith("```")
        hashes = len(line) - len(line.lstrip("#"))
        if not in_code and 0 < hashes <= level and line[hashes : hashes + 1] == " ":
            return "\n".join(lines[:i])
    return "\n".join(lines)


def token_counts(bert_dir, texts, max_len):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(bert_dir))
    return [len(ids) for ids in tok(list(texts), truncation=True, max_length=max_len)["input_ids"]]


def test_front_matter_lines(setup):
    _, card = setup
    meta = front_matter(card).splitlines()
    for line in [
        "- sentence-transformers",
        "- sentence-similarity",
        "- feature-extraction",
        "- generated_from_trainer",
        "- kosim",
        f"- dataset_size:{len(ANCHORS) + len(PAIRS1)}",
        "- loss:MatryoshkaLoss",
        "- loss:MultipleNegativesRankingLoss",
        "- loss:CosineSimilarityLoss",
        "base_model: klue/bert-base",
        "pipeline_tag: sentence-similarity",
        "library_name: sentence-transformers",
        "model-index:",
        "- name: SentenceTransformer based on klue/bert-base",
        "      type: semantic-similarity",
        "      name: sts dev",
        "      type: sts-dev",
        "      type: triplet",
        "      name: Pearson Cosine",
        f"- source_sentence: {ANCHORS[0]}",
    ]:
        assert line in meta, line
    assert all(not line.startswith("\t") for line in meta)


def test_front_matter_parses(setup):
    yaml = pytest.importorskip("yaml")
    kwargs, card = setup
    meta = yaml.safe_load(front_matter(card))
    assert meta["language"] == ["ko"]
    assert f"dataset_size:{len(ANCHORS) + len(PAIRS1)}" in meta["tags"]
    assert meta["base_model"] == "klue/bert-base"
    assert len(meta["widget"]) == 5
    first = meta["widget"][0]
    assert first["source_sentence"] == ANCHORS[0]
    assert first["sentences"][:2] == [POSITIVES[0], NEGATIVES[0]] and len(first["sentences"]) == 3
    assert meta["widget"][2]["source_sentence"] == "yes"  # quoted, so it stays a string
    assert meta["widget"][2]["sentences"][0] == POSITIVES[2]
    assert meta["widget"][1]["sentences"][0] == POSITIVES[1]
    assert {"pearson_cosine", "spearman_cosine", "cosine_accuracy", "dot_accuracy"} <= set(meta["metrics"])
    results = meta["model-index"][0]["results"]
    assert [r["task"]["type"] for r in results] == ["semantic-similarity", "triplet"]
    assert results[1]["dataset"] == {"name": "nli dev", "type": "nli-dev"}
    got = {m["type"]: m["value"] for m in results[0]["metrics"]}
    assert got["spearman_cosine"] == pytest.approx(kwargs["metrics"]["sts-dev_spearman_cosine"], abs=0, rel=1e-15)
    names = {m["type"]: m["name"] for m in results[1]["metrics"]}
    assert names == {
        "cosine_accuracy": "Cosine Accuracy",
        "dot_accuracy": "Dot Accuracy",
        "max_accuracy": "Max Accuracy",
    }


@pytest.mark.parametrize(
    "text",
    [
        "yes",
        "No",
        "null",
        "~",
        "1.5",
        "-3",
        "1e5",
        "2019-01-01",
        "a: b",
        "x #y",
        "- dash",
        "[list]",
        "{m}",
        "'q'",
        '"dq"',
        "trailing:",
        " lead",
        "tab\tin",
        "new\nline",
        "한국어: 문장",
        "100%",
        "@at",
        "`tick`",
        "*star",
        "&amp",
        "!bang",
        "|pipe",
        ">gt",
        "?q",
        ",c",
        "3층에는 침대",
        "문장, 쉼표",
        "0x1F",
        ".inf",
        "back\\slash",
        "é 🎉",
    ],
)
def test_yaml_scalar_round_trips(text):
    yaml = pytest.importorskip("yaml")
    assert yaml.safe_load(f"key: {yaml_scalar(text)}")["key"] == text
    assert yaml.safe_load(f"- {yaml_scalar(text)}") == [text]


def test_model_description_and_architecture(setup, model):
    _, card = setup
    details = section(card, "### Model Description")
    assert "- **Model Type:** Sentence Transformer" in details
    assert "- **Base model:** [klue/bert-base](https://huggingface.co/klue/bert-base)" in details
    assert f"- **Maximum Sequence Length:** {model.max_seq_length} tokens" in details
    assert f"- **Output Dimensionality:** {model.embedding_dim} dimensions" in details
    assert "- **Similarity Function:** Cosine Similarity" in details
    assert "- **Language:** ko" in details
    assert f"```\n{architecture(model)}\n```" in card
    assert card.index("# SentenceTransformer based on klue/bert-base") < card.index("## Model Details")


def test_usage_snippets(setup, model):
    kwargs, card = setup
    usage = section(card, "## Usage")
    out = kwargs["args"].output_dir
    assert f"SentenceEncoder.load({out!r})" in usage and f"SentenceTransformer({out!r})" in usage
    example = [ANCHORS[0], POSITIVES[0], NEGATIVES[0]]
    for text in example:
        assert usage.count(f"    {text!r},") == 2
    emb = model.encode(example)
    assert f"# {emb.shape}" in usage
    assert f"# [3, {model.embedding_dim}]" in usage and "# [3, 3]" in usage
    first_row = model.similarity(emb, emb)[0]
    assert f"# tensor([[{first_row[0]:.4f}, {first_row[1]:.4f}, {first_row[2]:.4f}]," in usage


def test_evaluation_tables(setup):
    kwargs, card = setup
    metrics = kwargs["metrics"]
    sts = section(card, "#### Semantic Similarity")
    assert "* Dataset: `sts-dev`" in sts and "EmbeddingSimilarityEvaluator" in sts
    assert re.search(
        rf"^\| \*\*spearman_cosine\*\* +\| \*\*{metrics['sts-dev_spearman_cosine']:.4f}\*\* +\|$", sts, re.M
    )
    for key in ("pearson_cosine", "pearson_dot", "spearman_manhattan", "spearman_max"):
        assert re.search(rf"^\| {key} +\| {metrics[f'sts-dev_{key}']:.4f} +\|$", sts, re.M), key
    triplet = section(card, "#### Triplet")
    assert "* Dataset: `nli-dev`" in triplet
    assert re.search(
        rf"^\| \*\*cosine_accuracy\*\* +\| \*\*{metrics['nli-dev_cosine_accuracy']:.4f}\*\*", triplet, re.M
    )
    assert re.search(rf"^\| dot_accuracy +\| {metrics['nli-dev_dot_accuracy']:.4f} +\|$", triplet, re.M)


def stats_cell(values, unit):
    lo, mean, hi = min(values), round(float(np.mean(values)), 2), max(values)
    return f"<ul><li>min: {lo}{unit}</li><li>mean: {mean}{unit}</li><li>max: {hi}{unit}</li></ul>"


def test_dataset_statistics_and_samples(setup, bert_dir, model):
    _, card = setup
    nli = section(card, "#### nli")
    assert "* Size: 5 training samples" in nli
    assert "* Columns: <code>anchor</code>, <code>positive</code>, and <code>negative</code>" in nli
    assert "* Approximate statistics based on the first 5 samples:" in nli
    assert re.search(r"^  \| type +\| string +\| string +\| string +\|$", nli, re.M)
    for texts in (ANCHORS, POSITIVES, NEGATIVES):
        counts = token_counts(bert_dir, texts, model.max_seq_length)
        assert stats_cell(counts, " tokens") in nli
    assert f"<li>max: {model.max_seq_length} tokens</li>" in nli  # LONG is truncated
    samples = section(card, "#### nli").split("* Samples:\n")[1].split("* Loss")[0].splitlines()
    assert len(samples) == 2 + 3
    assert samples[2].startswith(f"  | <code>{ANCHORS[0]}</code>")
    assert "<code>yes</code>" in samples[4] and "<code>- 비행기가 이륙하고 있다.</code>" in samples[4]
    assert ANCHORS[4] not in "\n".join(samples)  # only the first three rows

    sts = section(card, "#### sts")
    assert "* Columns: <code>sentence1</code>, <code>sentence2</code>, and <code>label</code>" in sts
    assert re.search(r"^  \| type +\| string +\| string +\| float +\|$", sts, re.M)
    assert stats_cell(token_counts(bert_dir, PAIRS1, model.max_seq_length), " tokens") in sts
    assert stats_cell(SCORES, "") in sts
    assert "<code>0.9</code>" in sts and "<code>0.75</code>" in sts and "<code>0.1</code>" not in sts


def test_statistics_use_the_first_thousand_rows(model, bert_dir):
    short = ["아이가 밖에 있다."] * 1000 + [LONG] * 7
    data = ColumnDataset({"anchor": short, "positive": short[::-1]})
    args = TrainingArguments(output_dir="out")
    card = build_model_card(
        model,
        train_datasets={"big": data},
        losses={"big": MultipleNegativesRankingLoss()},
        args=args,
        log_history=[],
        metrics={},
    )
    big = section(card, "#### big")
    assert "* Size: 1,007 training samples" in big
    assert "based on the first 1000 samples" in big
    anchor_count = token_counts(bert_dir, ["아이가 밖에 있다."], model.max_seq_length)[0]
    assert stats_cell([anchor_count] * 1000, " tokens") in big  # the 7 long rows are past the sample
    positives = token_counts(bert_dir, short[::-1][:1000], model.max_seq_length)
    assert stats_cell(positives, " tokens") in big
    assert "- dataset_size:1007" in card


def test_losses_as_json(setup):
    kwargs, card = setup
    for name in ("nli", "sts"):
        text = section(card, f"#### {name}")
        block = text.split("with these parameters:\n  ```json\n")[1].split("\n  ```")[0]
        assert json.loads(block) == kwargs["losses"][name].config()
    nli = section(card, "#### nli")
    assert "* Loss: [<code>MatryoshkaLoss</code>](" in nli
    assert '"loss": "MultipleNegativesRankingLoss"' in nli and '"matryoshka_dims": [' in nli
    assert "* Loss: [<code>CosineSimilarityLoss</code>](" in section(card, "#### sts")


def test_hyperparameters(setup):
    kwargs, card = setup
    args = kwargs["args"]
    non_default = section(card, "#### Non-Default Hyperparameters")
    for line in [
        "- `per_device_train_batch_size`: 4",
        "- `num_train_epochs`: 1",
        "- `warmup_ratio`: 0.1",
        "- `batch_sampler`: no_duplicates",
    ]:
        assert line in non_default
    assert "learning_rate" not in non_default
    everything = section(card, "#### All Hyperparameters")
    assert "<details><summary>" in everything and "</details>" in everything
    for key, value in args.to_dict().items():
        if key != "output_dir":
            assert f"- `{key}`: {value}\n" in everything
    assert "- `learning_rate`: 5e-05" in everything
    assert args.output_dir not in card.split("## Usage")[0] + card.split("### Training Hyperparameters")[1]
    assert "- `note`: card test" in card


def test_training_logs(setup):
    kwargs, card = setup
    logs = section(card, "### Training Logs").strip().splitlines()
    header = [c.strip() for c in logs[0].strip("|").split("|")]
    assert header == [
        "Epoch",
        "Step",
        "Training Loss",
        "Validation Loss",
        "sts-dev_spearman_cosine",
        "nli-dev_cosine_accuracy",
    ]
    assert set(logs[1].replace("|", "")) == {":", "-"}
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in logs[2:] if line.startswith("|")]
    metrics = kwargs["metrics"]
    final = [
        "1.0",
        "10",
        "1.25",
        "0.25",
        f"{metrics['sts-dev_spearman_cosine']:.4f}",
        f"{metrics['nli-dev_cosine_accuracy']:.4f}",
    ]
    best_is_first = 0.91 > metrics["sts-dev_spearman_cosine"]
    first = ["0.5", "5", "2.3457", "0.5", "0.9100", "0.6000"]
    assert rows[0] == ([f"**{c}**" for c in first] if best_is_first else first)
    assert rows[1] == ["0.8", "8", "1.5", "-", "-", "-"]
    assert rows[2] == (final if best_is_first else [f"**{c}**" for c in final])
    assert "bold row has the best `sts-dev_spearman_cosine`" in card


def test_log_table_without_validation_loss_and_thinning():
    evaluator = EmbeddingSimilarityEvaluator(PAIRS1, PAIRS2, SCORES, name="dev", similarity_fns=["cosine"])
    history = [{"step": s, "epoch": s / 1000, "loss": 1.0 / s} for s in range(1, 501)]
    history += [{"step": s, "epoch": s / 1000, "dev_spearman_cosine": s / 1000} for s in (100, 300, 500)]
    headers, rows, bold = log_rows(history, [evaluator], max_rows=50)
    assert headers == ["Epoch", "Step", "Training Loss", "dev_spearman_cosine"]
    assert [r[1].strip("*") for r in rows] == ["100", "300", "500"]
    assert bold == "dev_spearman_cosine" and rows[-1][3] == "**0.5000**"
    headers, rows, bold = log_rows(history[:20], [evaluator])
    assert headers == ["Epoch", "Step", "Training Loss"] and len(rows) == 20 and bold is None


def test_versions_and_citations(setup):
    _, card = setup
    frameworks = section(card, "### Framework Versions")
    for value in versions().values():
        assert f": {value}\n" in frameworks + "\n"
    assert frameworks.lstrip().startswith("- Python:")
    citation = card.split("## Citation")[1]
    assert "#### Sentence Transformers" in citation and "Nils Reimers and Iryna Gurevych" in citation
    assert "#### MatryoshkaLoss" in citation and MatryoshkaLoss.citation in citation
    assert "#### MultipleNegativesRankingLoss" in citation and MultipleNegativesRankingLoss.citation in citation
    assert "#### CosineSimilarityLoss" not in citation  # the same paper as Sentence-BERT
    assert card.endswith("```\n")


def test_minimal_card_without_evaluators_or_base_model(model, tmp_path):
    data = ColumnDataset({"sentence1": PAIRS1, "sentence2": PAIRS2}, labels=SCORES)
    card = build_model_card(
        model,
        train_datasets={"train": data},
        losses={"train": CosineSimilarityLoss()},
        args=TrainingArguments(output_dir=str(tmp_path)),
        log_history=[{"step": 1, "epoch": 1.0, "loss": 0.5}],
        metrics={},
        base_model=str(tmp_path),  # a local path: described, but not Hub metadata
        language=None,
    )
    meta = front_matter(card)
    assert "model-index" not in meta and "metrics:" not in meta and "base_model" not in meta and "language" not in meta
    assert "## Evaluation" not in card
    assert f"- **Base model:** `{tmp_path}`" in card
    assert f"\n# SentenceTransformer based on {tmp_path.name}\n" in card
    assert "Every argument has its default value." in section(card, "#### Non-Default Hyperparameters")
    assert "| 1.0   | 1    | 0.5           |" in card
    assert "### Training Dataset\n" in card and "bold row" not in card


def test_saved_card_loads(setup, model, tmp_path):
    _, card = setup
    model.save(tmp_path / "m", model_card=card)
    assert (tmp_path / "m" / "README.md").read_text(encoding="utf-8") == card
    hub = pytest.importorskip("huggingface_hub")
    results = hub.ModelCard(card).data.eval_results
    assert {(r.task_type, r.dataset_type, r.metric_type) for r in results} >= {
        ("semantic-similarity", "sts-dev", "spearman_cosine"),
        ("triplet", "nli-dev", "cosine_accuracy"),
    }
    st = pytest.importorskip("sentence_transformers")
    loaded = st.SentenceTransformer(str(tmp_path / "m"), device="cpu")
    assert loaded.encode(ANCHORS[:2]).shape == (2, model.embedding_dim)
