"""Loading and saving Hugging Face checkpoints for kosim's encoder.

A checkpoint is a directory (local, or a hub snapshot in the huggingface_hub cache) holding `config.json` and
weights in `model.safetensors` or `pytorch_model.bin`, optionally sharded behind an `*.index.json`. Weights are
only ever read as tensors: safetensors, or `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from kosim.nn.config import EncoderConfig
from kosim.nn.encoder import TransformerEncoder
from kosim.st_format import CheckpointError, read_json

SAFETENSORS = "model.safetensors"
PYTORCH_BIN = "pytorch_model.bin"

# Heads and buffers that a base-model checkpoint may carry and that the encoder legitimately ignores.
_IGNORED = re.compile(
    r"^(pooler\.|lm_head\.|cls\.|classifier\.|qa_outputs\.|embeddings\.position_ids$|embeddings\.token_type_ids$)"
)
_PREFIXES = ("bert.", "roberta.", "model.")
_POOLER = "pooler."  # part of transformers' BertModel / RobertaModel, unused by sentence embeddings

# Our module names -> Hugging Face names (per layer `L` and for the embeddings).
_EMBEDDINGS = {
    "tok_emb.weight": "embeddings.word_embeddings.weight",
    "pos_emb.weight": "embeddings.position_embeddings.weight",
    "type_emb.weight": "embeddings.token_type_embeddings.weight",
    "emb_norm.weight": "embeddings.LayerNorm.weight",
    "emb_norm.bias": "embeddings.LayerNorm.bias",
}
_LAYER = {
    "attn.out": "attention.output.dense",
    "attn_norm": "attention.output.LayerNorm",
    "ff_in": "intermediate.dense",
    "ff_out": "output.dense",
    "ff_norm": "output.LayerNorm",
}
_QKV = ("query", "key", "value")


def resolve_model_dir(name_or_path: str | os.PathLike, trust_remote_code: bool = False) -> Path:
    """A local directory for `name_or_path`: the path itself, or a hub snapshot (honours HF_HUB_OFFLINE).

    `trust_remote_code=True` also fetches the repository's Python files (`*.py`), which transformers imports
    for a custom architecture; without it no code is downloaded.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise CheckpointError(f"{path} is a file, expected a model directory")
    name = str(name_or_path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise CheckpointError(f"model directory {name!r} does not exist")
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.txt", "*.model", "*.safetensors", "**/*.json", "**/*.safetensors"]
    if trust_remote_code:
        patterns += ["*.py", "**/*.py"]
    try:
        local = Path(snapshot_download(repo_id=name, allow_patterns=patterns))
        if not any(local.glob("*.safetensors")):
            local = Path(snapshot_download(repo_id=name, allow_patterns=patterns + ["*.bin", "**/*.bin"]))
    except Exception as exc:  # network errors, unknown repos, offline cache misses
        raise CheckpointError(
            f"{name!r} is neither a local directory nor a reachable hub model "
            f"(HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '0')}): {exc}"
        ) from exc
    return local


def _load_file(path: Path) -> dict[str, Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:
            raise CheckpointError(f"{path}: unreadable safetensors file ({exc})") from exc
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: unreadable weights file ({exc})") from exc


def read_state_dict(model_dir: Path) -> dict[str, Tensor]:
    """All weights of a checkpoint directory, merging shards; safetensors preferred over .bin."""
    for single, index in ((SAFETENSORS, SAFETENSORS + ".index.json"), (PYTORCH_BIN, PYTORCH_BIN + ".index.json")):
        if (model_dir / single).is_file():
            return _load_file(model_dir / single)
        if (model_dir / index).is_file():
            shards = sorted(set(read_json(model_dir / index)["weight_map"].values()))
            state: dict[str, Tensor] = {}
            for shard in shards:
                state.update(_load_file(model_dir / shard))
            return state
    raise CheckpointError(f"{model_dir} holds no {SAFETENSORS} or {PYTORCH_BIN} (sharded or not)")


def check_weights(state: dict[str, Tensor], source: Path | str) -> None:
    """Refuse weights the encoder cannot run, naming the tensor.

    The architecture computes in floating point: an integer dtype (int8 weights, or a safetensors header retagged
    F32 -> I32) would be cast to meaningless floats, and a NaN/inf makes every embedding NaN. One vectorized
    `isfinite` per tensor.
    """
    for name, tensor in state.items():
        if not isinstance(tensor, Tensor):
            raise CheckpointError(f"{source}: weight {name!r} is a {type(tensor).__name__}, not a tensor")
        if not tensor.is_floating_point():
            raise CheckpointError(
                f"{source}: weight {name!r} has dtype {tensor.dtype}, expected a floating-point dtype"
            )
        if not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(f"{source}: weight {name!r} holds {bad} NaN or infinite value(s)")


def _hf_names(cfg: EncoderConfig) -> dict[str, str | tuple[str, str, str]]:
    """Map each of our parameter names to its HF name (a triple for the fused qkv)."""
    names: dict[str, str | tuple[str, str, str]] = dict(_EMBEDDINGS)
    for i in range(cfg.num_hidden_layers):
        hf, ours = f"encoder.layer.{i}.", f"layers.{i}."
        for kind in ("weight", "bias"):
            names[f"{ours}attn.qkv.{kind}"] = tuple(f"{hf}attention.self.{p}.{kind}" for p in _QKV)
            for our_mod, hf_mod in _LAYER.items():
                names[f"{ours}{our_mod}.{kind}"] = f"{hf}{hf_mod}.{kind}"
    return names


def _normalise_key(key: str) -> str:
    key = key.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def from_hf_state_dict(
    cfg: EncoderConfig, hf_state: dict[str, Tensor], source: Path | str = "checkpoint"
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Translate a Hugging Face state dict into ours; every weight must be present, none left over, all valid.

    Returns our weights and the checkpoint's pooler (under its unprefixed HF names), which the encoder does not
    use but saves back.
    """
    hf_state = {_normalise_key(k): v for k, v in hf_state.items()}
    used: set[str] = set()
    ours: dict[str, Tensor] = {}
    missing: list[str] = []
    for name, hf in _hf_names(cfg).items():
        parts = hf if isinstance(hf, tuple) else (hf,)
        absent = [p for p in parts if p not in hf_state]
        if absent:
            missing.extend(absent)
            continue
        used.update(parts)
        ours[name] = torch.cat([hf_state[p] for p in parts]) if len(parts) > 1 else hf_state[parts[0]]
    unexpected = sorted(k for k in hf_state if k not in used and not _IGNORED.match(k))
    if missing or unexpected:
        raise CheckpointError(
            "checkpoint does not match the encoder config: "
            f"missing {sorted(missing)[:20]}{' ...' if len(missing) > 20 else ''}; "
            f"unexpected {unexpected[:20]}{' ...' if len(unexpected) > 20 else ''}"
        )
    pooler = {k: v for k, v in hf_state.items() if k.startswith(_POOLER)}
    check_weights({k: hf_state[k] for k in sorted(used)} | pooler, source)  # before the fused qkv cast hides a dtype
    return ours, pooler


def to_hf_state_dict(model: TransformerEncoder) -> dict[str, Tensor]:
    """Our weights under Hugging Face names (fused qkv split back), contiguous and detached for saving.

    The source checkpoint's pooler (`TransformerEncoder.unused_hf_weights`), which sentence embeddings never use,
    is written back unchanged, so that transformers loads the saved model without initialising a fresh one.
    """
    out: dict[str, Tensor] = {k: v.detach().contiguous().clone() for k, v in model.unused_hf_weights.items()}
    for name, tensor in model.state_dict().items():
        hf = _hf_names(model.config)[name]
        if isinstance(hf, tuple):
            for part, chunk in zip(hf, tensor.chunk(3, dim=0)):
                out[part] = chunk.detach().contiguous().clone()
        else:
            out[hf] = tensor.detach().contiguous().clone()
    return out


def encoder_config(model_dir: Path, hf_config: dict[str, Any]) -> EncoderConfig:
    """`EncoderConfig` of a checkpoint, its validation errors as `CheckpointError`s naming `config.json`."""
    try:
        return EncoderConfig.from_hf(hf_config)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{model_dir / 'config.json'}: {exc}") from None


def load_encoder(model_dir: Path, hf_config: dict[str, Any]) -> TransformerEncoder:
    """Build the encoder from `config.json` and load its weights exactly (float32), refusing broken weights."""
    cfg = encoder_config(model_dir, hf_config)
    model = TransformerEncoder(cfg)
    state, pooler = from_hf_state_dict(cfg, read_state_dict(model_dir), source=model_dir)
    for name, param in model.state_dict().items():
        if state[name].shape != param.shape:
            raise CheckpointError(f"weight {name}: checkpoint shape {tuple(state[name].shape)} != {tuple(param.shape)}")
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    model.unused_hf_weights = {k: v.float() for k, v in pooler.items()}
    return model
