"""``mine_hard_negatives``: add hard negatives to (anchor, positive) pairs with a SentenceEncoder.

The options and the output are those of sentence-transformers' ``mine_hard_negatives`` (for ``sampling_strategy=
"top"`` the rows are equal to its rows on the same model and inputs, except where two candidates score exactly the
same). The work is kosim's: every distinct text is encoded once (into an on-disk cache with ``cache_dir``, so a
killed run resumes without re-encoding), the search is exact and chunked (:func:`kosim.search.topk_search`, never a
queries x corpus matrix), and the filters run on ``[queries, window]`` arrays.

Options:

    dataset: a :class:`~kosim.data.ColumnDataset` or a ``{column: texts}`` dict of (anchor, positive) rows.
        Rows sharing an anchor are one query with several positives, none of which is its negative.
    model: a :class:`~kosim.model.SentenceEncoder` (its ``"query"`` / ``"document"`` prompts apply unless
        overridden). Candidates are ranked by cosine similarity of its normalised embeddings.
    anchor_column_name, positive_column_name: default to the first and second column.
    corpus: extra candidate texts; the positives are always candidates too. Duplicates count once.
    cross_encoder, use_faiss: not supported (a ValueError names them): kosim's exact chunked search
        needs no FAISS, and rescoring with a cross-encoder is not implemented yet.
    range_min, range_max: keep the surviving candidates ranked ``range_min .. range_max - 1``; ``range_max``
        defaults to ``range_min + num_negatives (x 10 with a margin or max_score) + max rows per anchor``.
    max_score, min_score: drop candidates scoring above / below.
    absolute_margin: drop candidates with ``score + margin > hardest positive score``.
    relative_margin: drop candidates with ``score > positive - |positive| * margin`` (positive-aware mining,
        NV-Retriever). Their best setting, "TopK-PercPos (95%)", is ``relative_margin=0.05`` with
        ``sampling_strategy="top"`` and ``num_negatives`` of 10 or less.
    num_negatives: negatives per anchor.
    sampling_strategy: ``"top"`` (the best survivors) or ``"random"`` (drawn among them with ``seed``).
    query_prompt(_name), corpus_prompt(_name): prompt text, or a name in ``model.prompts``, for each side.
    include_positives: keep the positives as candidates (a full ranking, e.g. for reranker evaluation); the
        output is then ``"n-tuple"``.
    output_format: ``"triplet"`` (default), ``"n-tuple"``, ``"labeled-pair"`` or ``"labeled-list"`` (see
        :mod:`kosim.mining.output`); ``output_scores`` adds the scores (the teacher scores of MarginMSE).
    batch_size, dtype: for encoding. verbose: log what was filtered and why on stderr.
    cache_dir: keep the embeddings there and reuse them when model, texts and prompt match.
    query_chunk_size, corpus_chunk_size: the search's block sizes (memory per block: their product in scores).
    progress: tqdm bars on stderr (default: when ``verbose``).
    pool: an ``EncodePool`` (or ``RankShards()`` under torchrun) from :mod:`kosim.encode_pool`: encode in several
        processes / devices, with the same embeddings.

Where kosim differs from sentence-transformers, on purpose: an unknown column or prompt name is an error (not a
silent fallback to the first column); ``include_positives`` with an output format other than ``"n-tuple"`` is an
error (not a warning and a switch); the deprecated ``as_triplets`` and ``margin`` are not accepted, nor
``faiss_batch_size`` / ``use_multi_process`` (``query_chunk_size`` sizes the search); the cache option is
``cache_dir`` (checked against a manifest, resumable); ``sampling_strategy="random"`` draws from its own seeded
generator (the same filters and window, not the same draws); the summary counts each removed candidate once, under
the first filter that removed it; models whose similarity is not cosine or dot (on normalised embeddings the two
agree) are refused, as a euclidean or manhattan model would score candidates by distance there."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from kosim.mining.cache import embed_texts, model_fingerprint
from kosim.mining.candidates import filter_candidates, positive_scores, search_candidates, select_negatives
from kosim.mining.output import OUTPUT_FORMATS, build_columns
from kosim.mining.pairs import MiningPairs, collect_pairs
from kosim.mining.report import log_summary
from kosim.utils.log import log as default_log
from kosim.utils.suggest import did_you_mean

__all__ = ["mine_hard_negatives"]

QUERY_PROMPT_NAMES = ("query",)
CORPUS_PROMPT_NAMES = ("document", "passage", "corpus")  # sentence-transformers' encode_document order


def mine_hard_negatives(
    dataset: Any,
    model: Any,
    anchor_column_name: str | None = None,
    positive_column_name: str | None = None,
    corpus: Sequence[str] | None = None,
    cross_encoder: Any = None,
    range_min: int = 0,
    range_max: int | None = None,
    max_score: float | None = None,
    min_score: float | None = None,
    absolute_margin: float | None = None,
    relative_margin: float | None = None,
    num_negatives: int = 3,
    sampling_strategy: str = "top",
    query_prompt_name: str | None = None,
    query_prompt: str | None = None,
    corpus_prompt_name: str | None = None,
    corpus_prompt: str | None = None,
    include_positives: bool = False,
    output_format: str | None = None,
    output_scores: bool = False,
    batch_size: int = 32,
    use_faiss: bool = False,
    verbose: bool = True,
    cache_dir: str | os.PathLike | None = None,
    seed: int = 0,
    dtype: str = "float32",
    query_chunk_size: int = 1024,
    corpus_chunk_size: int = 50_000,
    progress: bool | None = None,
    pool: Any = None,
) -> dict[str, list]:
    """Mine hard negatives for the (anchor, positive) pairs of ``dataset``: the output columns as a dict of lists.

    ``{column: values}`` in the chosen format, e.g. ``{"anchor": [...], "positive": [...], "negative": [...]}``;
    :func:`~kosim.mining.to_column_dataset` makes it a ColumnDataset, :func:`~kosim.mining.write_mined` a file
    that ``kosim train`` reads. The options are described in this module's docstring.
    """
    output_format = _check_options(
        **{k: v for k, v in locals().items() if k not in ("dataset", "model", "corpus", "pool")}
    )
    similarity = getattr(model, "similarity_fn_name", "cosine")
    if similarity not in ("cosine", "dot"):
        raise ValueError(f"model.similarity_fn_name is {similarity!r}: mining ranks by cosine (or dot) similarity only")
    log = default_log if verbose else None
    progress = verbose if progress is None else progress
    pairs = collect_pairs(dataset, anchor_column_name, positive_column_name, corpus)
    range_max = _range_max(range_min, range_max, num_negatives, pairs, absolute_margin, relative_margin, max_score)
    if log:
        _log_inputs(log, pairs, range_max, corpus is not None)
    prompts = (
        _resolve_prompt(model, query_prompt, query_prompt_name, QUERY_PROMPT_NAMES, "query"),
        _resolve_prompt(model, corpus_prompt, corpus_prompt_name, CORPUS_PROMPT_NAMES, "corpus"),
    )
    query_emb, corpus_emb = _embed(model, pairs, prompts, batch_size, dtype, cache_dir, progress, log, pool)
    device = getattr(model, "device", torch.device("cpu"))
    window = range_max + pairs.max_rows_per_query  # room for the positives, which are removed afterwards
    scores, indices = search_candidates(
        query_emb, corpus_emb, window, device, query_chunk_size, corpus_chunk_size, progress
    )
    pair_scores = positive_scores(query_emb, corpus_emb, pairs)
    del query_emb, corpus_emb
    counts = filter_candidates(
        scores, indices, pairs, pair_scores, include_positives, absolute_margin, relative_margin, max_score, min_score
    )
    neg_index, neg_scores = select_negatives(
        scores, indices, range_min, range_max, num_negatives, sampling_strategy, seed
    )
    columns, used = build_columns(output_format, output_scores, pairs, pair_scores, neg_index, neg_scores)
    if log:
        options = {"absolute_margin": absolute_margin, "relative_margin": relative_margin}
        options |= {"max_score": max_score, "min_score": min_score, "range_min": range_min, "range_max": range_max}
        log_summary(log, counts, options, pair_scores.numpy(), used, neg_scores, pairs, num_negatives, output_format)
    return columns


def _check_options(**o: Any) -> str:
    """Validate the options early (each error names the option); the output format to use."""
    if o["cross_encoder"] is not None:
        raise ValueError("cross_encoder: rescoring candidates with a cross-encoder is not supported yet")
    if o["use_faiss"]:
        raise ValueError("use_faiss: kosim searches exactly in bounded memory without FAISS; drop the option")
    for name in ("range_min", "num_negatives", "batch_size", "query_chunk_size", "corpus_chunk_size", "seed"):
        if isinstance(o[name], bool) or not isinstance(o[name], int):
            raise TypeError(f"{name} must be an int, got {o[name]!r}")
    for name in ("batch_size", "query_chunk_size", "corpus_chunk_size", "num_negatives"):
        if o[name] < 1:
            raise ValueError(f"{name} must be at least 1, got {name}={o[name]}")
    if o["range_min"] < 0:
        raise ValueError(f"range_min must be non-negative, got range_min={o['range_min']}")
    if o["range_max"] is not None and (isinstance(o["range_max"], bool) or not isinstance(o["range_max"], int)):
        raise TypeError(f"range_max must be an int or None, got {o['range_max']!r}")
    for name in ("max_score", "min_score", "absolute_margin", "relative_margin"):
        value = o[name]
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
        ):
            raise ValueError(f"{name} must be a finite number or None, got {value!r}")
    if o["sampling_strategy"] not in ("top", "random"):
        hint = did_you_mean(str(o["sampling_strategy"]), ("top", "random"))
        raise ValueError(f"sampling_strategy must be 'top' or 'random', got {o['sampling_strategy']!r}{hint}")
    output_format = o["output_format"]
    if output_format is None:
        return "n-tuple" if o["include_positives"] else "triplet"
    if output_format not in OUTPUT_FORMATS:
        hint = did_you_mean(str(output_format), OUTPUT_FORMATS)
        raise ValueError(f"output_format must be one of {list(OUTPUT_FORMATS)}, got {output_format!r}{hint}")
    if o["include_positives"] and output_format != "n-tuple":
        raise ValueError(
            f"include_positives=True keeps the ranking order and needs output_format='n-tuple', got {output_format!r}"
        )
    return output_format


def _range_max(range_min, range_max, num_negatives, pairs: MiningPairs, absolute_margin, relative_margin, max_score):
    """The given ``range_max``, or sentence-transformers' default; checked against ``range_min`` and ``num_negatives``."""
    if range_max is None:
        filtered = absolute_margin is not None or relative_margin is not None or max_score is not None
        range_max = range_min + num_negatives * (10 if filtered else 1) + pairs.max_rows_per_query
    if range_min >= range_max:
        raise ValueError(
            f"range_min must be smaller than range_max, got range_min={range_min} and range_max={range_max}"
        )
    if num_negatives > range_max - range_min:
        raise ValueError(
            f"num_negatives={num_negatives} does not fit in ranks range_min={range_min} .. range_max={range_max}: "
            "lower num_negatives or range_min, or raise range_max"
        )
    return range_max


def _resolve_prompt(model: Any, prompt: str | None, prompt_name: str | None, defaults: tuple, side: str) -> str:
    """The prompt text for one side: ``prompt``; else the model's prompt ``prompt_name``; else its first of
    ``defaults`` (``"query"``, or ``"document"`` / ``"passage"`` / ``"corpus"``); else ``""``: never the model's
    ``default_prompt_name``, as sentence-transformers' encode_query / encode_document (and ``encode_query``)."""
    if prompt is not None:
        if not isinstance(prompt, str):
            raise TypeError(f"{side}_prompt must be a str, got {type(prompt).__name__}")
        return prompt
    prompts = dict(getattr(model, "prompts", None) or {})
    if prompt_name is None:
        prompt_name = next((name for name in defaults if name in prompts), None)
    if prompt_name is None:
        return ""
    if prompt_name not in prompts:
        raise KeyError(
            f"{side}_prompt_name {prompt_name!r} is not one of the model's prompts {sorted(prompts)}"
            f"{did_you_mean(prompt_name, prompts)}"
        )
    return prompts[prompt_name]


def _embed(model, pairs: MiningPairs, prompts, batch_size, dtype, cache_dir, progress, log, pool=None):
    """Normalised ``(query [q, dim], corpus [docs, dim])`` embeddings, every distinct text encoded once.

    With one prompt for both sides, an anchor that is also a corpus text is encoded once for both."""
    query_prompt, corpus_prompt = prompts
    fingerprint = model_fingerprint(model) if cache_dir is not None else None
    common = {"batch_size": batch_size, "dtype": dtype, "cache_dir": cache_dir, "fingerprint": fingerprint}
    common |= {"progress": progress, "log": log, "pool": pool}
    if query_prompt != corpus_prompt:
        corpus_emb = embed_texts(model, pairs.corpus, corpus_prompt, role="corpus", **common)
        return embed_texts(model, pairs.queries, query_prompt, role="queries", **common), corpus_emb
    n_docs, extra = len(pairs.corpus), {}
    rows = np.empty(len(pairs.queries), dtype=np.int64)
    for i, query in enumerate(pairs.queries):
        rows[i] = pairs.corpus_index.get(query, -1)
        if rows[i] < 0:
            rows[i] = extra.setdefault(query, n_docs + len(extra))
    embeddings = embed_texts(model, pairs.corpus + list(extra), corpus_prompt, role="texts", **common)
    return embeddings[rows], embeddings[:n_docs]


def _log_inputs(log, pairs: MiningPairs, range_max: int, separate: bool) -> None:
    n_pairs = len(pairs.pair_query)
    log(
        f"mining: {pairs.num_rows:,} rows -> {len(pairs.queries):,} distinct anchors, {n_pairs:,} distinct pairs, "
        f"{len(pairs.corpus):,} distinct candidate texts ({'separate corpus + ' if separate else ''}positives)"
    )
    if n_pairs > len(pairs.queries):
        log(
            f"mining: {n_pairs / len(pairs.queries):.3f} positives per anchor on average (none is a negative of its own)"
        )
    log(f"mining: candidates ranked up to range_max={range_max}")
