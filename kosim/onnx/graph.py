"""The padded-batch formulation of a SentenceEncoder that ONNX export traces.

kosim's packed encoder gathers tokens into per-length grids with data-dependent shapes, which an exporter cannot
trace into one graph with dynamic axes. `PaddedSentenceModel` computes the same embeddings from the same weights
on a right-padded batch `[batch, seq]`: the encoder's padded reference path (or the transformers model of an
`HFEncoder`), then each pooling mode written with the attention mask, then the Dense / Normalize modules.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kosim.nn import HFEncoder, TransformerEncoder


def padded_pooling(states: Tensor, mask: Tensor, modes: tuple[str, ...]) -> Tensor:
    """Pool right-padded token states `[batch, seq, hidden]` with `mask [batch, seq]` (1 = token):
    `[batch, hidden * len(modes)]`, mode by mode as `kosim.pooling.Pooling` does on packed tokens."""
    weights = mask.to(states.dtype).unsqueeze(-1)  # [batch, seq, 1]
    count = weights.sum(dim=1).clamp(min=1e-9)  # [batch, 1]
    out = []
    for mode in modes:
        if mode == "cls":
            out.append(states[:, 0])
        elif mode == "lasttoken":
            last = (mask.sum(dim=1) - 1).clamp(min=0).long()  # [batch]
            index = last.view(-1, 1, 1).expand(-1, 1, states.shape[-1])
            out.append(states.gather(1, index).squeeze(1))
        elif mode == "mean":
            out.append((states * weights).sum(dim=1) / count)
        elif mode == "mean_sqrt_len_tokens":
            out.append((states * weights).sum(dim=1) / count.sqrt())
        elif mode == "weightedmean":
            positions = torch.cumsum(torch.ones_like(mask), dim=1).to(states.dtype).unsqueeze(-1)  # 1, 2, ...
            w = weights * positions
            out.append((states * w).sum(dim=1) / w.sum(dim=1).clamp(min=1e-9))
        elif mode == "max":
            out.append(states.masked_fill(weights == 0, float("-inf")).amax(dim=1))
        else:
            raise ValueError(f"pooling mode {mode!r} cannot be exported")
    return torch.cat(out, dim=-1) if len(out) > 1 else out[0]


class PaddedSentenceModel(nn.Module):
    """`(input_ids, attention_mask[, token_type_ids]) [batch, seq]` -> `(last_hidden_state [batch, seq, hidden],
    sentence_embedding [batch, dim])`, sharing the weights of a SentenceEncoder (in eval mode, no prompt)."""

    def __init__(self, model, use_token_type_ids: bool):
        super().__init__()
        # no prompt is part of an exported graph, so `include_prompt=False` pools the same tokens as True
        self.encoder = model.encoder
        self.modes = tuple(model.pooling.modes)
        self.post = model.post
        self.use_token_type_ids = use_token_type_ids

    def token_states(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None) -> Tensor:
        if isinstance(self.encoder, TransformerEncoder):
            return self.encoder.forward_padded(input_ids, attention_mask, token_type_ids)
        if isinstance(self.encoder, HFEncoder):
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            return self.encoder.model(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        raise TypeError(f"cannot export an encoder of type {type(self.encoder).__name__}")

    def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor | None = None):
        states = self.token_states(input_ids, attention_mask, token_type_ids if self.use_token_type_ids else None)
        x = padded_pooling(states, attention_mask, self.modes)  # [batch, pooled]
        for module in self.post:
            x = module(x)
        return states, x


__all__ = ["PaddedSentenceModel", "padded_pooling"]
