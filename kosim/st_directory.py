"""Read and write a sentence-transformers model directory: the parts of a `SentenceEncoder`, module by module.

A directory holds the transformer at its root (or under the first module's path), then `1_Pooling`, optional
`N_Dense` and `N_Normalize` modules, as `modules.json` lists them. `read_directory` returns the constructor
arguments of a `SentenceEncoder`; `write_directory` writes one back in sentence-transformers 3.x's layout, which
both libraries load with identical embeddings. File names and JSON parsing live in `kosim.st_format`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from kosim.nn import HFEncoder, TransformerEncoder, is_native
from kosim.nn import load_encoder as load_native_encoder
from kosim.nn.loading import SAFETENSORS, check_weights, read_state_dict, to_hf_state_dict
from kosim.pooling import Dense, Normalize, Pooling
from kosim.similarity import resolve_similarity
from kosim.st_format import (
    HF_CONFIG,
    MODULE_CONFIG,
    MODULES_JSON,
    SBERT_CONFIG,
    ST_CONFIG,
    ST_CONFIG_KEYS,
    ST_MODEL_TYPE,
    CheckpointError,
    read_json,
    read_modules,
    read_transformer_config,
    versions,
    write_json,
    write_modules,
)
from kosim.tokenizer import TextTokenizer

if TYPE_CHECKING:
    from kosim.model import SentenceEncoder


def _optional_json(path: Path) -> dict[str, Any]:
    return read_json(path) if path.is_file() else {}


def load_encoder(transformer_dir: Path, trust_remote_code: bool = False) -> nn.Module:
    """kosim's own encoder for the architectures it implements, transformers' AutoModel otherwise."""
    if not (transformer_dir / HF_CONFIG).is_file():
        raise CheckpointError(f"{transformer_dir} has no {HF_CONFIG}")
    hf_config = read_json(transformer_dir / HF_CONFIG)
    if is_native(hf_config):
        return load_native_encoder(transformer_dir, hf_config)
    return HFEncoder.load(transformer_dir, trust_remote_code=trust_remote_code)


def _load_dense(path: Path) -> Dense:
    dense = Dense.from_config(read_json(path / MODULE_CONFIG), source=str(path / MODULE_CONFIG))
    state = read_state_dict(path)
    check_weights(state, path)
    missing = sorted(set(dense.state_dict()) - set(state))
    unexpected = sorted(set(state) - set(dense.state_dict()))
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: Dense weights do not match {path / MODULE_CONFIG} (missing {missing}, unexpected {unexpected})"
        )
    dense.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return dense


def _read_st_config(model_dir: Path) -> dict[str, Any]:
    """`config_sentence_transformers.json`'s prompts, default prompt, similarity and truncation, checked against
    each other; a key kosim does not know, or another model type (a SparseEncoder, a CrossEncoder), is refused."""
    path = model_dir / ST_CONFIG
    cfg = _optional_json(path)
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    for key in cfg:
        if key not in ST_CONFIG_KEYS:
            raise CheckpointError(
                f"{path}: config key {key!r} is not supported by kosim (supported: {', '.join(ST_CONFIG_KEYS)})"
            )
    if cfg.get("model_type", ST_MODEL_TYPE) != ST_MODEL_TYPE:
        raise CheckpointError(f"{path}: model_type {cfg['model_type']!r} is not supported (only {ST_MODEL_TYPE!r})")
    prompts = cfg.get("prompts") or {}
    if not isinstance(prompts, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in prompts.items()):
        raise CheckpointError(f"{path}: 'prompts' must map names to prompt strings")
    default = cfg.get("default_prompt_name")
    if default is not None and default not in prompts:
        raise CheckpointError(f"{path}: default_prompt_name {default!r} is not one of the prompts {sorted(prompts)}")
    similarity = cfg.get("similarity_fn_name") or "cosine"
    try:
        similarity = resolve_similarity(similarity)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: similarity_fn_name: {exc}") from exc
    truncate_dim = cfg.get("truncate_dim")
    if truncate_dim is not None and (type(truncate_dim) is not int or truncate_dim < 1):
        raise CheckpointError(f"{path}: truncate_dim must be a positive int or null, got {truncate_dim!r}")
    return {
        "similarity_fn_name": similarity,
        "prompts": prompts,
        "default_prompt_name": default,
        "truncate_dim": truncate_dim,
    }


def load_transformer(
    transformer_dir: Path,
    max_seq_length: int | None = None,
    do_lower_case: bool = False,
    trust_remote_code: bool = False,
    tokenizer_dir: Path | None = None,
) -> tuple[nn.Module, TextTokenizer]:
    """The encoder and tokenizer of a transformers checkpoint (the tokenizer from `tokenizer_dir` if given)."""
    encoder = load_encoder(transformer_dir, trust_remote_code)
    tokenizer = TextTokenizer.load(
        tokenizer_dir or transformer_dir,
        max_seq_length=max_seq_length,
        do_lower_case=do_lower_case,
        position_limit=encoder.max_sequence_length,
    )
    return encoder, tokenizer


def read_directory(model_dir: Path, trust_remote_code: bool = False) -> dict[str, Any]:
    """The `SentenceEncoder(...)` keyword arguments of a sentence-transformers directory or transformers checkpoint.

    A plain transformers checkpoint (no `modules.json`) gets mean pooling and `max_seq_length` from its tokenizer,
    capped at 512.
    """
    modules = read_modules(model_dir)
    st_cfg = _read_st_config(model_dir)
    transformer_dir = modules[0][1] if modules else model_dir
    options = read_transformer_config(transformer_dir)
    encoder, tokenizer = load_transformer(transformer_dir, trust_remote_code=trust_remote_code, **options)
    pooling, post = None, []
    for kind, path in (modules or [])[1:]:
        if kind == "pooling":
            pooling = Pooling.from_config(read_json(path / MODULE_CONFIG), source=str(path / MODULE_CONFIG))
        elif kind == "dense":
            post.append(_load_dense(path))
        elif kind == "normalize":  # sentence-transformers before 6 write an empty folder
            cfg = _optional_json(path / MODULE_CONFIG)
            post.append(Normalize.from_config(cfg, source=str(path / MODULE_CONFIG)))
        else:
            raise CheckpointError(f"{model_dir / MODULES_JSON}: a second Transformer module is not supported")
    return {
        "encoder": encoder,
        "tokenizer": tokenizer,
        "pooling": pooling,
        "post": post,
        **st_cfg,
    }


def _write_transformer(model: SentenceEncoder, out: Path) -> None:
    """The transformer module at the directory's root: config, weights, tokenizer, `sentence_bert_config.json`."""
    from safetensors.torch import save_file

    if isinstance(model.encoder, TransformerEncoder):
        write_json(out / HF_CONFIG, model.encoder.config.to_hf())
        save_file(to_hf_state_dict(model.encoder), str(out / SAFETENSORS), {"format": "pt"})
    else:
        model.encoder.model.save_pretrained(str(out))
    model.tokenizer.save(out)
    write_json(
        out / SBERT_CONFIG, {"max_seq_length": model.max_seq_length, "do_lower_case": model.tokenizer.do_lower_case}
    )


def _write_post(module: nn.Module, out: Path, sub: str) -> None:
    """A Dense (config and weights) or Normalize (an empty folder) module under `out / sub`."""
    from safetensors.torch import save_file

    if isinstance(module, Dense):
        write_json(out / sub / MODULE_CONFIG, module.config())
        state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
        save_file(state, str(out / sub / SAFETENSORS), {"format": "pt"})
    else:
        (out / sub).mkdir(exist_ok=True)


def write_directory(model: SentenceEncoder, out: Path, model_card: str | None = None) -> Path:
    """Write `model` as a sentence-transformers 3.x directory (and `README.md` when a card is given)."""
    if model.default_prompt_name is not None and model.default_prompt_name not in model.prompts:
        raise ValueError(  # `prompts` is a plain dict: an entry removed after `default_prompt_name` was set
            f"default_prompt_name {model.default_prompt_name!r} is not one of the model's prompts {sorted(model.prompts)}"
        )
    out.mkdir(parents=True, exist_ok=True)
    _write_transformer(model, out)
    st_config = {
        "__version__": versions(),
        "prompts": model.prompts,
        "default_prompt_name": model.default_prompt_name,
        "similarity_fn_name": model.similarity_fn_name,
        "model_type": ST_MODEL_TYPE,
    }
    if model.truncate_dim is not None:  # as sentence-transformers 6 saves it (earlier releases ignore the key)
        st_config["truncate_dim"] = model.truncate_dim
    write_json(out / ST_CONFIG, st_config)
    layout = [("transformer", ""), ("pooling", "1_Pooling")]
    write_json(out / "1_Pooling" / MODULE_CONFIG, model.pooling.config())
    for i, module in enumerate(model.post, start=2):
        kind = "dense" if isinstance(module, Dense) else "normalize"
        sub = f"{i}_{kind.capitalize()}"
        _write_post(module, out, sub)
        layout.append((kind, sub))
    write_modules(out, layout)
    if model_card is not None:
        (out / "README.md").write_text(model_card, encoding="utf-8")
    return out
