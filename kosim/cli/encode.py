"""``kosim encode``: embed the texts of a file into a ``.npy`` array."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from kosim.cli.common import add_model_arguments, existing_file, load_model, print_json, read_texts
from kosim.utils.log import log

HELP = "embed the texts of a file into a .npy array"
DESCRIPTION = """\
Embed every text of --input with --model and save the embeddings as a float32 [n, dim] array in --output (.npy),
row i for text i. --input is a .txt file with one text per line, or a .tsv/.csv/.jsonl table with the text
column named by --column. Prints {"output": ..., "shape": [n, dim], "seconds": ...} as one JSON line."""
EPILOG = """\
examples:
  kosim encode --model output/kosim-sts --input sentences.txt --output emb.npy --normalize
  kosim encode --model output/kosim-sts --input pairs.tsv --column sentence1 --output s1.npy --dtype bfloat16"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--input", required=True, type=existing_file, metavar="FILE", help=".txt, .tsv, .csv or .jsonl")
    parser.add_argument("--column", default=None, help="the text column of a .tsv/.csv/.jsonl input")
    parser.add_argument("--output", required=True, metavar="FILE.npy", help="where to write the embeddings")
    parser.add_argument(
        "--dtype",
        choices=("float32", "bfloat16", "int8"),
        default="float32",
        help="compute dtype of the forward pass (bfloat16 weights, or int8 GEMMs on CPU); the saved array is float32",
    )
    parser.add_argument("--normalize", action="store_true", help="L2-normalize each embedding (unit length)")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    texts = read_texts(args.input, args.column)
    model = load_model(args)
    log(f"encoding {len(texts)} texts from {args.input}")
    start = time.perf_counter()
    embeddings = model.encode(texts, batch_size=args.batch_size, normalize=args.normalize, dtype=args.dtype)
    seconds = time.perf_counter() - start
    output = Path(args.output).expanduser()
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "wb") as f:
        np.save(f, embeddings)
    print_json({"output": str(output), "shape": list(embeddings.shape), "seconds": round(seconds, 3)})
    return 0
