"""Fallback for architectures kosim does not implement itself (ELECTRA, DeBERTa, ...): transformers.AutoModel.

It takes the same PackedBatch and returns the same `[tokens, hidden]` states as kosim's own encoder, so pooling,
losses and training do not care which one runs. It pads internally, so it is not padding-free.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from kosim.nn.packing import PackedBatch


class HFEncoder(nn.Module):
    def __init__(self, model: nn.Module, pad_token_id: int):
        super().__init__()
        self.model = model
        self.pad_token_id = pad_token_id

    @classmethod
    def load(cls, model_dir: Path, trust_remote_code: bool = False) -> HFEncoder:
        from transformers import AutoModel

        model = AutoModel.from_pretrained(str(model_dir), trust_remote_code=trust_remote_code)
        pad = getattr(model.config, "pad_token_id", None)
        return cls(model, 0 if pad is None else int(pad))

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def max_sequence_length(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 512))

    def forward(self, batch: PackedBatch) -> Tensor:
        input_ids, mask = batch.padded(self.pad_token_id)  # [seqs, max_len]
        states = self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state  # [seqs, max_len, hidden]
        return states.reshape(-1, states.shape[-1]).index_select(0, batch.pad_index)  # [tokens, hidden]

    def num_non_embedding_parameters(self) -> int:
        return sum(p.numel() for n, p in self.model.named_parameters() if "embeddings" not in n)
