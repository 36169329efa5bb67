"""`kosim.st.util`: sentence-transformers' util functions on kosim's search, paraphrase mining and hard-negative
mining. The results have sentence-transformers' shapes (lists of dicts / lists); unsupported arguments raise."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from kosim.similarity import (
    cos_sim,
    dot_score,
    euclidean_sim,
    manhattan_sim,
    pairwise_cos_sim,
    pairwise_dot_score,
    pairwise_euclidean_sim,
    pairwise_manhattan_sim,
    to_tensor,
)

__all__ = [
    "community_detection",
    "cos_sim",
    "dot_score",
    "euclidean_sim",
    "manhattan_sim",
    "mine_hard_negatives",
    "normalize_embeddings",
    "pairwise_cos_sim",
    "pairwise_dot_score",
    "pairwise_euclidean_sim",
    "pairwise_manhattan_sim",
    "paraphrase_mining",
    "paraphrase_mining_embeddings",
    "quantize_embeddings",
    "semantic_search",
]


def normalize_embeddings(embeddings: Tensor) -> Tensor:
    """Rows scaled to unit L2 norm: `[n, dim]`."""
    return torch.nn.functional.normalize(to_tensor(embeddings), p=2, dim=1)


def _score_name(score_function: Callable[[Tensor, Tensor], Tensor]) -> str:
    """kosim's search scores by name: sentence-transformers' `cos_sim` / `dot_score` (ours or theirs)."""
    name = getattr(score_function, "__name__", None)
    if name in ("cos_sim", "dot_score"):
        return "cos" if name == "cos_sim" else "dot"
    raise ValueError(f"score_function must be util.cos_sim or util.dot_score in kosim.st, got {score_function!r}")


def semantic_search(
    query_embeddings: Any,
    corpus_embeddings: Any,
    query_chunk_size: int = 100,
    corpus_chunk_size: int = 500_000,
    top_k: int = 10,
    score_function: Callable[[Tensor, Tensor], Tensor] = cos_sim,
) -> list[list[dict[str, int | float]]]:
    """For each query, its `top_k` corpus hits `{"corpus_id", "score"}`, best first (kosim's exact chunked search)."""
    from kosim.search import topk_search

    scores, index = topk_search(
        query_embeddings, corpus_embeddings, top_k, _score_name(score_function), corpus_chunk_size, query_chunk_size
    )
    return [
        [{"corpus_id": i, "score": s} for i, s in zip(row_index, row_scores)]
        for row_index, row_scores in zip(index.cpu().tolist(), scores.cpu().tolist())
    ]


def paraphrase_mining_embeddings(
    embeddings: Any,
    query_chunk_size: int = 5000,
    corpus_chunk_size: int = 100_000,
    max_pairs: int = 500_000,
    top_k: int = 100,
    score_function: Callable[[Tensor, Tensor], Tensor] = cos_sim,
) -> list[list[float | int]]:
    """The most similar pairs `[score, i, j]` (i < j), best first (kosim's `mine_paraphrases`, cosine only)."""
    from kosim.evaluation.paraphrase import mine_paraphrases

    if _score_name(score_function) != "cos":
        raise ValueError("paraphrase mining in kosim.st scores by cosine only (score_function=util.cos_sim)")
    pairs = mine_paraphrases(to_tensor(embeddings), top_k, max_pairs, query_chunk_size, corpus_chunk_size)
    return [[score, i, j] for score, i, j in pairs]


def paraphrase_mining(
    model: Any,
    sentences: Sequence[str],
    show_progress_bar: bool = False,
    batch_size: int = 32,
    query_chunk_size: int = 5000,
    corpus_chunk_size: int = 100_000,
    max_pairs: int = 500_000,
    top_k: int = 100,
    score_function: Callable[[Tensor, Tensor], Tensor] = cos_sim,
    truncate_dim: int | None = None,
    prompt_name: str | None = None,
    prompt: str | None = None,
) -> list[list[float | int]]:
    """Encode `sentences` with `model` and mine their most similar pairs `[score, i, j]`, best first."""
    kwargs: dict[str, Any] = {"batch_size": batch_size, "show_progress_bar": show_progress_bar}
    kwargs |= {"convert_to_tensor": True, "prompt_name": prompt_name, "prompt": prompt}
    if truncate_dim is not None:
        kwargs["truncate_dim"] = truncate_dim
    embeddings = model.encode(list(sentences), **kwargs)
    return paraphrase_mining_embeddings(
        embeddings, query_chunk_size, corpus_chunk_size, max_pairs, top_k, score_function
    )


def community_detection(
    embeddings: Any,
    threshold: float = 0.75,
    min_community_size: int = 10,
    batch_size: int = 1024,
    show_progress_bar: bool = False,
) -> list[list[int]]:
    """Groups of rows whose cosine similarity to a centre row is at least `threshold`, largest first.

    Every row with at least `min_community_size` rows (itself included) at cosine >= `threshold` proposes the
    community of those rows, most similar first. Proposals are taken largest first, each keeping only rows no
    earlier community took (skipped when its centre was taken or fewer than `min_community_size` rows remain);
    each community lists its centre first. Scores are computed `batch_size` rows at a time: `[batch, n]`.
    """
    if show_progress_bar:
        raise TypeError("community_detection(show_progress_bar=True) is not supported by kosim.st")
    x = to_tensor(embeddings) if len(embeddings) else None
    if x is None or x.shape[0] < min_community_size:
        return []
    x = torch.nn.functional.normalize(x.float(), p=2, dim=1)
    proposals: list[tuple[int, np.ndarray]] = []
    for start in range(0, x.shape[0], batch_size):
        scores = x[start : start + batch_size] @ x.T  # [batch, n]
        counts = (scores >= threshold).sum(dim=1)  # [batch]
        for row in torch.nonzero(counts >= min_community_size).flatten().tolist():
            order = torch.argsort(scores[row], descending=True, stable=True)[: int(counts[row])]
            proposals.append((start + row, order.cpu().numpy()))
    proposals.sort(key=lambda p: len(p[1]), reverse=True)
    used = np.zeros(x.shape[0], dtype=bool)
    communities: list[list[int]] = []
    for centre, members in proposals:
        if used[centre]:
            continue
        free = members[~used[members]]
        if len(free) >= min_community_size:
            community = [centre] + free[free != centre].tolist()
            communities.append(community)
            used[community] = True
    return sorted(communities, key=len, reverse=True)


def quantize_embeddings(
    embeddings: Any,
    precision: str,
    ranges: np.ndarray | None = None,
    calibration_embeddings: np.ndarray | None = None,
) -> np.ndarray:
    """sentence-transformers' `quantize_embeddings`: kosim's `kosim.quantization.quantize_embeddings`."""
    try:
        from kosim.quantization import quantize_embeddings as core_quantize
    except ImportError as exc:
        raise ValueError("quantize_embeddings needs kosim.quantization (not in this kosim version)") from exc
    return core_quantize(embeddings, precision, ranges=ranges, calibration_embeddings=calibration_embeddings)


# sentence-transformers' mine_hard_negatives options kosim's mining has no equivalent for: name -> the unused value
_MINING_UNSUPPORTED = {"faiss_batch_size": 16384, "output_path": None}


def mine_hard_negatives(dataset: Any, model: Any, **kwargs: Any) -> Any:
    """sentence-transformers' `mine_hard_negatives` on kosim's mining (exact search, same options).

    `dataset` is a `datasets.Dataset` (the result is one too), a `{column: texts}` dict or a kosim ColumnDataset
    (the result is a `{column: values}` dict). `corpus_chunk_size`/`query_chunk_size` keep kosim's meaning;
    `use_multi_process` (True, or a list of devices) encodes with a `kosim.encode_pool.EncodePool`.
    """
    from kosim.mining import mine_hard_negatives as core_mine
    from kosim.st.data import is_hf_dataset

    for name, unused in _MINING_UNSUPPORTED.items():
        if name in kwargs and kwargs.pop(name) != unused:
            raise TypeError(f"mine_hard_negatives: {name} is not supported by kosim.st")
    use_multi_process = kwargs.pop("use_multi_process", False)  # True: default devices; a list: these devices
    hf = is_hf_dataset(dataset)
    columns = {name: list(dataset[name]) for name in dataset.column_names} if hf else dataset
    if use_multi_process:
        from kosim.encode_pool import EncodePool

        devices = None if isinstance(use_multi_process, bool) else list(use_multi_process)
        with EncodePool(model, devices) as pool:
            mined = core_mine(columns, model, pool=pool, **kwargs)
    else:
        mined = core_mine(columns, model, **kwargs)
    if not hf:
        return mined
    return type(dataset).from_dict(mined)
