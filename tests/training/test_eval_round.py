"""One evaluation round: every distinct text embedded once (the model's embedding memo), shared by the validation
loss and the evaluators, with the numbers of the batch-by-batch computation and nothing stale after a step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import KOREAN, short_run_args

from kosim.data import ColumnDataset
from kosim.evaluation import EmbeddingSimilarityEvaluator, TripletEvaluator
from kosim.losses import CosineSimilarityLoss, MultipleNegativesRankingLoss
from kosim.model import SentenceEncoder
from kosim.precision import autocast
from kosim.training import Trainer

KO = [t for t in KOREAN if not t.isascii()]
ROWS = 10  # with an eval batch of 4: batches of 4, 4 and 2 rows
PAIRS = ColumnDataset(  # texts repeat inside and across the columns
    {"a": [KO[i % 7] for i in range(ROWS)], "b": [KO[(3 * i + 1) % 7] + " " + KO[i % 5] for i in range(ROWS)]},
    labels=[(i % 5) / 4 for i in range(ROWS)],
)
TRIPLETS = ColumnDataset(
    {
        "anchor": [KO[i % 7] for i in range(ROWS)],
        "positive": [KO[(i + 1) % 7] for i in range(ROWS)],
        "negative": [KO[(2 * i + 3) % 7] + " " + KO[1] for i in range(ROWS)],
    }
)


def _trainer(model_dir: Path, out: Path, loss, eval_dataset, evaluator=None, **settings) -> Trainer:
    model = SentenceEncoder.load(model_dir)
    return Trainer(model, short_run_args(out, 4, **settings), PAIRS, loss, eval_dataset, evaluator)


def _old_validation_loss(
    model: SentenceEncoder, data: ColumnDataset, loss, batch_size: int, dtype="float32", prompts=None
):
    """The validation loss as the Trainer computed it before the memo, written out: tokenize the dataset, pack each
    batch of consecutive rows (all columns), one training forward under autocast, loss weighted by rows."""
    from kosim.data.collate import collate

    model.eval()
    prompts = prompts or {}
    tok = data.tokenize(model.tokenizer, prompts=prompts, prompt_length_fn=model.tokenizer.prompt_length)
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            rows = np.arange(start, min(start + batch_size, len(data)))
            batch = collate(tok, rows)
            with autocast(model.device, dtype):
                columns = list(model(batch.packed).float().split(batch.num_rows))
            total += loss(columns, batch.labels, text_ids=batch.text_ids).item() * len(rows)
            count += len(rows)
    return total / count


@pytest.mark.parametrize(
    "loss, data", [(CosineSimilarityLoss(), PAIRS), (MultipleNegativesRankingLoss(), TRIPLETS)], ids=["cosine", "mnrl"]
)
def test_validation_loss_equals_the_batch_by_batch_forward(bert_dir, tmp_path, loss, data):
    trainer = _trainer(bert_dir, tmp_path, loss, data)
    trainer.model.truncate_dim = 16  # encode's default width; the loss still sees every dimension
    got = trainer.validation_loss()["validation_loss"]
    expected = _old_validation_loss(SentenceEncoder.load(bert_dir), data, loss, 4)
    assert abs(got - expected) <= 1e-6


def test_validation_loss_with_prompts_and_several_eval_datasets(bert_dir, tmp_path):
    prompts = {"a": "질문: "}
    evals = {"one": PAIRS, "two": PAIRS.select(range(7))}  # the same texts in both: embedded once
    trainer = _trainer(bert_dir, tmp_path, CosineSimilarityLoss(), evals, prompts=prompts)
    got = trainer.validation_loss()
    model = SentenceEncoder.load(bert_dir)
    for name, data in evals.items():
        expected = _old_validation_loss(model, data, CosineSimilarityLoss(), 4, prompts=prompts)
        assert abs(got[f"{name}_validation_loss"] - expected) <= 1e-6, name


def test_bf16_validation_loss_keeps_the_autocast_forward(bert_dir, tmp_path):
    trainer = _trainer(bert_dir, tmp_path, CosineSimilarityLoss(), PAIRS, bf16=True)
    got = trainer.validation_loss()["validation_loss"]
    model = SentenceEncoder.load(bert_dir)
    bf16 = _old_validation_loss(model, PAIRS, CosineSimilarityLoss(), 4, dtype="bfloat16")
    fp32 = _old_validation_loss(model, PAIRS, CosineSimilarityLoss(), 4)
    # bf16 numbers (the same forward; only the packing of the batches differs), not the float32 ones
    assert got == pytest.approx(bf16, rel=1e-2, abs=1e-4)
    assert got != pytest.approx(fp32, rel=1e-6, abs=1e-9)


def _count_embedded_texts(model: SentenceEncoder, monkeypatch) -> list[int]:
    """Sequences through the encoder, by encode's inference path or the training forward."""
    seen: list[int] = []
    encoder = model.encoder
    infer, forward = encoder.infer, encoder.forward

    def counted_infer(batch, *args, **kwargs):
        seen.append(batch.num_seqs)
        return infer(batch, *args, **kwargs)

    def counted_forward(batch, *args, **kwargs):
        seen.append(batch.num_seqs)
        return forward(batch, *args, **kwargs)

    monkeypatch.setattr(encoder, "infer", counted_infer)
    monkeypatch.setattr(encoder, "forward", counted_forward)
    return seen


def _evaluators():
    sts = EmbeddingSimilarityEvaluator(PAIRS.column("a"), PAIRS.column("b"), PAIRS.labels, batch_size=3, name="sts")
    triplet = TripletEvaluator(*(TRIPLETS.column(c) for c in TRIPLETS.column_names), batch_size=5, name="tri")
    return [sts, triplet]


def test_an_evaluation_round_embeds_each_text_once(bert_dir, tmp_path, monkeypatch):
    trainer = _trainer(bert_dir, tmp_path, CosineSimilarityLoss(), PAIRS, _evaluators())
    seen = _count_embedded_texts(trainer.model, monkeypatch)
    metrics = trainer.evaluate()
    distinct = {t for data in (PAIRS, TRIPLETS) for c in data.column_names for t in data.column(c)}
    assert sum(seen) == len(distinct)  # val loss + two evaluators: each distinct text once (was 2 * ROWS + ...)
    assert {"validation_loss", "sts_spearman_cosine", "tri_cosine_accuracy"} <= set(metrics)
    seen.clear()
    tokenized: list[str] = []
    encode_flat = trainer.model.tokenizer.encode_flat
    monkeypatch.setattr(
        trainer.model.tokenizer, "encode_flat", lambda texts: tokenized.extend(texts) or encode_flat(texts)
    )
    trainer.evaluate()
    assert sum(seen) == len(distinct)  # a new round embeds again: the memo did not outlive the first one
    assert tokenized == []  # but the run's token cache still holds every text's ids


def test_memo_gives_the_numbers_of_no_memo(bert_dir, tmp_path):
    trainer = _trainer(bert_dir, tmp_path, CosineSimilarityLoss(), PAIRS, _evaluators()[:1])
    metrics = trainer.evaluate()
    model = SentenceEncoder.load(bert_dir)
    expected = _evaluators()[0](model)  # no memo
    assert {k: metrics[k] for k in expected} == expected
    assert abs(metrics["validation_loss"] - _old_validation_loss(model, PAIRS, CosineSimilarityLoss(), 4)) <= 1e-6
    assert list(metrics)[0] == "validation_loss"  # the logged order is unchanged: losses first


def test_no_stale_embedding_after_a_training_step(bert_dir, tmp_path):
    trainer = _trainer(bert_dir, tmp_path, CosineSimilarityLoss(), PAIRS)
    model = trainer.model
    before = trainer.evaluate()["validation_loss"]
    assert model._memo is None  # closed with the round
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    with model.embedding_memo() as memo:
        first = model.encode(KO)
        model.train()
        loss = model.encode(KO, to="torch").sum() * 0 + sum(p.sum() for p in model.parameters())
        loss.backward()
        optimizer.step()  # weights change inside the memo: it forgets
        model.eval()
        second = model.encode(KO)
        assert memo.embedded == 2 * len(KO)
    fresh = model.encode(KO)
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(second, fresh)
    after = trainer.evaluate()["validation_loss"]
    assert after != before
    assert abs(after - _old_validation_loss(model, PAIRS, CosineSimilarityLoss(), 4)) <= 1e-6


def test_a_training_run_evaluates_the_current_weights(bert_dir, tmp_path):
    trainer = _trainer(
        bert_dir,
        tmp_path,
        CosineSimilarityLoss(),
        PAIRS,
        _evaluators()[:1],
        max_steps=2,
        eval_strategy="steps",
        eval_steps=1,
        learning_rate=1e-2,
    )
    trainer.train()
    rounds = [r for r in trainer.log_history if "validation_loss" in r]
    assert [r["step"] for r in rounds] == [1, 2]
    assert rounds[0]["validation_loss"] != rounds[1]["validation_loss"]
    final = SentenceEncoder.load(tmp_path)
    assert abs(rounds[1]["validation_loss"] - _old_validation_loss(final, PAIRS, CosineSimilarityLoss(), 4)) <= 1e-6


def test_kosim_st_trainer_rounds_share_the_memo(bert_dir, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    import kosim.st as ks

    model = ks.SentenceTransformer(str(bert_dir), device="cpu")
    scored = datasets.Dataset.from_dict({"a": PAIRS.column("a"), "b": PAIRS.column("b"), "score": PAIRS.labels})
    evaluator = ks.evaluation.EmbeddingSimilarityEvaluator(PAIRS.column("a"), PAIRS.column("b"), PAIRS.labels)
    args = ks.SentenceTransformerTrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=4)
    trainer = ks.SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=scored,
        eval_dataset=scored,
        loss=ks.losses.CosineSimilarityLoss(model),
        evaluator=evaluator,
    )
    seen = _count_embedded_texts(model, monkeypatch)
    metrics = trainer.evaluate()
    assert sum(seen) == len({t for c in PAIRS.column_names for t in PAIRS.column(c)})
    expected = _old_validation_loss(SentenceEncoder.load(bert_dir), PAIRS, CosineSimilarityLoss(), 4)
    assert abs(metrics["eval_loss"] - expected) <= 1e-6
    assert (
        metrics["eval_spearman_cosine"]
        == evaluator(ks.SentenceTransformer(str(bert_dir), device="cpu"))["spearman_cosine"]
    )


def test_a_matryoshka_round_embeds_each_text_once(bert_dir, tmp_path, monkeypatch):
    """A Matryoshka model (truncate_dim set): the full-width validation loss and evaluators at 8, 16 and the model's
    width read one embedding per text, truncated afterwards, with the numbers each computes without the memo."""
    from kosim.losses import MatryoshkaLoss

    def evaluators():
        a, b = PAIRS.column("a"), PAIRS.column("b")
        return [
            EmbeddingSimilarityEvaluator(a, b, PAIRS.labels, name=f"sts{dim}", truncate_dim=dim)
            for dim in (8, 16, None)
        ]

    loss = MatryoshkaLoss(CosineSimilarityLoss(), [32, 16, 8])
    trainer = _trainer(bert_dir, tmp_path, loss, PAIRS, evaluators())
    trainer.model.truncate_dim = 16
    seen = _count_embedded_texts(trainer.model, monkeypatch)
    metrics = trainer.evaluate()
    assert sum(seen) == len({t for c in PAIRS.column_names for t in PAIRS.column(c)})  # one embedding pass
    plain = SentenceEncoder.load(bert_dir)
    plain.truncate_dim = 16
    for evaluator in evaluators():
        expected = evaluator(plain)  # no memo
        assert {k: metrics[k] for k in expected} == pytest.approx(expected, abs=1e-6)
    assert abs(metrics["validation_loss"] - _old_validation_loss(plain, PAIRS, loss, 4)) <= 1e-6
