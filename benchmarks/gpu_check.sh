#!/usr/bin/env bash
# One GPU check, under 8 minutes on one GPU: the `cuda` tests, then the training and encode benchmarks on CUDA
# (kosim vs sentence-transformers; fp16 and bf16; MiniLM and BERT-base), each result as JSON plus one summary.
#
#   bash benchmarks/gpu_check.sh OUTDIR [--dry-run]
#
# --dry-run runs the same pipeline on CPU with tiny sizes (the cuda tests skip), so the script is known to work
# before a GPU is lent. Writes OUTDIR/{env.json, cuda_tests.log, cuda_tests.xml, train.json, train.log,
# encode.json, encode.log, summary.md}. A benchmark without a --device flag cannot run on CUDA: the summary says
# so instead of reporting CPU numbers as GPU ones. Exit status: that of the cuda tests (benchmarks are reported).
set -uo pipefail

OUT="${1:?usage: gpu_check.sh OUTDIR [--dry-run]}"
DRY=0
[[ "${2:-}" == "--dry-run" ]] && DRY=1
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python}"
mkdir -p "$OUT"
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

if [[ $DRY == 1 ]]; then
  DEVICE=cpu
  TRAIN_ARGS=(--models minilm --dtypes fp32 --steps 1 --st-steps 1 --batch-size 4 --quiet 100 --retries 0)
  ENCODE_ARGS=(--models minilm --dtypes float32 --limit 64 --repeats 1)
  BUDGET_TRAIN=600; BUDGET_ENCODE=600
else
  DEVICE=cuda
  TRAIN_ARGS=(--models minilm,bert-base --dtypes fp16,bf16 --steps 10 --st-steps 5)
  ENCODE_ARGS=(--models minilm,bert-base --dtypes float16,bfloat16 --repeats 3)
  BUDGET_TRAIN=200; BUDGET_ENCODE=120
fi

"$PY" - "$OUT/env.json" "$DEVICE" <<'EOF'
import json, platform, sys
import torch
info = {"device": sys.argv[2], "torch": torch.__version__, "python": platform.python_version(),
        "cuda_available": torch.cuda.is_available()}
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    info.update(gpu=p.name, memory_gib=round(p.total_memory / 2**30, 1), capability=f"{p.major}.{p.minor}",
                cuda=torch.version.cuda, bf16=torch.cuda.is_bf16_supported(),
                flash_sdp=torch.backends.cuda.flash_sdp_enabled(),
                mem_efficient_sdp=torch.backends.cuda.mem_efficient_sdp_enabled())
json.dump(info, open(sys.argv[1], "w"), indent=1)
print(json.dumps(info))
EOF
if [[ $DRY == 0 ]] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check: no CUDA device visible (use --dry-run on CPU)" >&2
  exit 2
fi

# 1. the cuda tests (they skip cleanly without a GPU)
timeout 240 "$PY" -m pytest -q -p no:cacheprovider tests/cuda -m cuda --junitxml="$OUT/cuda_tests.xml" \
  >"$OUT/cuda_tests.log" 2>&1
TESTS_RC=$?
tail -3 "$OUT/cuda_tests.log"

# 2. benchmarks, each only where it can be put on $DEVICE
run_bench() {  # name script budget args...
  local name=$1 script=$2 budget=$3
  shift 3
  local extra=()
  if "$PY" "$script" --help 2>/dev/null | grep -q -- "--device"; then
    extra=(--device "$DEVICE")  # the dry run passes --device cpu, so the flag's path is exercised too
  elif [[ $DEVICE != cpu ]]; then
    echo "{\"skipped\": \"$script has no --device flag: it cannot run on $DEVICE\"}" >"$OUT/$name.json"
    echo "gpu_check: $script has no --device flag; skipped" | tee "$OUT/$name.log"
    return 0
  fi
  timeout "$budget" "$PY" "$script" "$@" "${extra[@]}" --json "$OUT/$name.json" >"$OUT/$name.log" 2>&1
  local rc=$?
  [[ $rc != 0 ]] && echo "{\"failed\": \"exit $rc, see $name.log\"}" >"$OUT/$name.json.failed"
  echo "gpu_check: $name exit $rc"
}
run_bench train benchmarks/bench_train.py "$BUDGET_TRAIN" "${TRAIN_ARGS[@]}"
run_bench encode benchmarks/bench_encode.py "$BUDGET_ENCODE" "${ENCODE_ARGS[@]}"

# 3. summary
"$PY" - "$OUT" "$TESTS_RC" <<'EOF'
import json, sys
from pathlib import Path
out, tests_rc = Path(sys.argv[1]), int(sys.argv[2])
env = json.loads((out / "env.json").read_text())
lines = [f"# GPU check ({'dry run on ' if env['device'] == 'cpu' else ''}{env.get('gpu', env['device'])})", "",
         f"torch {env['torch']}, cuda {env.get('cuda')}, flash SDPA {env.get('flash_sdp')}", ""]
log = (out / "cuda_tests.log").read_text().strip().splitlines()
lines += [f"- cuda tests: exit {tests_rc}; {log[-1] if log else 'no output'}"]
for name in ("train", "encode"):
    path = out / f"{name}.json"
    if (out / f"{name}.json.failed").exists():
        lines.append(f"- {name}: FAILED ({(out / f'{name}.json.failed').read_text().strip()})")
    elif not path.exists():
        lines.append(f"- {name}: no result")
    else:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "skipped" in data:
            lines.append(f"- {name}: skipped: {data['skipped']}")
            continue
        rows = data.get("results", data.get("rows", data)) if isinstance(data, dict) else data
        lines.append(f"- {name}: {len(rows) if isinstance(rows, list) else 1} result row(s) in {path.name}")
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, dict):
                keep = {k: v for k, v in row.items() if not isinstance(v, (list, dict))}
                lines.append(f"  - {json.dumps(keep, ensure_ascii=False)}")
(out / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
exit $TESTS_RC
