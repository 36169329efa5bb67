"""``kosim export``: write an ONNX export of a model directory (sentence-transformers' ``onnx/`` layout)."""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

from kosim.cli.common import UsageError, print_json
from kosim.utils.log import log

HELP = "export a model to ONNX (onnx/model.onnx, optionally int8)"
DESCRIPTION = """\
Export MODEL_DIR (a sentence-transformers directory or a plain transformers checkpoint) to ONNX: the encoder,
pooling and any Dense/Normalize modules as one graph with dynamic batch and sequence axes, written to
OUTPUT/onnx/model.onnx (OUTPUT defaults to MODEL_DIR; another OUTPUT becomes a full model directory too).
--int8 also writes onnx/model_qint8_avx512_vnni.onnx, onnxruntime's dynamic int8 quantization of the same graph.
sentence-transformers loads the result with SentenceTransformer(OUTPUT, backend="onnx"); kosim with
kosim.onnx.OnnxEncoder(OUTPUT). Needs the onnx extra (pip install 'kosim[onnx]'). Prints
{"output": ..., "files": [...], "seconds": ...} as one JSON line."""
EPILOG = """\
examples:
  kosim export output/kosim-sts --format onnx
  kosim export output/kosim-sts --format onnx --int8 --output exported/kosim-sts"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL_DIR", help="the model directory to export")
    parser.add_argument("--format", choices=("onnx",), default="onnx", help="export format (default onnx)")
    parser.add_argument("--int8", action="store_true", help="also write the dynamically quantized int8 graph")
    parser.add_argument("--output", default=None, metavar="DIR", help="where to write (default: MODEL_DIR)")


def run(args: argparse.Namespace) -> int:
    model_dir = Path(args.model).expanduser()
    if not model_dir.is_dir():
        raise UsageError(f"MODEL_DIR {args.model} is not a directory")
    needed = ["onnx", "onnxscript"] + (["onnxruntime"] if args.int8 else [])
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(f"ONNX export needs {', '.join(missing)}: pip install 'kosim[onnx]'")
    from kosim.onnx import export_onnx
    from kosim.onnx.export import FP32_FILE, INT8_FILE, ONNX_DIR

    out = Path(args.output).expanduser() if args.output else model_dir
    log(f"exporting {model_dir} to {out / ONNX_DIR}")
    start = time.perf_counter()
    export_onnx(model_dir, out, int8=args.int8)
    files = [f"{ONNX_DIR}/{FP32_FILE}"] + ([f"{ONNX_DIR}/{INT8_FILE}"] if args.int8 else [])
    print_json({"output": str(out), "files": files, "seconds": round(time.perf_counter() - start, 3)})
    return 0
