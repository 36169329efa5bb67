"""``kosim search``: the corpus texts most similar to a query."""

from __future__ import annotations

import argparse

from kosim.cli.common import add_model_arguments, existing_file, load_model, positive_int, print_json, read_texts

HELP = "find the corpus texts most similar to one or more queries"
DESCRIPTION = """\
Embed the texts of --corpus (a .txt file with one text per line, or a .tsv/.csv/.jsonl table with --column) and
each --query with --model, and print the --top-k corpus texts closest to each query by cosine similarity,
best first: the rank, the score and the text (or, with --json, one JSON line per query:
{"query": ..., "hits": [{"index": i, "score": s, "text": ...}, ...]}; index = the corpus line/row, from 0)."""
EPILOG = """\
examples:
  kosim search --model output/kosim-sts --corpus sentences.txt --query "한 남자가 기타를 치고 있다." --top-k 3
  kosim search --model output/kosim-sts --corpus pairs.tsv --column sentence1 --query "비행기" --query "고양이" --json"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument(
        "--corpus", required=True, type=existing_file, metavar="FILE", help=".txt, .tsv, .csv or .jsonl"
    )
    parser.add_argument("--column", default=None, help="the text column of a .tsv/.csv/.jsonl corpus")
    parser.add_argument(
        "--query", required=True, action="append", metavar="TEXT", help="a query text (repeat for several queries)"
    )
    parser.add_argument("--top-k", type=positive_int, default=5, help="hits per query (default 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON line per query instead of a table")


def run(args: argparse.Namespace) -> int:
    from kosim.search import semantic_search

    corpus = read_texts(args.corpus, args.column, what="--corpus")
    model = load_model(args)
    corpus_embeddings = model.encode(corpus, batch_size=args.batch_size, to="torch")
    query_embeddings = model.encode(args.query, batch_size=args.batch_size, to="torch")
    hits = semantic_search(query_embeddings, corpus_embeddings, top_k=args.top_k)
    for query, found in zip(args.query, hits):
        if args.json:
            print_json(
                {"query": query, "hits": [{"index": i, "score": round(s, 6), "text": corpus[i]} for i, s in found]}
            )
            continue
        print(f"query: {query}")
        for rank, (i, score) in enumerate(found, start=1):
            print(f"  {rank:>3}. {score:.4f}  {corpus[i]}")
    return 0
