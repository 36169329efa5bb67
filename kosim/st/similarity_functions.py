"""sentence-transformers' `SimilarityFunction` names, as a str enum kosim's similarity functions accept."""

from __future__ import annotations

from enum import Enum

__all__ = ["SimilarityFunction"]


class SimilarityFunction(str, Enum):
    """`model.similarity_fn_name` values; `DOT` and `DOT_PRODUCT` are the same function."""

    COSINE = "cosine"
    DOT_PRODUCT = "dot"
    DOT = "dot"
    EUCLIDEAN = "euclidean"
    MANHATTAN = "manhattan"

    @staticmethod
    def possible_values() -> list[str]:
        return [member.value for member in SimilarityFunction]
