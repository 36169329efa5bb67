"""BEIR-format retrieval data: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

The format the Korean (and most other) retrieval sets are published in, e.g. on MTEB::

    corpus.jsonl     {"_id": "d1", "title": "...", "text": "..."}     one document per line ("title" optional)
    queries.jsonl    {"_id": "q1", "text": "..."}                      one query per line
    qrels/test.tsv   query-id <TAB> corpus-id <TAB> score              with that header line

A document's text is ``(title + " " + text).strip()``, as BEIR's and MTEB's dense retrievers embed it
(``title_sep=None`` keeps the text alone). Relevance is binary as in sentence-transformers' evaluator and BEIR's
binary measures: a qrels score above 0 is relevant, a score of 0 (or below) is a judged non-relevant pair and is
dropped. Ids are strings (an integer ``_id`` is turned into its decimal string, matching the qrels text).
Every error is a :class:`~kosim.data.datasets.DataError` starting with ``path:line``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

from kosim.data.datasets import ColumnDataset, DataError
from kosim.data.parsing import iter_split_lines, json_object, skip_blank
from kosim.data.retrieval_task import RetrievalTask

__all__ = ["load_beir", "read_beir_corpus", "read_beir_qrels", "read_beir_queries", "beir_training_pairs"]

PathLike = str | Path
QRELS_HEADER = ["query-id", "corpus-id", "score"]


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line_number, line)`` of a UTF-8 file without its line end (and BOM): kosim's shared line reader, so
    trailing blank lines are skipped and an interior blank line is an error naming it."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    for lineno, fields in skip_blank(iter_split_lines(path, "\n"), path):
        yield lineno, fields[0]


def _json_records(path: Path, keys: tuple[str, ...]) -> Iterator[tuple[str, str, dict]]:
    """``(where, id, object)`` per line, with ``_id`` checked and each of ``keys`` a str when present."""
    for lineno, line in _lines(path):
        where = f"{path}:{lineno}"
        obj = json_object(line, where)
        raw_id = obj.get("_id")
        if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)) or raw_id == "":
            raise DataError(f"{where}: '_id' must be a non-empty string, got {raw_id!r} (keys: {sorted(obj)})")
        for key in keys:
            value = obj.get(key)
            if value is not None and not isinstance(value, str):
                raise DataError(f"{where}: {key!r} must be a string, got {type(value).__name__}")
        yield where, str(raw_id), obj


def _add(out: dict[str, str], first: dict[str, str], where: str, key: str, text: str) -> None:
    if key in out:
        raise DataError(f"{where}: duplicate _id {key!r} (first at {first[key]})")
    out[key] = text
    first[key] = where


def read_beir_corpus(path: PathLike, title_sep: str | None = " ") -> dict[str, str]:
    """``{corpus_id: text}`` of a BEIR ``corpus.jsonl`` in file order, the title joined in front by ``title_sep``.

    ``text`` is required, ``title`` optional (missing, null or ``""``); a document may be empty.
    """
    p = Path(path)
    out: dict[str, str] = {}
    first: dict[str, str] = {}
    for where, key, obj in _json_records(p, ("title", "text")):
        if "text" not in obj or obj["text"] is None:
            raise DataError(f"{where}: missing key 'text' (keys: {sorted(obj)})")
        text = obj["text"]
        if title_sep is not None and obj.get("title"):
            text = obj["title"] + title_sep + text
        _add(out, first, where, key, text.strip())
    if not out:
        raise DataError(f"{p}: no documents (empty file)")
    return out


def read_beir_queries(path: PathLike) -> dict[str, str]:
    """``{query_id: text}`` of a BEIR ``queries.jsonl`` in file order; an empty query text is an error."""
    p = Path(path)
    out: dict[str, str] = {}
    first: dict[str, str] = {}
    for where, key, obj in _json_records(p, ("text",)):
        text = obj.get("text")
        if text is None or not text.strip():
            raise DataError(f"{where}: query {key!r} has no text (keys: {sorted(obj)})")
        _add(out, first, where, key, text.strip())
    if not out:
        raise DataError(f"{p}: no queries (empty file)")
    return out


def _qrels_rows(path: Path) -> Iterator[tuple[str, str, str, float]]:
    """``(where, query_id, corpus_id, score)`` per judgement of a qrels tsv (header checked, ids stripped)."""
    lines = _lines(path)
    first = next(lines, None)
    if first is None:
        raise DataError(f"{path}: empty file (no header line)")
    header = [field.strip() for field in first[1].split("\t")]
    if header != QRELS_HEADER:
        raise DataError(f"{path}:{first[0]}: expected the header {'<TAB>'.join(QRELS_HEADER)}, got {header}")
    any_row = False
    for lineno, line in lines:
        where = f"{path}:{lineno}"
        fields = line.split("\t")
        if len(fields) != 3:
            raise DataError(f"{where}: expected 3 tab-separated fields (query-id, corpus-id, score), got {len(fields)}")
        qid, cid, raw = (field.strip() for field in fields)
        if not qid or not cid:
            raise DataError(f"{where}: empty {'query-id' if not qid else 'corpus-id'}")
        try:
            score = float(raw)
        except ValueError:
            raise DataError(f"{where}: score {raw!r} is not a number") from None
        if not math.isfinite(score):
            raise DataError(f"{where}: score {raw!r} is not finite")
        any_row = True
        yield where, qid, cid, score
    if not any_row:
        raise DataError(f"{path}: no judgements after the header")


def read_beir_qrels(path: PathLike) -> dict[str, dict[str, float]]:
    """``{query_id: {corpus_id: score}}`` of a qrels tsv, every row kept (score 0 too), queries in file order.

    A pair judged twice with different scores is an error; an identical repeat is merged.
    """
    p = Path(path)
    out: dict[str, dict[str, float]] = {}
    seen: dict[tuple[str, str], str] = {}
    for where, qid, cid, score in _qrels_rows(p):
        judged = out.setdefault(qid, {})
        if cid in judged and judged[cid] != score:
            raise DataError(f"{where}: ({qid!r}, {cid!r}) judged {score} here but {judged[cid]} at {seen[qid, cid]}")
        judged[cid] = score
        seen.setdefault((qid, cid), where)
    return out


def _qrels_path(directory: Path, split: str) -> Path:
    path = directory / "qrels" / f"{split}.tsv"
    if not path.is_file():
        found = sorted(p.stem for p in (directory / "qrels").glob("*.tsv")) if (directory / "qrels").is_dir() else []
        raise DataError(f"{path}: no such file; qrels splits in {directory}: {found or 'none'}")
    return path


def load_beir(
    directory: PathLike,
    split: str = "test",
    title_sep: str | None = " ",
    skip_missing: bool = False,
    name: str | None = None,
) -> RetrievalTask:
    """A BEIR directory's ``split`` as a :class:`~kosim.data.retrieval_task.RetrievalTask` (the evaluator's dicts).

    Queries are those of ``queries.jsonl`` with at least one relevant (score > 0) document in ``qrels/<split>.tsv``,
    in file order; the corpus is the whole ``corpus.jsonl``. A judgement naming a query or document id that the
    jsonl files lack is an error at its qrels line, unless ``skip_missing`` drops it (then relevant documents
    missing from the corpus no longer count in recall and nDCG, unlike BEIR, which counts them as never found).
    ``name`` defaults to ``"<directory name>-<split>"``.
    """
    root = Path(directory)
    qrels_path = _qrels_path(root, split)
    corpus = read_beir_corpus(root / "corpus.jsonl", title_sep)
    all_queries = read_beir_queries(root / "queries.jsonl")
    relevant: dict[str, set[str]] = {}
    for where, qid, cid, score in _qrels_rows(qrels_path):
        missing = None if qid in all_queries else "query-id"
        missing = missing or (None if cid in corpus else "corpus-id")
        if missing is not None:
            if skip_missing:
                continue
            file = "queries.jsonl" if missing == "query-id" else "corpus.jsonl"
            value = qid if missing == "query-id" else cid
            raise DataError(f"{where}: {missing} {value!r} is not in {root / file} (skip_missing=True drops such rows)")
        if score > 0:
            relevant.setdefault(qid, set()).add(cid)
    queries = {qid: text for qid, text in all_queries.items() if qid in relevant}
    if not queries:
        raise DataError(f"{qrels_path}: no query has a relevant (score > 0) document")
    return RetrievalTask(
        queries=queries,
        corpus=corpus,
        relevant_docs={qid: relevant[qid] for qid in queries},
        name=name if name is not None else f"{root.resolve().name}-{split}",
    )


def beir_training_pairs(
    directory: PathLike,
    split: str = "train",
    title_sep: str | None = " ",
    skip_missing: bool = False,
    name: str | None = None,
) -> ColumnDataset:
    """``(query, positive)`` training rows from a BEIR directory's ``split``: one per relevant judgement, queries
    in file order and documents by ascending id (see :func:`load_beir` for the checks)."""
    return load_beir(directory, split, title_sep, skip_missing, name).pairs()
