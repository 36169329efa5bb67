"""``kosim quickstart``: train a small Korean sentence encoder offline from the bundled data."""

from __future__ import annotations

import argparse

from kosim.cli.common import print_json

HELP = "train a small Korean sentence encoder offline (tokenizer, BERT, NLI, STS, then retrieval) and evaluate it"
DESCRIPTION = """\
Build a WordPiece tokenizer and a small BERT from scratch on the bundled KorSTS/KorNLI text, train it with
MultipleNegativesRankingLoss on the KorNLI triplets, then with CosineSimilarityLoss on KorSTS train, then for
retrieval (hard negatives mined with the model so far for half the queries of the KorNLI retrieval task, MNRL on
them; the same Trainer, losses, samplers and mining as 'kosim train'), evaluate on KorSTS dev and on the other half
of the retrieval queries (nDCG@10) before and after, save the model in the sentence-transformers format with its
model card, and print {"untrained": ..., "trained": ...} as one JSON line.
No model hub is needed. The recipe is the TOML file kosim/configs/quickstart.toml: copy it to change sizes,
epochs or data."""
EPILOG = """\
examples:
  kosim quickstart
  kosim quickstart --output output/my-quickstart
  kosim quickstart --config my-quickstart.toml"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", default=None, metavar="TOML", help="quickstart recipe (default: kosim/configs/quickstart.toml)"
    )
    parser.add_argument(
        "--output", default=None, metavar="DIR", help="output folder (default: the config's [output] dir)"
    )


def run(args: argparse.Namespace) -> int:
    from kosim.config.quickstart import run_quickstart

    result = run_quickstart(args.config, args.output)
    key = "sts-dev_spearman_cosine"
    if key in result["untrained"] and key in result["trained"]:
        print(
            f"KorSTS dev spearman (cosine): untrained {result['untrained'][key]:.4f} -> trained "
            f"{result['trained'][key]:.4f}; model saved to {result['output_dir']} in {result['seconds']:.0f} s",
            flush=True,
        )
    key = "kornli-dev_cosine_ndcg@10"
    if key in result["untrained"] and key in result["trained"]:
        print(
            f"KorNLI retrieval dev nDCG@10 (cosine): untrained {result['untrained'][key]:.4f} -> trained "
            f"{result['trained'][key]:.4f}",
            flush=True,
        )
    print_json(result)
    return 0
