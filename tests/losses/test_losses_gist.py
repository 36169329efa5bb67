"""GISTEmbedLoss against sentence-transformers 6.2 (values and encoder gradients), and the guide table."""

from __future__ import annotations

import copy
import math
import shutil
import unicodedata

import numpy as np
import pytest
import torch
from helpers import KOREAN, build_checkpoint

from kosim.data.collate import collate
from kosim.data.datasets import ColumnDataset
from kosim.losses.gist import GISTEmbedLoss
from kosim.losses.guide import GuidedLoss, GuideTable, encode_guide_table, unique_texts
from kosim.model import SentenceEncoder
from kosim.nn.loading import to_hf_state_dict
from kosim.training.step import embed_columns, loss_backward

st = pytest.importorskip("sentence_transformers")
from sentence_transformers.sentence_transformer import losses as st_losses  # noqa: E402

# Korean rows for the tiny-BERT student (its tokenizer was trained on these words); the 5th row repeats a text so
# that the text ids have a duplicate, and the fox line is left out (the uncased tokenizer lowercases it).
KO = [t for t in KOREAN if not t.isascii()]
KO_ROWS = [
    (KO[0], KO[1], KO[2]),
    (KO[3], KO[4], KO[5]),
    (KO[6], KO[0], KO[3]),
    (KO[1], KO[6], KO[4]),
    (KO[2], KO[5], KO[1]),
]
# Lowercase English rows for a MiniLM student: its uncased tokenizer decodes them back to the same strings.
EN_ROWS = [
    ("a man is playing a flute", "a man plays music", "a woman is sleeping"),
    ("a child is riding a horse", "a kid rides an animal", "the child is indoors"),
    ("the plane is taking off", "an airplane leaves the ground", "the plane has landed"),
    ("a woman is cooking meat", "someone is making dinner", "a man is eating"),
    ("people are on a train", "passengers ride the train", "the people are aliens"),
    ("a dog catches a ball", "a dog is playing", "a cat is asleep"),
]

CONFIGS = [
    {},  # sentence-transformers' defaults: absolute margin 0, temperature 0.01, both contrasts
    {"margin_strategy": "absolute", "margin": 0.002, "temperature": 0.05},
    {"margin_strategy": "relative", "margin": 0.001},
    {"margin_strategy": "relative", "margin": 0.003, "contrast_anchors": False},
    {"margin_strategy": "absolute", "margin": -0.001, "contrast_positives": False},
]


@pytest.fixture(scope="module")
def same_vocab_guide(tmp_path_factory, bert_dir):
    """A tiny BERT with other weights but the student's tokenizer files (sentence-transformers then skips
    re-tokenizing and hands the guide the student's token ids)."""
    out = build_checkpoint(tmp_path_factory.mktemp("guide"), "bert", seed=1)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if (bert_dir / name).is_file():
            shutil.copy(bert_dir / name, out / name)
    return out


def _load_both(path):
    return _st_model(path, torch.float64), SentenceEncoder.load(path).eval().double()


@pytest.fixture(scope="module")
def tiny(bert_dir, same_vocab_guide):
    """Student and same-vocabulary guide, each in sentence-transformers and kosim, float64, eval mode (no dropout)."""
    return _load_both(bert_dir), _load_both(same_vocab_guide)


@pytest.fixture(scope="module")
def real(minilm):
    return _load_both(minilm)


def _texts(rows, n_columns):
    return [[row[c] for row in rows] for c in range(n_columns)]


def _st_model(path, dtype):
    return st.SentenceTransformer(str(path), device="cpu").eval().to(dtype)


def _st_reference(student, guide, columns, cached=None, **config):
    """sentence-transformers' loss and the student's gradients, by Hugging Face parameter name."""
    if cached is None:
        loss_fn = st_losses.GISTEmbedLoss(student, guide, **config)
    else:
        loss_fn = st_losses.CachedGISTEmbedLoss(student, guide, mini_batch_size=cached, **config)
    student.zero_grad()
    loss = loss_fn([student.preprocess(texts) for texts in columns], None)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in student[0].auto_model.named_parameters() if p.grad is not None}
    return loss.detach(), grads, loss_fn.must_retokenize


def _hf_grads(model: SentenceEncoder) -> dict[str, torch.Tensor]:
    """kosim's encoder gradients under Hugging Face names (the fused qkv split back), like the saved weights."""
    holder = copy.deepcopy(model.encoder)
    with torch.no_grad():
        for target, param in zip(holder.parameters(), model.encoder.parameters()):
            target.copy_(param.grad if param.grad is not None else torch.zeros_like(param))
    return to_hf_state_dict(holder)


def _dataset(columns):
    return ColumnDataset({f"c{i}": texts for i, texts in enumerate(columns)})


def _guide_table_by_forward(guide: SentenceEncoder, texts: list[str]) -> GuideTable:
    """The guide's embedding of each text from its own forward (in the guide's dtype; encode returns float32)."""
    dataset = ColumnDataset({"t": texts})
    batch = collate(dataset.tokenize(guide.tokenize), np.arange(len(texts)))
    with torch.no_grad():
        return GuideTable(guide(batch.packed))


def _kosim_run(student, table, columns, dtype, mini_batch_size=None, **config):
    dataset = _dataset(columns)
    batch = collate(dataset.tokenize(student.tokenize), np.arange(len(columns[0])))
    loss_fn = GuidedLoss(GISTEmbedLoss(**config), table)
    student.zero_grad()
    if dtype == torch.float64:  # the training step casts to float32; run the same forward in float64
        embeddings = list(student(batch.packed).split(batch.num_rows))
        loss = loss_fn(embeddings, batch.labels, text_ids=batch.text_ids)
        loss.backward()
    else:
        loss = loss_backward(student, loss_fn, batch, mini_batch_size=mini_batch_size)
    return loss.detach(), _hf_grads(student)


def _assert_same(ours, theirs, tol):
    (value, grads), (st_value, st_grads) = ours, theirs
    torch.testing.assert_close(value.double(), st_value.double(), rtol=tol, atol=tol)
    assert set(st_grads) <= set(grads)
    for name, st_grad in st_grads.items():
        torch.testing.assert_close(grads[name].double(), st_grad.double(), rtol=tol, atol=tol, msg=name)


def _assert_masking_matters(columns_st, student, guide, config):
    """The guide really removes candidates here: the loss differs from the same loss with nothing masked."""

    def value(**kwargs):
        with torch.no_grad():
            loss_fn = st_losses.GISTEmbedLoss(student, guide, **kwargs)
            return loss_fn([student.preprocess(texts) for texts in columns_st], None)

    masked_value = value(**config)
    plain_value = value(**dict(config, margin_strategy="absolute", margin=-1e9))
    assert not math.isclose(masked_value.item(), plain_value.item(), rel_tol=1e-6)
    assert masked_value.item() > 0  # and not everything but the positive


# ---------------------------------------------------------------------------------------------------------------
# Against sentence-transformers, float64 (both sides exact to rounding)
# ---------------------------------------------------------------------------------------------------------------


def _check_against_st(student, guide, columns, cached=None, retokenize=None, **config):
    """kosim (guide table from the guide's own forward) against sentence-transformers, float64, within 1e-6."""
    (st_student, kosim_student), (st_guide, kosim_guide) = student, guide
    value, grads, retokenized = _st_reference(st_student, st_guide, columns, cached=cached, **config)
    if retokenize is not None:
        assert retokenized is retokenize
    table = _guide_table_by_forward(kosim_guide, unique_texts(_dataset(columns)))
    _assert_same(_kosim_run(kosim_student, table, columns, torch.float64, **config), (value, grads), 1e-6)


@pytest.mark.parametrize("n_columns", [2, 3])
@pytest.mark.parametrize("config", CONFIGS)
def test_same_tokenizer_guide_matches_sentence_transformers(tiny, n_columns, config):
    # one vocabulary: sentence-transformers hands the guide the student's token ids
    _check_against_st(*tiny, _texts(KO_ROWS, n_columns), retokenize=False, **config)


@pytest.mark.parametrize("config", [CONFIGS[2]])
def test_minilm_student_tiny_guide_matches_sentence_transformers(tiny, real, config):
    # another vocabulary: sentence-transformers decodes the student's tokens and re-tokenizes them every step;
    # these lowercase English rows decode to themselves, so its guide reads the same texts as kosim's table
    _check_against_st(real, tiny[0], _texts(EN_ROWS, 3), retokenize=True, **config)


def test_tiny_student_minilm_guide_matches_sentence_transformers(tiny, real):
    columns = _texts(KO_ROWS, 3)
    st_student = tiny[0][0]
    for texts in columns:  # the decoded student tokens are the texts (up to Unicode normalisation, as MiniLM's)
        decoded = st_student.tokenizer.batch_decode(st_student.preprocess(texts)["input_ids"], skip_special_tokens=True)
        assert [unicodedata.normalize("NFC", d) for d in decoded] == texts
    for config in ({}, {"margin_strategy": "relative", "margin": 0.1}):
        _check_against_st(tiny[0], real, columns, retokenize=True, **config)
        _assert_masking_matters(columns, st_student, real[0], config)


@pytest.mark.parametrize("cached", [None, 2])
def test_several_negatives_match_cached_gist(tiny, cached):
    # sentence-transformers' GISTEmbedLoss takes at most one negative column; its cached form takes several (its
    # mini-batches only change rounding)
    rows = [(*row, KO[(i + 3) % len(KO)]) for i, row in enumerate(KO_ROWS)]
    _check_against_st(*tiny, _texts(rows, 4), cached=cached or len(rows), margin_strategy="relative", margin=0.001)


def test_masking_is_not_trivial_on_the_tiny_models(tiny):
    (st_student, _), (st_guide, _) = tiny
    for config in CONFIGS:
        _assert_masking_matters(_texts(KO_ROWS, 3), st_student, st_guide, config)


# ---------------------------------------------------------------------------------------------------------------
# The training path: float32, the guide table from encode, the plain and the gradient-cached step
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mini_batch_size", [2])
def test_training_step_matches_sentence_transformers_float32(minilm, bert_dir, mini_batch_size):
    columns = _texts(EN_ROWS, 3)
    config = {"margin_strategy": "relative", "margin": 0.001}
    st_student, st_guide = _st_model(minilm, torch.float32), _st_model(bert_dir, torch.float32)
    reference = _st_reference(st_student, st_guide, columns, cached=mini_batch_size, **config)[:2]
    table = GuideTable.from_dataset(SentenceEncoder.load(bert_dir), _dataset(columns))
    student = SentenceEncoder.load(minilm).eval()
    ours = _kosim_run(student, table, columns, torch.float32, mini_batch_size=mini_batch_size, **config)
    # float32 forwards of two implementations differ by ~1e-6 and the logits are cosines / 0.01
    _assert_same(ours, reference, 2e-4)


def test_grad_cache_equals_plain_step(bert_dir, same_vocab_guide):
    columns = _texts(KO_ROWS, 3)
    table = GuideTable.from_dataset(SentenceEncoder.load(same_vocab_guide), _dataset(columns))
    student = SentenceEncoder.load(bert_dir).eval()
    config = {"margin_strategy": "absolute", "margin": 0.002}
    plain = _kosim_run(student, table, columns, torch.float32, **config)
    cached = _kosim_run(student, table, columns, torch.float32, mini_batch_size=2, **config)
    _assert_same(cached, plain, 1e-5)


# ---------------------------------------------------------------------------------------------------------------
# The guide table
# ---------------------------------------------------------------------------------------------------------------


def test_unique_texts_follow_the_dataset_text_ids():
    dataset = _dataset(_texts(KO_ROWS, 3))
    texts = unique_texts(dataset)
    assert len(texts) == len(set(texts)) == dataset.num_unique_texts
    for c, name in enumerate(dataset.column_names):
        assert [texts[i] for i in dataset.text_ids[c]] == dataset.column(name)


@pytest.mark.parametrize("guide_kind", ["same_vocab_guide", "minilm"])
def test_guide_table_equals_per_batch_guide_encoding(bert_dir, guide_kind, request):
    """Looking a batch up in the table built once = running the guide on that batch's texts (with its own
    tokenizer), for every batch of an epoch."""
    columns = _texts(KO_ROWS + [(r[1], r[2], r[0]) for r in KO_ROWS], 3)
    dataset = _dataset(columns)
    guide = SentenceEncoder.load(request.getfixturevalue(guide_kind))
    table = GuideTable.from_dataset(guide, dataset, batch_size=3)
    assert len(table) == dataset.num_unique_texts and table.embeddings.dtype == torch.float32
    tokenized = dataset.tokenize(SentenceEncoder.load(bert_dir).tokenize)  # the student's tokens
    guide_tokens = dataset.tokenize(guide.tokenize)
    order = np.random.default_rng(0).permutation(len(dataset))
    for rows in np.array_split(order, 3):
        looked_up = table.lookup(collate(tokenized, rows).text_ids)
        with torch.no_grad():
            direct = embed_columns(guide.eval(), collate(guide_tokens, rows))
        for c in range(3):
            torch.testing.assert_close(looked_up[c], direct[c], rtol=1e-5, atol=1e-5)
            expected = guide.encode([columns[c][r] for r in rows], to="torch")
            torch.testing.assert_close(looked_up[c], expected, rtol=0, atol=1e-6)  # other batches, other rounding


def test_encode_guide_table_truncates_for_the_guide_only(bert_dir):
    guide = SentenceEncoder.load(bert_dir)
    texts = [KO[2] * 3, KO[0]]
    full = encode_guide_table(guide, texts)
    short = encode_guide_table(guide, texts, max_seq_length=6)
    assert guide.max_seq_length == 64  # restored
    guide.max_seq_length = 6
    torch.testing.assert_close(short, guide.encode(texts, to="torch"), rtol=0, atol=0)
    assert (short[0] - full[0]).abs().max() > 1e-3


# ---------------------------------------------------------------------------------------------------------------
# Arguments and errors
# ---------------------------------------------------------------------------------------------------------------


def _random_columns(n, batch=4, dim=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, dim, generator=generator) for _ in range(n)]


def test_hand_formula_without_masking():
    """With nothing masked the loss is cross-entropy over [a.p, a.a, p.p] cosines / temperature."""
    a, p = _random_columns(2, seed=1)
    guide = _random_columns(2, dim=5, seed=2)
    loss = GISTEmbedLoss(temperature=0.1, margin=-10.0)([a, p], guide_embeddings=guide)
    cos = torch.nn.functional.cosine_similarity
    ap = cos(a[:, None], p[None], dim=-1)
    aa = cos(a[:, None], a[None], dim=-1)
    pp = cos(p[:, None], p[None], dim=-1)
    expected = torch.nn.functional.cross_entropy(torch.cat([ap, aa, pp], 1) / 0.1, torch.arange(4))
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature": 0}, "temperature must be a positive number"),
        ({"margin_strategy": "percent"}, "margin_strategy must be one of"),
        ({"margin": float("nan")}, "margin must be a finite number"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GISTEmbedLoss(**kwargs)


def test_bad_guide_embeddings():
    columns = _random_columns(3)
    loss = GISTEmbedLoss()
    with pytest.raises(ValueError, match="needs guide_embeddings"):
        loss(columns)
    with pytest.raises(ValueError, match="2 guide embedding columns for 3"):
        loss(columns, guide_embeddings=_random_columns(2))
    with pytest.raises(ValueError, match="guide embeddings have batch size 3"):
        loss(columns, guide_embeddings=_random_columns(3, batch=3))
    with pytest.raises(ValueError, match="needs the batch's text_ids"):
        GuidedLoss(loss, GuideTable(torch.zeros(4, 8)))(columns)
    with pytest.raises(ValueError, match=r"\[num_texts, dim\] float tensor"):
        GuideTable(torch.zeros(4, dtype=torch.long))


def test_config_uses_sentence_transformers_names():
    config = GuidedLoss(GISTEmbedLoss(margin=0.1), GuideTable(torch.zeros(1, 2))).config()
    assert config == {
        "temperature": 0.01,
        "margin_strategy": "absolute",
        "margin": 0.1,
        "contrast_anchors": True,
        "contrast_positives": True,
    }
