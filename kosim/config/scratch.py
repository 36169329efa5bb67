"""Models from scratch, for offline use: a WordPiece tokenizer trained on local text and a fresh small BERT.

Used by `kosim quickstart` (and anyone without hub access); everything saved is a normal sentence-transformers
directory.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kosim.model import SentenceEncoder
from kosim.nn import EncoderConfig, TransformerEncoder
from kosim.pooling import Pooling
from kosim.tokenizer import TextTokenizer

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _bert_pipeline(tok, lowercase: bool) -> None:
    """BERT's normalizer, pre-tokenizer and decoder on a `tokenizers.Tokenizer`, in place."""
    from tokenizers import decoders, normalizers, pre_tokenizers

    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()


def continuation_tokens(tok, texts: list[str]) -> list[str]:
    """``"##c"`` for every character that follows another inside a pre-tokenized word, sorted."""
    chars: set[str] = set()
    for text in texts:
        for word, _ in tok.pre_tokenizer.pre_tokenize_str(tok.normalizer.normalize_str(text)):
            chars.update(word[1:])
    return sorted(f"##{c}" for c in chars)


def train_wordpiece(texts: Iterable[str], vocab_size: int = 8000, lowercase: bool = False, min_frequency: int = 2):
    """A BERT-style WordPiece tokenizer trained on `texts`, as a transformers fast tokenizer; the same texts give
    the same vocabulary, in the same order, in every process.

    The `tokenizers` trainer gives the ``##`` continuation pieces ids in the order of a per-process random hash
    map, and merges of equal count are then chosen by those ids, so both the order and the set of pieces vary
    from run to run. Handing the trainer every continuation piece up front (sorted, after the special tokens)
    fixes their ids and with them every tie; the vocabulary is then loaded into a fresh WordPiece model, so that
    only the real special tokens are special.
    """
    from tokenizers import Tokenizer, models, processors, trainers
    from transformers import PreTrainedTokenizerFast

    texts = list(texts)
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    _bert_pipeline(tok, lowercase)
    pinned = SPECIAL_TOKENS + continuation_tokens(tok, texts)
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=pinned, show_progress=False
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok = Tokenizer(models.WordPiece(tok.get_vocab(), unk_token="[UNK]"))
    _bert_pipeline(tok, lowercase)
    tok.add_special_tokens(SPECIAL_TOKENS)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


def new_bert(
    texts: Iterable[str],
    vocab_size: int = 8000,
    max_seq_length: int = 64,
    pooling: str = "mean",
    seed: int = 0,
    **config: Any,
) -> SentenceEncoder:
    """A randomly initialised BERT SentenceEncoder with a tokenizer trained on `texts`.

    `config` holds EncoderConfig fields (hidden_size, num_hidden_layers, ...); the vocabulary size comes from the
    trained tokenizer and the position table from `max_seq_length`.
    """
    import torch

    hf_tokenizer = train_wordpiece(texts, vocab_size=vocab_size)
    with tempfile.TemporaryDirectory() as tmp:  # reload through the same path as any saved model
        hf_tokenizer.save_pretrained(tmp)
        tokenizer = TextTokenizer.load(Path(tmp), max_seq_length, do_lower_case=False, position_limit=max_seq_length)
    config.setdefault("max_position_embeddings", max_seq_length)
    cfg = EncoderConfig(model_type="bert", vocab_size=len(hf_tokenizer), pad_token_id=tokenizer.pad_token_id, **config)
    torch.manual_seed(seed)
    encoder = TransformerEncoder(cfg)
    return SentenceEncoder(encoder, tokenizer, Pooling(cfg.hidden_size, pooling))
