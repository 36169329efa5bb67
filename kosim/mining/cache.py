"""Embeddings of a list of texts, encoded shard by shard into an optional on-disk cache that a killed run resumes.

The cache of one text list is two files in ``cache_dir``: ``{role}-{key}.npy`` (the float32 ``[n, dim]`` rows, filled
in place through a memory map) and ``{role}-{key}.json`` (the manifest: what was encoded, and how many rows are done).
``key`` hashes the model fingerprint, the texts, the prompt and the dtype, so a different model, prompt or text list
never reuses another's rows; the manifest repeats those fields and is checked before any reuse. The manifest is
replaced atomically after each shard's rows are flushed to disk, so it never claims a row that is not written.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["embed_texts", "model_fingerprint", "texts_digest"]

MANIFEST_VERSION = 1
_PROBE = "지문 probe: 한국어 문장 임베딩, fingerprint 0123456789."


def model_fingerprint(model: Any) -> str:
    """A sha256 of what decides a model's embeddings: its weights and buffers, module stack and tokenization.

    Every tensor of ``model.state_dict()`` is hashed with its name, dtype and shape (a fine-tuned copy of the same
    architecture differs); the module stack's ``repr`` (pooling modes, dense, normalize), ``max_seq_length`` and the
    token ids of a fixed probe sentence (lowercasing, vocabulary) cover what the weights do not.
    """
    digest = hashlib.sha256()
    state = model.state_dict() if hasattr(model, "state_dict") else {}
    for name, tensor in state.items():
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}\n".encode())
        digest.update(value.view(-1).view(dtype=_byte_dtype()).numpy().tobytes())
    digest.update(f"{repr(model)}|max_seq_length={getattr(model, 'max_seq_length', None)}".encode())
    if hasattr(model, "tokenize"):
        digest.update(json.dumps(model.tokenizer([_PROBE])).encode())
    return digest.hexdigest()


def _byte_dtype():
    import torch

    return torch.uint8


def texts_digest(texts: Sequence[str]) -> str:
    """A sha256 of the texts in order (each length-prefixed, so no two lists collide by concatenation)."""
    digest = hashlib.sha256()
    for text in texts:
        raw = text.encode("utf-8")
        digest.update(len(raw).to_bytes(8, "little"))
        digest.update(raw)
    return digest.hexdigest()


def _write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _open_store(
    cache_dir: Path, role: str, manifest: dict, log: Callable[[str], None] | None
) -> tuple[np.memmap, int, Path]:
    """The memory-mapped rows of this cache entry and how many of them are already done (0 for a fresh entry)."""
    key = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]
    data_path, manifest_path = cache_dir / f"{role}-{key}.npy", cache_dir / f"{role}-{key}.json"
    shape = (manifest["n"], manifest["dim"])
    if data_path.is_file() and manifest_path.is_file():
        try:
            saved = json.loads(manifest_path.read_text(encoding="utf-8"))
            store = np.load(data_path, mmap_mode="r+")
        except (OSError, ValueError) as exc:
            saved, store = None, None
            if log:
                log(f"cache: {data_path} is unreadable ({exc}); encoding again")
        matches = saved is not None and all(saved.get(k) == v for k, v in manifest.items())
        if matches and store is not None and store.shape == shape and store.dtype == np.float32:
            done = int(saved.get("rows_done", 0))
            if 0 <= done <= shape[0]:
                return store, done, manifest_path
        if log and saved is not None:
            log(f"cache: {manifest_path} does not match this run (model, texts, prompt or shape); encoding again")
    cache_dir.mkdir(parents=True, exist_ok=True)
    store = np.lib.format.open_memmap(data_path, mode="w+", dtype=np.float32, shape=shape)
    store.flush()
    _write_json_atomic(manifest_path, {**manifest, "rows_done": 0})
    return store, 0, manifest_path


def embed_texts(
    model: Any,
    texts: Sequence[str],
    prompt: str,
    batch_size: int,
    dtype: str,
    role: str,
    cache_dir: str | os.PathLike | None = None,
    fingerprint: str | None = None,
    shard_size: int = 8192,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    pool: Any = None,
) -> np.ndarray:
    """L2-normalised float32 embeddings ``[len(texts), dim]`` of ``texts`` (each prefixed with ``prompt``).

    Texts are encoded ``shard_size`` at a time. With ``cache_dir``, each shard lands in the on-disk cache (see the
    module docstring) and a later call with the same model fingerprint, texts, prompt and dtype encodes only the rows
    a killed run had not finished; without it, the rows stay in memory. A tqdm bar counts texts on stderr.
    """
    n, dim = len(texts), int(model.get_sentence_embedding_dimension())
    if cache_dir is None:
        store, done, manifest_path = np.empty((n, dim), dtype=np.float32), 0, None
    else:
        manifest = {
            "version": MANIFEST_VERSION,
            "role": role,
            "model": fingerprint if fingerprint is not None else model_fingerprint(model),
            "texts_sha256": texts_digest(texts),
            "prompt": prompt,
            "dtype": dtype,
            "normalized": True,
            "n": n,
            "dim": dim,
        }
        store, done, manifest_path = _open_store(Path(cache_dir), role, manifest, log)
        if log and done:
            log(f"cache: {role}: {done:,} of {n:,} embeddings found in {manifest_path.parent}, encoding the rest")
    if done < n:
        extra = {"pool": pool} if pool is not None else {}  # an EncodePool / RankShards (kosim.encode_pool)
        _encode_into(
            model, texts, prompt, batch_size, dtype, store, done, shard_size, progress, role, manifest_path, extra
        )
    if manifest_path is None:
        return store
    del store  # close the memory map before reading the rows back into ordinary memory
    return np.load(manifest_path.with_suffix(".npy"))


def _encode_into(
    model, texts, prompt, batch_size, dtype, store, done, shard_size, progress, role, manifest_path, extra
):
    from tqdm.auto import tqdm

    bar = tqdm(total=len(texts), initial=done, desc=f"Encoding {role}", unit="text", disable=not progress)
    try:
        for start in range(done, len(texts), shard_size):
            chunk = list(texts[start : start + shard_size])
            rows = model.encode(
                chunk, batch_size=batch_size, normalize=True, dtype=dtype, prompt=prompt, progress=False, **extra
            )
            store[start : start + len(chunk)] = np.asarray(rows, dtype=np.float32).reshape(len(chunk), -1)
            if manifest_path is not None:
                store.flush()
                saved = json.loads(manifest_path.read_text(encoding="utf-8"))
                _write_json_atomic(manifest_path, {**saved, "rows_done": start + len(chunk)})
            bar.update(len(chunk))
    finally:
        bar.close()
