"""``kosim evaluate``: STS correlations of a model on a KorSTS-format file, or its retrieval metrics on a task."""

from __future__ import annotations

import argparse
from pathlib import Path

from kosim.cli.common import (
    add_devices_argument,
    add_model_arguments,
    encode_pool,
    existing_file,
    load_model,
    print_json,
)
from kosim.cli.errors import UsageError

HELP = "STS correlations of a model on a KorSTS-format file, or retrieval metrics (nDCG@10, ...) on a task"
DESCRIPTION = """\
Evaluate --model and print its metrics as one JSON line, named as sentence-transformers names them:
  --sts FILE    EmbeddingSimilarityEvaluator on a KorSTS-format file (tab-separated sentence1, sentence2 and a 0-5
                score): {"NAME_pearson_cosine": ..., "NAME_spearman_cosine": ...}
  --ir kornli   InformationRetrievalEvaluator on the bundled Korean retrieval task (KorNLI premises as queries,
                their entailed hypotheses as the relevant documents; --split all, train or dev: the dev half is
                the queries the retrieval recipe does not train on), or
  --beir DIR    on a BEIR-format directory (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv; --split, default test):
                {"NAME_cosine_accuracy@1": ..., "NAME_cosine_ndcg@10": ..., ...}
Queries and documents get the model's "query" / "document" prompts unless --query-prompt / --corpus-prompt say
otherwise. --devices cpu,cpu (or cuda:0,cuda:1) encodes the STS sentences, or the retrieval corpus and queries, in
one worker process per device, with the same metrics."""
EPILOG = """\
examples:
  kosim evaluate --model output/kosim-sts --sts kosim/resources/kornlu/KorSTS/sts-dev.tsv
  kosim evaluate --model output/kosim-sts --sts sts-test.tsv --similarity-fns cosine dot --name sts-test
  kosim evaluate --model output/kosim-sts --sts sts-test.tsv --devices cpu,cpu
  kosim evaluate --model output/retrieval --ir kornli --split dev
  kosim evaluate --model output/retrieval --ir kornli --devices cpu,cpu
  kosim evaluate --model output/retrieval --beir data/ko-strategyqa --split dev --query-prompt "query: \""""

IR_SPLITS = ("all", "train", "dev")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    add_devices_argument(parser)
    task = parser.add_mutually_exclusive_group(required=True)
    task.add_argument("--sts", type=existing_file, metavar="FILE", help="a KorSTS-format .tsv file")
    task.add_argument("--ir", choices=("kornli",), help="a bundled retrieval task: kornli")
    task.add_argument("--beir", metavar="DIR", help="a BEIR-format directory (corpus.jsonl, queries.jsonl, qrels/)")
    parser.add_argument("--split", default=None, help="--ir: all, train or dev (default dev); --beir: default test")
    parser.add_argument("--name", default=None, help="metric name prefix (default: the file or task name)")
    parser.add_argument(
        "--similarity-fns",
        nargs="+",
        default=None,
        choices=("cosine", "dot", "euclidean", "manhattan"),
        help="similarities to correlate or rank with (retrieval: cosine, dot; default: the model's)",
    )
    parser.add_argument("--query-prompt", default=None, help="retrieval: prompt text before each query")
    parser.add_argument("--corpus-prompt", default=None, help="retrieval: prompt text before each document")


def _sts(args: argparse.Namespace) -> dict[str, float]:
    from kosim.data import read_korsts
    from kosim.evaluation import EmbeddingSimilarityEvaluator

    data = read_korsts(args.sts)
    model = load_model(args)
    with encode_pool(args, model) as pool:
        evaluator = EmbeddingSimilarityEvaluator(
            data.column("sentence1"),
            data.column("sentence2"),
            data.labels.tolist(),
            batch_size=args.batch_size,
            name=args.sts.stem if args.name is None else args.name,
            similarity_fns=args.similarity_fns or [model.similarity_fn_name],
            pool=pool,
        )
        return evaluator(model)


def _retrieval_task(args: argparse.Namespace):
    from kosim.data import kornli_retrieval_task, load_beir

    if args.ir is not None:
        split = args.split or "dev"
        if split not in IR_SPLITS:
            raise UsageError(f"--split: --ir kornli has the splits {list(IR_SPLITS)}, got {split!r}")
        return kornli_retrieval_task(split)
    directory = Path(args.beir).expanduser()
    if not directory.is_dir():
        raise UsageError(f"--beir: not a directory: {directory}")
    return load_beir(directory, args.split or "test")


def _retrieval(args: argparse.Namespace) -> dict[str, float]:
    fns = args.similarity_fns
    if fns is not None and not set(fns) <= {"cosine", "dot"}:
        raise UsageError(f"--similarity-fns: retrieval ranks with cosine or dot, got {fns}")
    task = _retrieval_task(args)
    model = load_model(args)
    with encode_pool(args, model) as pool:
        evaluator = task.evaluator(
            batch_size=args.batch_size,
            name=task.name if args.name is None else args.name,
            score_functions=fns,
            query_prompt=args.query_prompt,
            corpus_prompt=args.corpus_prompt,
            pool=pool,
        )
        return evaluator(model)


def run(args: argparse.Namespace) -> int:
    if args.sts is not None:
        for flag in ("split", "query_prompt", "corpus_prompt"):
            if getattr(args, flag) is not None:
                raise UsageError(f"--{flag.replace('_', '-')} applies to --ir / --beir, not --sts")
        print_json(_sts(args))
    else:
        print_json(_retrieval(args))
    return 0
