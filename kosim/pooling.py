"""Modules after the encoder: Pooling (token states -> one vector per sequence), Dense, Normalize.

Pooling works on packed token states `[tokens, hidden]` by segment, so it never sees padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kosim.nn.packing import PackedBatch
from kosim.st_format import (
    DENSE_KEYS,
    LEGACY_POOLING_KEYS,
    NORMALIZE_KEYS,
    POOLING_KEYS,
    POOLING_MODES,
    CheckpointError,
    check_module_config,
)

__all__ = ["POOLING_MODES", "Dense", "Normalize", "Pooling"]


class Pooling(nn.Module):
    """Pool token states per sequence with one or more modes (concatenated in the given order).

    `include_prompt=False` leaves the first `prompt_length` tokens of each sequence out of the pool.
    """

    def __init__(self, dim: int, modes: str | Sequence[str] = "mean", include_prompt: bool = True):
        super().__init__()
        modes = (modes,) if isinstance(modes, str) else tuple(modes)
        if not modes:
            raise ValueError("Pooling needs at least one mode")
        for mode in modes:
            if mode not in POOLING_MODES:
                raise ValueError(f"unknown pooling mode {mode!r}; expected one of {POOLING_MODES}")
        self.dim = dim
        self.modes = modes
        self.include_prompt = include_prompt

    @property
    def output_dim(self) -> int:
        return self.dim * len(self.modes)

    def forward(self, tokens: Tensor, batch: PackedBatch, prompt_length: int = 0) -> Tensor:
        """`tokens [tokens, hidden]` of a packed batch -> `[seqs, hidden * len(modes)]`.

        The prompt tokens left out with `include_prompt=False` are the batch's per-sequence `prompt_lengths`
        (training batches, where each column has its own prompt) or else `prompt_length` for every sequence.
        """
        n, hidden = batch.num_seqs, tokens.shape[-1]
        acc_dtype = torch.float32 if tokens.dtype in (torch.float16, torch.bfloat16) else tokens.dtype
        skip: int | Tensor = 0  # prompt tokens per sequence: an int, or [seqs] int64
        if not self.include_prompt:
            skip = batch.prompt_lengths if batch.prompt_lengths is not None else int(prompt_length)
        keep = None  # [tokens, 1]: 1 where a token is pooled
        if isinstance(skip, Tensor):
            keep = (batch.positions >= skip[batch.seq_index]).to(acc_dtype).unsqueeze(1)
        elif skip:
            keep = (batch.positions >= skip).to(acc_dtype).unsqueeze(1)
        starts, ends = batch.cu_seqlens[:-1], batch.cu_seqlens[1:]
        out = []
        for mode in self.modes:
            if mode == "cls":
                first = starts + torch.where(batch.lengths > skip, skip, 0) if keep is not None else starts
                out.append(tokens[first])
            elif mode == "lasttoken":
                out.append(tokens[ends - 1])
            elif mode in ("mean", "mean_sqrt_len_tokens"):
                weights = keep if keep is not None else tokens.new_ones(tokens.shape[0], 1, dtype=acc_dtype)
                out.append(self._weighted_mean(tokens, weights, batch, n, sqrt=(mode == "mean_sqrt_len_tokens")))
            elif mode == "weightedmean":
                weights = (batch.positions + 1).to(acc_dtype).unsqueeze(1)  # [tokens, 1]
                if keep is not None:
                    weights = weights * keep
                out.append(self._weighted_mean(tokens, weights, batch, n, sqrt=False))
            else:  # max
                values = tokens if keep is None else tokens.masked_fill(keep == 0, float("-inf"))
                index = batch.seq_index.unsqueeze(1).expand(-1, hidden)
                init = tokens.new_full((n, hidden), float("-inf"))
                out.append(init.scatter_reduce(0, index, values, reduce="amax", include_self=True))
        return torch.cat(out, dim=-1) if len(out) > 1 else out[0]

    @staticmethod
    def _weighted_mean(tokens: Tensor, weights: Tensor, batch: PackedBatch, n: int, sqrt: bool) -> Tensor:
        total = tokens.new_zeros(n, tokens.shape[-1], dtype=weights.dtype)
        total = total.index_add(0, batch.seq_index, tokens.to(weights.dtype) * weights)  # [seqs, hidden]
        count = weights.new_zeros(n, 1).index_add(0, batch.seq_index, weights).clamp(min=1e-9)  # [seqs, 1]
        return total / (count.sqrt() if sqrt else count)

    def config(self) -> dict[str, Any]:
        """`1_Pooling/config.json`: sentence-transformers 3.x booleans when the order allows, else the new form."""
        canonical = tuple(m for m in POOLING_MODES if m in self.modes)
        if canonical == self.modes:
            cfg: dict[str, Any] = {"word_embedding_dimension": self.dim}
            cfg.update({key: mode in self.modes for key, mode in LEGACY_POOLING_KEYS.items()})
        else:
            cfg = {"embedding_dimension": self.dim, "pooling_mode": list(self.modes)}
        cfg["include_prompt"] = self.include_prompt
        return cfg

    @classmethod
    def from_config(cls, cfg: dict[str, Any], source: str = "1_Pooling/config.json") -> Pooling:
        """Read either config format (sentence-transformers 3.x booleans or the newer `pooling_mode`); a key
        kosim does not know is refused."""
        check_module_config(cfg, POOLING_KEYS, source)
        dim = cfg.get("word_embedding_dimension", cfg.get("embedding_dimension"))
        if not isinstance(dim, int):
            raise CheckpointError(f"{source}: missing word_embedding_dimension / embedding_dimension")
        if "pooling_mode" in cfg and cfg["pooling_mode"] is not None:
            modes = cfg["pooling_mode"]
            modes = [modes] if isinstance(modes, str) else list(modes)
            modes = [LEGACY_POOLING_KEYS.get(m, m) for m in modes]
        else:
            modes = [mode for key, mode in LEGACY_POOLING_KEYS.items() if cfg.get(key, False)]
        if not modes:
            raise CheckpointError(f"{source}: no pooling mode is enabled")
        try:
            return cls(dim, modes, include_prompt=bool(cfg.get("include_prompt", True)))
        except ValueError as exc:
            raise CheckpointError(f"{source}: {exc}") from exc

    def extra_repr(self) -> str:
        return f"dim={self.dim}, modes={self.modes}, include_prompt={self.include_prompt}"


# Activations a Dense layer may name in its config: an explicit registry, nothing is imported from strings.
DENSE_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "torch.nn.modules.activation.Tanh": nn.Tanh,
    "torch.nn.modules.linear.Identity": nn.Identity,
    "torch.nn.modules.activation.ReLU": nn.ReLU,
    "torch.nn.modules.activation.GELU": nn.GELU,
    "torch.nn.modules.activation.Sigmoid": nn.Sigmoid,
    "torch.nn.modules.activation.SiLU": nn.SiLU,
}


class Dense(nn.Module):
    """Linear projection plus activation on sentence embeddings: `[n, in] -> [n, out]`.

    `use_residual=True` (sentence-transformers 6) adds the input back: `act(linear(x)) + x`, or `+ residual(x)`
    through a bias-free `Linear(in, out)` when the widths differ.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str | None = None,
        use_residual: bool = False,
    ):
        super().__init__()
        activation = activation or "torch.nn.modules.activation.Tanh"
        if activation not in DENSE_ACTIVATIONS:
            raise ValueError(
                f"Dense activation {activation!r} is not supported; expected one of {list(DENSE_ACTIVATIONS)}"
            )
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.activation_name = activation
        self.activation = DENSE_ACTIVATIONS[activation]()
        self.use_residual = bool(use_residual)
        if self.use_residual and in_features != out_features:
            self.residual = nn.Linear(in_features, out_features, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = self.activation(self.linear(x))  # [n, out]
        if self.use_residual:
            out = out + (self.residual(x) if hasattr(self, "residual") else x)
        return out

    @property
    def output_dim(self) -> int:
        return self.linear.out_features

    def config(self) -> dict[str, Any]:
        """`N_Dense/config.json`; `use_residual` only when on (sentence-transformers before 6 refuse the key)."""
        cfg = {
            "in_features": self.linear.in_features,
            "out_features": self.linear.out_features,
            "bias": self.linear.bias is not None,
            "activation_function": self.activation_name,
        }
        if self.use_residual:
            cfg["use_residual"] = True
        return cfg

    @classmethod
    def from_config(cls, cfg: dict[str, Any], source: str = "2_Dense/config.json") -> Dense:
        """A Dense from its config; unknown keys and inputs other than the sentence embedding are refused."""
        check_module_config(cfg, DENSE_KEYS, source)
        for key in ("in_features", "out_features"):
            if not isinstance(cfg.get(key), int) or isinstance(cfg.get(key), bool) or cfg[key] < 1:
                raise CheckpointError(f"{source}: {key} must be a positive int, got {cfg.get(key)!r}")
        try:
            return cls(
                cfg["in_features"],
                cfg["out_features"],
                bool(cfg.get("bias", True)),
                cfg.get("activation_function"),
                use_residual=bool(cfg.get("use_residual", False)),
            )
        except ValueError as exc:
            raise CheckpointError(f"{source}: {exc}") from exc


class Normalize(nn.Module):
    """L2-normalise sentence embeddings: `[n, d] -> [n, d]`."""

    @classmethod
    def from_config(cls, cfg: dict[str, Any], source: str = "2_Normalize/config.json") -> Normalize:
        """sentence-transformers 6 writes the feature it normalizes; kosim normalizes the sentence embedding only."""
        check_module_config(cfg, NORMALIZE_KEYS, source)
        return cls()

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x, p=2, dim=-1)
