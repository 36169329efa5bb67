"""``kosim evaluate``: STS correlations of a model on a KorSTS-format file."""

from __future__ import annotations

import argparse

from kosim.cli.common import add_model_arguments, existing_file, load_model, print_json

HELP = "Pearson/Spearman correlations of a model on a KorSTS-format file"
DESCRIPTION = """\
Evaluate --model with EmbeddingSimilarityEvaluator on --sts, a KorSTS-format file (tab-separated with columns
sentence1, sentence2 and a 0-5 score), and print its metrics as one JSON line, named as sentence-transformers
names them: {"NAME_pearson_cosine": ..., "NAME_spearman_cosine": ...}."""
EPILOG = """\
examples:
  kosim evaluate --model output/kosim-sts --sts kosim/resources/kornlu/KorSTS/sts-dev.tsv
  kosim evaluate --model output/kosim-sts --sts sts-test.tsv --similarity-fns cosine dot --name sts-test"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--sts", required=True, type=existing_file, metavar="FILE", help="a KorSTS-format .tsv file")
    parser.add_argument("--name", default=None, help="metric name prefix (default: the file name without suffix)")
    parser.add_argument(
        "--similarity-fns",
        nargs="+",
        default=None,
        choices=("cosine", "dot", "euclidean", "manhattan"),
        help="similarities to correlate (default: the model's similarity function)",
    )


def run(args: argparse.Namespace) -> int:
    from kosim.data import read_korsts
    from kosim.evaluation import EmbeddingSimilarityEvaluator

    data = read_korsts(args.sts)
    model = load_model(args)
    evaluator = EmbeddingSimilarityEvaluator(
        data.column("sentence1"),
        data.column("sentence2"),
        data.labels.tolist(),
        batch_size=args.batch_size,
        name=args.sts.stem if args.name is None else args.name,
        similarity_fns=args.similarity_fns or [model.similarity_fn_name],
    )
    print_json(evaluator(model))
    return 0
