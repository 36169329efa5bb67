"""mine -> file -> train with MarginMSELoss: the teacher scores that mining writes with output_scores, read back from
JSONL and TSV as [rows, 1 + negatives] labels, give sentence-transformers' MarginMSELoss values and gradients."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from helpers import KOREAN

from kosim.data import read_table
from kosim.data.collate import collate
from kosim.losses import build_loss
from kosim.mining import mine_hard_negatives, to_column_dataset, write_mined
from kosim.model import SentenceEncoder
from kosim.nn.loading import to_hf_state_dict
from kosim.training import Trainer, TrainingArguments

st = pytest.importorskip("sentence_transformers")
from sentence_transformers.sentence_transformer import losses as st_losses  # noqa: E402

KO = [t for t in KOREAN if not t.isascii()]  # 7 texts the tiny tokenizer knows
PAIRS = {"anchor": [KO[0], KO[1], KO[2], KO[3]], "positive": [KO[4], KO[5], KO[6], KO[0]]}
N_NEG = 3


@pytest.fixture(scope="module")
def mined(bert_dir):
    """n-tuple rows with the start model's scores (positive first, then each negative)."""
    model = SentenceEncoder.load(bert_dir)
    rows = mine_hard_negatives(
        PAIRS, model, corpus=KO, num_negatives=N_NEG, output_format="n-tuple", output_scores=True, verbose=False
    )
    assert len(rows["anchor"]) >= 3 and len(rows["scores"][0]) == N_NEG + 1
    return rows


@pytest.mark.parametrize("suffix", [".jsonl", ".tsv"])
def test_mined_scores_round_trip_through_the_file(mined, tmp_path, suffix):
    data = read_table(write_mined(mined, tmp_path / f"mined{suffix}"), label="scores")
    assert data.column_names == ["anchor", "positive", *(f"negative_{j}" for j in range(1, N_NEG + 1))]
    np.testing.assert_array_equal(data.labels, np.array(mined["scores"]))
    in_memory = to_column_dataset(mined, label="scores")
    np.testing.assert_array_equal(in_memory.labels, data.labels)
    assert in_memory.column_names == data.column_names


def _grads(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("suffix", [".jsonl", ".tsv"])
def test_margin_mse_from_the_mined_file_matches_sentence_transformers(mined, bert_dir, tmp_path, suffix):
    data = read_table(write_mined(mined, tmp_path / f"mined{suffix}"), label="scores")
    n = len(data)
    st_model = st.SentenceTransformer(str(bert_dir), device="cpu").eval().double()
    model = SentenceEncoder.load(bert_dir).eval().double()

    st_labels = torch.tensor(mined["scores"], dtype=torch.float64)  # ST's collator: the "scores" column as labels
    features = [st_model.preprocess(data.column(c)) for c in data.column_names]
    st_loss = st_losses.MarginMSELoss(st_model)(features, st_labels)
    st_loss.backward()
    st_grads = _grads(st_model[0].auto_model)

    batch = collate(data.tokenize(model.tokenize), np.arange(n))
    assert tuple(batch.labels.shape) == (n, N_NEG + 1)
    loss = build_loss("margin_mse")(list(model(batch.packed).split(n)), batch.labels.double(), batch.text_ids)
    loss.backward()
    holder = copy.deepcopy(model.encoder)
    with torch.no_grad():
        for target, param in zip(holder.parameters(), model.encoder.parameters()):
            target.copy_(param.grad)
    grads = to_hf_state_dict(holder)

    # the file holds the scores as written (float64 text), the batch carries them as float32
    torch.testing.assert_close(loss.detach(), st_loss.detach(), rtol=1e-6, atol=1e-6)
    assert st_grads
    for name, st_grad in st_grads.items():
        torch.testing.assert_close(grads[name], st_grad, rtol=1e-6, atol=1e-6, msg=name)


def test_kosim_trains_margin_mse_on_the_mined_file(mined, bert_dir, tmp_path):
    data = read_table(write_mined(mined, tmp_path / "mined.jsonl"), label="scores")
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=len(data),
        max_steps=2,
        logging_steps=1,
        save_steps=1000,
        disable_tqdm=True,
    )
    model = SentenceEncoder.load(bert_dir)
    before = [p.detach().clone() for p in model.parameters()]
    Trainer(model, args, data, build_loss("marginmse")).train()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
