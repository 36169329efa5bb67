"""Hard-negative mining: (anchor, positive) pairs -> triplets / n-tuples / labeled pairs or lists, with scores.

from kosim.mining import mine_hard_negatives, write_mined
mined = mine_hard_negatives(pairs, model, relative_margin=0.05, num_negatives=5, cache_dir="cache/mining")
write_mined(mined, "train-hard.tsv")  # kosim train: format = "tsv", columns = ["anchor", "positive", "negative"]
"""

from __future__ import annotations

from kosim.mining.mine import mine_hard_negatives
from kosim.mining.output import OUTPUT_FORMATS, to_column_dataset, write_mined

__all__ = ["OUTPUT_FORMATS", "mine_hard_negatives", "to_column_dataset", "write_mined"]
