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


def train_wordpiece(texts: Iterable[str], vocab_size: int = 8000, lowercase: bool = False, min_frequency: int = 2):
    """A BERT-style WordPiece tokenizer trained on `texts`, as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=SPECIAL_TOKENS, show_progress=False
    )
    tok.train_from_iterator(texts, trainer=trainer)
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
