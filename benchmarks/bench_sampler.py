"""Benchmark: planning one NoDuplicates epoch, kosim vs sentence-transformers.

Builds synthetic 3-column (anchor, positive, negative) datasets in which ~5% of the texts are copies of other texts,
then times

* kosim's ``NoDuplicatesBatchSampler`` planning one epoch of 1,000,000 rows at batch size 8,192 (plus the one-off
  text-id assignment), and
* both samplers on a size sentence-transformers can do quickly (default 50,000 rows at batch size 1,024), checking
  that they produce the same batches.

Usage::

    python benchmarks/bench_sampler.py [--rows 1000000] [--batch-size 8192] [--st-rows 50000] [--st-batch-size 1024]

Needs ``sentence_transformers`` and ``datasets`` for the side-by-side part (skipped when missing).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from kosim.data.datasets import ColumnDataset
from kosim.data.samplers import NoDuplicatesBatchSampler


def synthetic_triplets(num_rows: int, dup_fraction: float = 0.05, seed: int = 0) -> ColumnDataset:
    """``num_rows`` rows of 3 texts; a ``dup_fraction`` share of all texts repeats another text of the dataset."""
    rng = np.random.default_rng(seed)
    total = 3 * num_rows
    source = np.arange(total)
    dup = rng.random(total) < dup_fraction
    source[dup] = rng.integers(0, total, size=int(dup.sum()))
    texts = [f"문장 {k} 번째 예시 text {k * 7919 % 100003}" for k in source.tolist()]
    return ColumnDataset(
        {"anchor": texts[0::3], "positive": texts[1::3], "negative": texts[2::3]}, name=f"synthetic-{num_rows}"
    )


def time_kosim(ds: ColumnDataset, batch_size: int, seed: int = 0) -> tuple[float, float, list[list[int]]]:
    t0 = time.perf_counter()
    sampler = NoDuplicatesBatchSampler(ds, batch_size, drop_last=False, seed=seed)
    t1 = time.perf_counter()
    batches = list(sampler)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, batches


def time_st(ds: ColumnDataset, batch_size: int, seed: int = 0) -> tuple[float, list[list[int]]] | None:
    try:
        from datasets import Dataset
        from sentence_transformers.base.sampler import NoDuplicatesBatchSampler as STNoDuplicates
    except ImportError:
        return None
    hf = Dataset.from_dict({c: ds.column(c) for c in ds.column_names})
    sampler = STNoDuplicates(hf, batch_size=batch_size, drop_last=False, generator=torch.Generator(), seed=seed)
    sampler.set_epoch(0)
    t0 = time.perf_counter()
    batches = list(sampler)
    return time.perf_counter() - t0, batches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch-size", type=int, default=8192)
    ap.add_argument("--st-rows", type=int, default=50_000)
    ap.add_argument("--st-batch-size", type=int, default=1024)
    args = ap.parse_args()

    rows: list[tuple[str, int, int, str, str, str]] = []

    big = synthetic_triplets(args.rows)
    ids_s, plan_s, batches = time_kosim(big, args.batch_size)
    used = sum(len(b) for b in batches)
    rows.append(("kosim", args.rows, args.batch_size, f"{ids_s:.2f}", f"{plan_s:.2f}", f"{len(batches)} / {used}"))

    small = synthetic_triplets(args.st_rows, seed=1)
    ids_s, plan_s, ours = time_kosim(small, args.st_batch_size)
    rows.append(("kosim", args.st_rows, args.st_batch_size, f"{ids_s:.2f}", f"{plan_s:.3f}", f"{len(ours)}"))
    st = time_st(small, args.st_batch_size)
    if st is None:
        rows.append(("sentence-transformers", args.st_rows, args.st_batch_size, "-", "not installed", "-"))
    else:
        st_s, theirs = st
        same = "identical" if theirs == ours else "DIFFERENT"
        rows.append(("sentence-transformers", args.st_rows, args.st_batch_size, "-", f"{st_s:.2f}", same))

    header = ("sampler", "rows", "batch", "text ids [s]", "plan epoch [s]", "batches / rows used | vs kosim")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    print(fmt.format(*header))
    print(fmt.format(*("-" * w for w in widths)))
    for r in rows:
        print(fmt.format(*map(str, r)))
    if st is not None:
        print(f"\nspeedup on {args.st_rows} rows @ {args.st_batch_size}: {st[0] / max(float(rows[1][4]), 1e-9):.0f}x")


if __name__ == "__main__":
    main()
