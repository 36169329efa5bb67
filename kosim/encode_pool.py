"""Encoding across processes: a pool of worker processes (one per device), or the torchrun processes themselves.

Both split the texts into contiguous chunks, have each chunk encoded by `SentenceEncoder.encode` in one process
(which tokenizes its own chunk) and reassemble the float32 results in input order. `SentenceEncoder.encode(...,
pool=...)` hands them its resolved options and then quantizes and places the result exactly as for a
single-process call, so a pooled encode equals a plain one. Mining and the IR evaluator take the same `pool`.

    with EncodePool(model, devices=["cuda:0", "cuda:1"]) as pool:   # or ["cpu", "cpu"]
        embeddings = model.encode(texts, pool=pool)
    embeddings = model.encode(texts, devices=["cpu", "cpu"])         # a pool for this call only
    embeddings = model.encode(texts, pool=RankShards())              # under torchrun, in every process

- `EncodePool`: worker processes started with `spawn`, each loading one snapshot of the model from a temporary
  directory written once by the caller (nothing is read from the hub). Chunks go through one shared queue, so a
  faster device takes more of them. An exception in a worker is raised in the caller as `EncodePoolError` with the
  worker's traceback; a worker that dies is noticed within a second (never a hang). The workers hold the weights
  of the moment the pool started: encoding after the weights changed (training) raises, start a new pool then.
- `RankShards`: under torchrun every process calls `encode` with the same texts; each encodes its contiguous share
  on its own device and all of them get the full result (all-gathered).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import queue
import tempfile
import traceback
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kosim.utils.device import resolve_device

__all__ = ["EncodePool", "EncodePoolError", "RankShards", "default_chunk_size", "default_devices", "encode_with_pool"]

_POLL_S = 0.5  # how often a waiting caller checks that the workers are alive
_MAX_CHUNK = 5000


class EncodePoolError(RuntimeError):
    """A worker of an `EncodePool` failed (its traceback is in the message), died, or could not start."""


def default_devices() -> list[str]:
    """Every CUDA device, else up to four CPU workers (sentence-transformers' default, capped by the cores)."""
    if torch.cuda.is_available():
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return ["cpu"] * max(1, min(4, os.cpu_count() or 1))


def default_chunk_size(n_texts: int, n_workers: int) -> int:
    """Texts per job: about ten jobs per worker (load balance), at most 5000 (sentence-transformers' rule)."""
    return max(1, min(math.ceil(n_texts / max(n_workers, 1) / 10), _MAX_CHUNK))


def _tokenizer_key(model: Any) -> tuple | None:
    """What the snapshot's tokenizer settings are checked against (`TextTokenizer.ids_key`), None without one."""
    tokenizer = getattr(model, "tokenizer", None)
    return tokenizer.ids_key() if hasattr(tokenizer, "ids_key") else None


def _weights_version(model: torch.nn.Module) -> int:
    """Sum of the in-place version counters of the model's tensors: changes when an optimizer step updates them."""
    return sum(t._version for t in model.state_dict(keep_vars=True).values())


def _worker(model_dir: str, device: str, threads: int, jobs: Any, results: Any, worker: int) -> None:
    """A worker process: load the model once, then encode jobs `(call, index, texts, kwargs)` until `None`."""
    try:
        torch.set_num_threads(threads)
        from kosim.model import SentenceEncoder

        model = SentenceEncoder.load(model_dir, device=device)
    except BaseException:
        results.put(("failed", worker, None, traceback.format_exc()))
        return
    results.put(("ready", worker, None, None))
    while True:
        job = jobs.get()
        if job is None:
            return
        call, index, texts, kwargs = job
        try:
            out = model.encode(texts, **kwargs)
        except Exception:
            results.put(("error", worker, (call, index), traceback.format_exc()))
        else:
            results.put(("done", worker, (call, index), out))


def _shutdown(processes: list, jobs: Any, results: Any, tmp: tempfile.TemporaryDirectory) -> None:
    for process in processes:
        if process.is_alive():
            jobs.put(None)
    for process in processes:
        process.join(timeout=10)
        if process.is_alive():
            process.terminate()
            process.join()
    jobs.cancel_join_thread()
    for q in (jobs, results):
        q.close()
    tmp.cleanup()


class EncodePool:
    """Worker processes that encode for `model`, one per entry of `devices` (e.g. `["cuda:0", "cuda:1"]` or
    `["cpu", "cpu"]`; default: `default_devices()`). Pass it as `model.encode(texts, pool=pool)`; `close()` it (or
    use it as a context manager) when done.

    `threads_per_worker` sets each worker's torch threads (default: the CPU cores divided among the workers).
    The constructor returns once every worker has loaded the model, or raises `EncodePoolError` naming the one
    that could not.
    """

    def __init__(
        self, model: Any, devices: Sequence[str | torch.device] | None = None, threads_per_worker: int | None = None
    ) -> None:
        from kosim.st_directory import write_directory

        if isinstance(devices, (str, torch.device)):
            raise TypeError(f"devices must be a list of devices (e.g. ['cpu', 'cpu']), got {devices!r}")
        devices = default_devices() if devices is None else list(devices)
        if not devices:
            raise ValueError("devices must name at least one device")
        self.devices = [str(resolve_device(d)) for d in devices]
        if threads_per_worker is None:
            threads_per_worker = max(1, (os.cpu_count() or 1) // len(self.devices))
        if isinstance(threads_per_worker, bool) or not isinstance(threads_per_worker, int) or threads_per_worker < 1:
            raise ValueError(f"threads_per_worker must be a positive int, got {threads_per_worker!r}")
        self._model = weakref.ref(model)
        self._version = _weights_version(model)
        self._tokenizer = _tokenizer_key(model)
        self._calls = 0
        self._broken: str | None = None
        tmp = tempfile.TemporaryDirectory(prefix="kosim-encode-pool-")
        model_dir = write_directory(model, Path(tmp.name) / "model")  # the one snapshot every worker loads
        ctx = multiprocessing.get_context("spawn")
        self._jobs, self._results = ctx.Queue(), ctx.Queue()
        self.processes = [
            ctx.Process(
                target=_worker,
                args=(str(model_dir), device, threads_per_worker, self._jobs, self._results, i),
                daemon=True,
                name=f"kosim-encode-{i}-{device}",
            )
            for i, device in enumerate(self.devices)
        ]
        self._close = weakref.finalize(self, _shutdown, self.processes, self._jobs, self._results, tmp)
        try:
            for process in self.processes:
                process.start()
            self._wait_ready()
        except BaseException:
            self.close()
            raise

    # ----------------------------------------------------------------- life cycle
    def _wait_ready(self) -> None:
        for _ in self.processes:
            kind, worker, _, payload = self._next_result()
            if kind == "failed":
                raise EncodePoolError(
                    f"encode pool worker {worker} ({self.devices[worker]}) could not load the model:\n{payload}"
                )

    def close(self) -> None:
        """Stop the workers and remove the model snapshot (idempotent)."""
        self._close()

    @property
    def closed(self) -> bool:
        return not self._close.alive

    def __enter__(self) -> EncodePool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{sum(p.is_alive() for p in self.processes)} workers alive"
        return f"EncodePool(devices={self.devices}, {state})"

    def _next_result(self) -> tuple:
        """The next message of any worker; `EncodePoolError` as soon as a worker is found dead instead."""
        while True:
            try:
                return self._results.get(timeout=_POLL_S)
            except queue.Empty:
                dead = [(i, p) for i, p in enumerate(self.processes) if not p.is_alive()]
                if dead:
                    details = ", ".join(f"{i} ({self.devices[i]}, exit code {p.exitcode})" for i, p in dead)
                    self._broken = f"encode pool worker(s) {details} died; close this pool and start a new one"
                    raise EncodePoolError(self._broken) from None

    def _check_usable(self, model: Any) -> None:
        if self.closed:
            raise EncodePoolError("this EncodePool is closed; start a new one")
        if self._broken:
            raise EncodePoolError(self._broken)
        if self._model() is not model:
            raise ValueError("this EncodePool was started from another model: start one from the model you encode with")
        if _weights_version(model) != self._version:
            raise EncodePoolError(
                "the model's weights changed since this EncodePool started (training?): its workers hold the old "
                "weights; close it and start a new one"
            )
        if _tokenizer_key(model) != self._tokenizer:
            raise EncodePoolError(
                "the model's tokenizer settings (max_seq_length, do_lower_case, truncation side or the tokenizer "
                "itself) changed since this EncodePool started: its workers tokenize as before; close it and start "
                "a new one"
            )

    # ----------------------------------------------------------------- encode
    def map_encode(
        self, model: Any, items: list[str], kwargs: dict[str, Any], chunk_size: int | None, progress: bool
    ) -> np.ndarray | list:
        """`model.encode(items, **kwargs)` computed by the workers, `chunk_size` texts per job (default:
        `default_chunk_size`), reassembled in input order: `[n, dim]` float32, or a list for token outputs."""
        self._check_usable(model)
        if not items:
            return model.encode(items, **kwargs)
        size = chunk_size or default_chunk_size(len(items), len(self.processes))
        starts = list(range(0, len(items), size))
        self._calls += 1
        call = self._calls
        for index, start in enumerate(starts):
            self._jobs.put((call, index, items[start : start + size], kwargs))
        parts: list = [None] * len(starts)
        errors: list[str] = []
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(items), desc=f"Encoding ({len(self.processes)} workers)", unit="text")
        try:
            remaining = len(starts)
            while remaining:
                kind, worker, (job_call, index), payload = self._next_result()
                if job_call != call:  # left over from an interrupted call
                    continue
                remaining -= 1
                if kind == "error":  # keep draining this call's jobs so the pool stays usable
                    end = min(starts[index] + size, len(items))
                    errors.append(
                        f"worker {worker} ({self.devices[worker]}), texts [{starts[index]}:{end}]:\n{payload}"
                    )
                else:
                    parts[index] = payload
                    if bar is not None:
                        bar.update(len(payload))
        finally:
            if bar is not None:
                bar.close()
        if errors:
            raise EncodePoolError(f"encode failed in {len(errors)} job(s); the first: {errors[0]}")
        if kwargs.get("output") == "token":
            return [piece for part in parts for piece in part]
        return np.concatenate(parts)


class RankShards:
    """The torchrun processes as the pool: every process calls `model.encode(texts, pool=RankShards())` with the
    same texts; each encodes its contiguous share on its own device; all return the full result, in input order.

    Needs the process group (`torch.distributed.init_process_group`, which kosim's Trainer starts); outside
    torchrun it is a plain encode.
    """

    def __repr__(self) -> str:
        return "RankShards()"

    def map_encode(
        self, model: Any, items: list[str], kwargs: dict[str, Any], chunk_size: int | None, progress: bool
    ) -> np.ndarray | list:
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            if int(os.environ.get("WORLD_SIZE", "1")) > 1:
                raise RuntimeError(
                    "RankShards under torchrun needs the process group: call torch.distributed.init_process_group() "
                    "first"
                )
            return model.encode(items, **{**kwargs, "chunk_size": chunk_size, "progress": progress})
        world, rank = dist.get_world_size(), dist.get_rank()
        device = model.device if dist.get_backend() == "nccl" else torch.device("cpu")
        counts = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(world)]
        dist.all_gather(counts, torch.tensor([len(items)], device=device))
        if len({int(c) for c in counts}) > 1:
            raise ValueError(
                f"RankShards: every process must encode the same texts, got counts {[int(c) for c in counts]} by rank"
            )
        bounds = [len(items) * r // world for r in range(world + 1)]
        local = {**kwargs, "chunk_size": chunk_size, "progress": progress and rank == 0}
        share = model.encode(items[bounds[rank] : bounds[rank + 1]], **local)
        if kwargs.get("output") == "token":
            shares: list = [None] * world
            dist.all_gather_object(shares, share)
            return [piece for part in shares for piece in part]
        largest = max(b - a for a, b in zip(bounds, bounds[1:]))
        padded = torch.zeros((largest, share.shape[1]), dtype=torch.float32, device=device)  # [largest, dim]
        padded[: len(share)] = torch.from_numpy(share).to(device)
        gathered = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(gathered, padded)
        return np.concatenate([g[: bounds[r + 1] - bounds[r]].cpu().numpy() for r, g in enumerate(gathered)])


def encode_with_pool(
    model: Any,
    items: list[str],
    pool: Any,
    devices: Sequence[str | torch.device] | None,
    job: dict[str, Any],
    chunk_size: int | None,
    progress: bool,
) -> np.ndarray | list:
    """`encode`'s float32 result computed by `pool`, or by a pool on `devices` started for this call only."""
    if pool is not None and devices is not None:
        raise ValueError("give pool or devices, not both")
    if pool is not None and not hasattr(pool, "map_encode"):
        raise TypeError(
            f"pool must be a kosim.encode_pool.EncodePool or RankShards, got {type(pool).__name__} "
            "(kosim.st's start_multi_process_pool makes one)"
        )
    if pool is not None:
        return pool.map_encode(model, items, job, chunk_size, progress)
    with EncodePool(model, devices) as temporary:
        return temporary.map_encode(model, items, job, chunk_size, progress)
