"""``kosim mine``: add hard negatives to the (anchor, positive) pairs of a file."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from kosim.cli.common import (
    UsageError,
    add_devices_argument,
    add_model_arguments,
    encode_pool,
    existing_file,
    load_model,
    positive_int,
    print_json,
    read_texts,
)
from kosim.utils.log import log

HELP = "mine hard negatives for (anchor, positive) pairs into a training file"
DESCRIPTION = """\
Read (anchor, positive) pairs from --input (a .tsv/.csv/.jsonl table; the first two columns unless named), embed
them with --model, and write to --output (.tsv or .jsonl) the pairs with hard negatives: the candidates most similar
to each anchor that are not one of its positives, filtered by rank (--range-min/--range-max), score (--max-score,
--min-score) and margin to the positive (--absolute-margin, --relative-margin). Candidates are the positives plus
an optional --corpus. The options and output formats are those of sentence-transformers' mine_hard_negatives.
Embeddings are kept in --cache-dir when given, so a second (or killed and restarted) run does not encode again.
Prints {"output": ..., "rows": n, "columns": [...], "seconds": ...} as one JSON line."""
EPILOG = """\
examples:
  kosim mine --model output/kosim-sts --input pairs.tsv --output hard.tsv --relative-margin 0.05 --num-negatives 5
  kosim mine --model output/kosim-sts --input qa.jsonl --anchor-column query --positive-column answer \\
      --corpus passages.txt --output hard.jsonl --output-format n-tuple --output-scores --cache-dir cache/mine
  kosim mine --model output/kosim-sts --input pairs.tsv --output hard.tsv --devices cpu,cpu   # 2 encode workers

NV-Retriever's best setting ("TopK-PercPos 95%") is --relative-margin 0.05 with the default top sampling."""


def _float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {value!r}")
    return number


def _non_negative_int(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value!r}")
    return int(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    add_devices_argument(parser)
    parser.add_argument("--input", required=True, type=existing_file, metavar="FILE", help=".tsv, .csv or .jsonl pairs")
    parser.add_argument("--anchor-column", default=None, help="anchor column of --input (default: the first)")
    parser.add_argument("--positive-column", default=None, help="positive column of --input (default: the second)")
    parser.add_argument("--corpus", type=existing_file, default=None, metavar="FILE", help="extra candidate texts")
    parser.add_argument("--corpus-column", default=None, help="the text column of a .tsv/.csv/.jsonl --corpus")
    parser.add_argument("--output", required=True, metavar="FILE", help="where to write the mined rows (.tsv/.jsonl)")
    parser.add_argument("--num-negatives", type=positive_int, default=3, help="negatives per anchor (default 3)")
    parser.add_argument("--range-min", type=_non_negative_int, default=0, help="skip the best N survivors")
    parser.add_argument("--range-max", type=positive_int, default=None, help="consider survivors ranked below N")
    parser.add_argument("--max-score", type=_float, default=None, help="drop candidates scoring above")
    parser.add_argument("--min-score", type=_float, default=None, help="drop candidates scoring below")
    parser.add_argument("--absolute-margin", type=_float, default=None, help="drop score + m > positive score")
    parser.add_argument("--relative-margin", type=_float, default=None, help="drop score > positive - |positive| m")
    parser.add_argument("--sampling-strategy", choices=("top", "random"), default="top")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random sampling strategy (default 0)")
    parser.add_argument("--output-format", choices=("triplet", "n-tuple", "labeled-pair", "labeled-list"), default=None)
    parser.add_argument("--output-scores", action="store_true", help="add the similarity scores")
    parser.add_argument("--include-positives", action="store_true", help="keep positives as candidates (n-tuple)")
    parser.add_argument("--query-prompt", default=None, help="prompt text before each anchor")
    parser.add_argument("--query-prompt-name", default=None, help="a prompt of the model for the anchors")
    parser.add_argument("--corpus-prompt", default=None, help="prompt text before each candidate")
    parser.add_argument("--corpus-prompt-name", default=None, help="a prompt of the model for the candidates")
    parser.add_argument("--cache-dir", default=None, metavar="DIR", help="keep the embeddings here and reuse them")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32", help="encoding dtype")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or summary on stderr")


def _read_pairs(args: argparse.Namespace):
    from kosim.data import TABLE_SUFFIXES, read_table

    suffix = args.input.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise UsageError(f"--input {args.input} must be a .tsv, .csv or .jsonl table of (anchor, positive) pairs")
    named = [c for c in (args.anchor_column, args.positive_column) if c is not None]
    data = read_table(args.input, columns=named if len(named) == 2 else None)
    if len(named) == 1 and named[0] not in data.column_names:
        from kosim.utils.suggest import did_you_mean

        hint = did_you_mean(named[0], data.column_names)
        raise UsageError(f"--input {args.input} has no column {named[0]!r}; columns: {data.column_names}{hint}")
    return data


def run(args: argparse.Namespace) -> int:
    from kosim.mining import mine_hard_negatives, write_mined

    output = Path(args.output).expanduser()
    if output.suffix.lower() not in (".tsv", ".jsonl"):
        raise UsageError(f"--output {output} must end in .tsv or .jsonl")
    data = _read_pairs(args)
    corpus = read_texts(args.corpus, args.corpus_column, what="--corpus") if args.corpus is not None else None
    model = load_model(args)
    if not args.quiet:
        log(f"mining hard negatives for {len(data)} rows of {args.input}")
    start = time.perf_counter()
    try:
        with encode_pool(args, model) as pool:
            mined = mine_hard_negatives(
                data,
                model,
                anchor_column_name=args.anchor_column,
                positive_column_name=args.positive_column,
                corpus=corpus,
                range_min=args.range_min,
                range_max=args.range_max,
                max_score=args.max_score,
                min_score=args.min_score,
                absolute_margin=args.absolute_margin,
                relative_margin=args.relative_margin,
                num_negatives=args.num_negatives,
                sampling_strategy=args.sampling_strategy,
                query_prompt_name=args.query_prompt_name,
                query_prompt=args.query_prompt,
                corpus_prompt_name=args.corpus_prompt_name,
                corpus_prompt=args.corpus_prompt,
                include_positives=args.include_positives,
                output_format=args.output_format,
                output_scores=args.output_scores,
                batch_size=args.batch_size,
                verbose=not args.quiet,
                cache_dir=args.cache_dir,
                seed=args.seed,
                dtype=args.dtype,
                pool=pool,
            )
        written = write_mined(mined, output)
    except (KeyError, ValueError) as exc:
        raise UsageError(exc.args[0] if exc.args else str(exc)) from None
    columns = list(mined)
    rows = len(mined[columns[0]])
    seconds = round(time.perf_counter() - start, 3)
    print_json({"output": str(written), "rows": rows, "columns": columns, "seconds": seconds})
    return 0
