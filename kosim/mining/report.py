"""The mining summary on stderr: the score distributions, what each filter removed, and who got too few negatives."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from torch import Tensor

from kosim.mining.pairs import MiningPairs

__all__ = ["log_summary"]

_REASONS = {
    "positive": "were a positive of their anchor",
    "absolute_margin": "scored within absolute_margin={absolute_margin} of the anchor's hardest positive",
    "relative_margin": "scored within relative_margin={relative_margin} x |positive| of the anchor's hardest positive",
    "max_score": "scored above max_score={max_score}",
    "min_score": "scored below min_score={min_score}",
}


def _stats(values: np.ndarray) -> str:
    if values.size == 0:
        return "none"
    q25, q50, q75 = np.quantile(values, [0.25, 0.5, 0.75])
    return (
        f"n={values.size:,} mean={values.mean():.4f} std={values.std(ddof=1) if values.size > 1 else 0.0:.4f} "
        f"min={values.min():.4f} 25%={q25:.4f} 50%={q50:.4f} 75%={q75:.4f} max={values.max():.4f}"
    )


def log_summary(
    log: Callable[[str], None],
    counts: dict[str, int],
    options: dict,
    pair_scores: np.ndarray,
    used_negative_scores: np.ndarray,
    neg_scores: Tensor,
    pairs: MiningPairs,
    num_negatives: int,
    output_format: str,
) -> None:
    """Log the summary lines; ``counts`` are candidates removed per reason (see ``filter_candidates``)."""
    log(f"mining: positive scores: {_stats(pair_scores)}")
    log(f"mining: negative scores: {_stats(used_negative_scores.astype(np.float64))}")
    total = max(counts["candidates"], 1)
    log(f"mining: {counts['candidates']:,} candidates retrieved")
    for reason, text in _REASONS.items():
        if counts.get(reason):
            why = text.format(**options)
            log(f"mining: removed {counts[reason]:,} candidates ({counts[reason] / total:.2%}) that {why}")
    found = np.isfinite(neg_scores.numpy()).sum(1)  # [queries]
    short = int((found < num_negatives).sum())
    if short:
        hints = ["range_max"] + [
            name
            for name in ("range_min", "absolute_margin", "relative_margin", "max_score", "min_score")
            if options.get(name)
        ]
        dropped = " (their pairs are left out of the n-tuples)" if output_format == "n-tuple" else ""
        log(
            f"mining: {short:,} of {len(pairs.queries):,} anchors got fewer than {num_negatives} negatives{dropped}; "
            f"to find more, adjust {', '.join(hints)}"
        )
        if counts.get("margin_emptied"):
            deeper = "; a larger range_max reaches those below it" if options["range_max"] < len(pairs.corpus) else ""
            log(
                f"mining: for {counts['margin_emptied']:,} anchors every candidate up to range_max="
                f"{options['range_max']} scored within the margin of the positive (the model ranks them above it)"
                f"{deeper}"
            )
