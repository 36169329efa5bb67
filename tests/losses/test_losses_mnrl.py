"""MultipleNegativesRankingLoss against sentence-transformers 6.2 and against a loop-based masking reference."""

from __future__ import annotations

import math

import pytest
import torch
from sentence_transformers import util as st_util
from sentence_transformers.sentence_transformer import losses as st_losses

from kosim.losses import MultipleNegativesRankingLoss, false_negative_mask

B, D = 8, 16
ST_SIMILARITY = {
    "cosine": st_util.cos_sim,
    "dot": st_util.dot_score,
    "euclidean": st_util.euclidean_sim,
    "manhattan": st_util.manhattan_sim,
}


def random_columns(n_columns: int, seed: int, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(B, D, generator=generator, dtype=dtype) for _ in range(n_columns)]


def value_and_grads(loss_fn, columns, **kwargs) -> tuple[torch.Tensor, list[torch.Tensor]]:
    leaves = [c.clone().requires_grad_() for c in columns]
    loss = loss_fn(leaves, **kwargs)
    loss.backward()
    return loss.detach(), [leaf.grad for leaf in leaves]


def assert_matches(ours, theirs, tol: float) -> None:
    (ours_value, ours_grads), (st_value, st_grads) = ours, theirs
    torch.testing.assert_close(ours_value, st_value, rtol=tol, atol=tol)
    for ours_grad, st_grad in zip(ours_grads, st_grads):
        torch.testing.assert_close(ours_grad, st_grad, rtol=tol, atol=tol)


@pytest.mark.parametrize("n_negatives", [0, 1, 3])
@pytest.mark.parametrize(
    ("dtype", "tol"),
    [(torch.float32, 1e-6), (torch.float64, 1e-12)],
)
def test_default_matches_sentence_transformers(n_negatives: int, dtype: torch.dtype, tol: float) -> None:
    columns = random_columns(2 + n_negatives, seed=n_negatives, dtype=dtype)
    st_loss = st_losses.MultipleNegativesRankingLoss(torch.nn.Identity())
    ours = value_and_grads(MultipleNegativesRankingLoss(), columns)
    theirs = value_and_grads(lambda e: st_loss.compute_loss_from_embeddings(e, None), columns)
    assert_matches(ours, theirs, tol)


@pytest.mark.parametrize("similarity", ["cosine", "dot", "euclidean", "manhattan"])
def test_similarities_and_scale_match_sentence_transformers(similarity: str) -> None:
    columns = random_columns(3, seed=7)
    scale = 1.0 if similarity != "cosine" else 35.0
    st_loss = st_losses.MultipleNegativesRankingLoss(
        torch.nn.Identity(), scale=scale, similarity_fct=ST_SIMILARITY[similarity]
    )
    ours = value_and_grads(MultipleNegativesRankingLoss(scale=scale, similarity=similarity), columns)
    theirs = value_and_grads(lambda e: st_loss.compute_loss_from_embeddings(e, None), columns)
    assert_matches(ours, theirs, 1e-6)


@pytest.mark.parametrize("n_negatives", [0, 1, 3])
def test_symmetric_matches_symmetric_ranking_loss(n_negatives: int) -> None:
    columns = random_columns(2 + n_negatives, seed=10 + n_negatives)
    st_loss = st_losses.MultipleNegativesSymmetricRankingLoss(torch.nn.Identity())
    ours = value_and_grads(MultipleNegativesRankingLoss(symmetric=True), columns)
    theirs = value_and_grads(lambda e: st_loss.compute_loss_from_embeddings(e, None), columns)
    assert_matches(ours, theirs, 1e-6)
    # ...which is the same as the non-deprecated per-direction configuration of MNRL.
    st_general = st_losses.MultipleNegativesRankingLoss(
        torch.nn.Identity(), directions=("query_to_doc", "doc_to_query"), partition_mode="per_direction"
    )
    assert_matches(ours, value_and_grads(lambda e: st_general.compute_loss_from_embeddings(e, None), columns), 1e-6)


def test_hand_formula_pairs() -> None:
    anchors, positives = random_columns(2, seed=3, dtype=torch.float64)
    loss = MultipleNegativesRankingLoss(scale=20.0)([anchors, positives])
    logits = 20.0 * torch.nn.functional.normalize(anchors, dim=-1) @ torch.nn.functional.normalize(positives, dim=-1).T
    expected = torch.nn.functional.cross_entropy(logits, torch.arange(B))
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# False-negative masking
# ---------------------------------------------------------------------------------------------------------------


def loop_reference(columns, ids, scale: float, symmetric: bool) -> torch.Tensor:
    """Masked MNRL written with explicit loops over anchors and candidates (float64)."""

    def cos(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (x * y).sum() / (x.norm() * y.norm())

    anchors, candidates = columns[0], torch.cat(columns[1:])
    anchor_ids, candidate_ids = ids[0].tolist(), torch.cat(ids[1:]).tolist()
    positive_ids = ids[1].tolist()
    n = anchors.shape[0]
    forward_terms = []
    for i in range(n):
        kept = [
            scale * cos(anchors[i], candidates[j])
            for j in range(candidates.shape[0])
            if j == i or candidate_ids[j] != positive_ids[i]
        ]
        forward_terms.append(torch.logsumexp(torch.stack(kept), 0) - scale * cos(anchors[i], candidates[i]))
    forward = torch.stack(forward_terms).mean()
    if not symmetric:
        return forward
    backward_terms = []
    for i in range(n):
        kept = [scale * cos(anchors[j], candidates[i]) for j in range(n) if j == i or anchor_ids[j] != anchor_ids[i]]
        backward_terms.append(torch.logsumexp(torch.stack(kept), 0) - scale * cos(anchors[i], candidates[i]))
    return (forward + torch.stack(backward_terms).mean()) / 2


def duplicate_ids(n_columns: int, seed: int) -> list[torch.Tensor]:
    """Text ids drawn from a small pool so that many candidates repeat some anchor's positive."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 5, (B,), generator=generator) for _ in range(n_columns)]


@pytest.mark.parametrize("n_negatives", [0, 1, 3])
@pytest.mark.parametrize("symmetric", [False, True])
def test_masking_matches_loop_reference(n_negatives: int, symmetric: bool) -> None:
    columns = random_columns(2 + n_negatives, seed=20 + n_negatives, dtype=torch.float64)
    ids = duplicate_ids(2 + n_negatives, seed=n_negatives)
    loss_fn = MultipleNegativesRankingLoss(symmetric=symmetric, mask_false_negatives=True)
    ours = value_and_grads(loss_fn, columns, text_ids=ids)
    reference = value_and_grads(lambda e: loop_reference(e, ids, 20.0, symmetric), columns)
    assert_matches(ours, reference, 1e-10)
    # The duplicates really are masked: the unmasked loss differs.
    assert not math.isclose(ours[0].item(), MultipleNegativesRankingLoss(symmetric=symmetric)(columns).item())


def test_masking_with_distinct_ids_equals_sentence_transformers() -> None:
    columns = random_columns(3, seed=30)
    ids = [torch.arange(B) + column * B for column in range(3)]
    st_loss = st_losses.MultipleNegativesRankingLoss(torch.nn.Identity())
    ours = value_and_grads(MultipleNegativesRankingLoss(mask_false_negatives=True), columns, text_ids=ids)
    assert_matches(ours, value_and_grads(lambda e: st_loss.compute_loss_from_embeddings(e, None), columns), 1e-6)


def test_masking_off_ignores_text_ids() -> None:
    columns = random_columns(3, seed=31)
    ids = duplicate_ids(3, seed=1)
    st_loss = st_losses.MultipleNegativesRankingLoss(torch.nn.Identity())
    ours = value_and_grads(MultipleNegativesRankingLoss(), columns, text_ids=ids)
    assert_matches(ours, value_and_grads(lambda e: st_loss.compute_loss_from_embeddings(e, None), columns), 1e-6)


def test_positive_repeated_as_own_hard_negative_is_masked() -> None:
    """Rows whose mined "hard negative" is their own positive text: that candidate must leave the softmax."""
    anchors, positives, negatives = random_columns(3, seed=32, dtype=torch.float64)
    repeated = torch.arange(B) % 2 == 0
    negatives = torch.where(repeated.unsqueeze(1), positives, negatives)
    ids = [torch.arange(B), torch.arange(B) + B, torch.where(repeated, torch.arange(B) + B, torch.arange(B) + 2 * B)]
    masked = MultipleNegativesRankingLoss(mask_false_negatives=True)([anchors, positives, negatives], text_ids=ids)

    unit = torch.nn.functional.normalize
    logits = 20.0 * unit(anchors, dim=-1) @ unit(torch.cat([positives, negatives]), dim=-1).T
    rows = torch.arange(B)[repeated]
    logits[rows, B + rows] = -torch.inf
    expected = torch.nn.functional.cross_entropy(logits, torch.arange(B))
    torch.testing.assert_close(masked, expected, rtol=1e-12, atol=1e-12)


def test_false_negative_mask_for_a_cross_process_gather() -> None:
    """Local anchors of rank 1 against candidates gathered from 3 ranks: positives sit at offset rank * b."""
    b, world, rank = 4, 3, 1
    generator = torch.Generator().manual_seed(5)
    positive_ids = torch.randint(0, 6, (world * b,), generator=generator)
    negative_ids = torch.randint(0, 6, (world * b,), generator=generator)
    candidate_ids = torch.cat([positive_ids, negative_ids])
    local = slice(rank * b, (rank + 1) * b)
    positive_index = torch.arange(rank * b, (rank + 1) * b)
    mask = false_negative_mask(positive_ids[local], candidate_ids, positive_index)
    assert mask.shape == (b, 2 * world * b)
    for i in range(b):
        for j in range(candidate_ids.shape[0]):
            expected = j != rank * b + i and candidate_ids[j].item() == positive_ids[rank * b + i].item()
            assert mask[i, j].item() == expected
    assert mask.any()


def test_masking_needs_text_ids() -> None:
    with pytest.raises(ValueError, match="text_ids"):
        MultipleNegativesRankingLoss(mask_false_negatives=True)(random_columns(2, seed=0))


def test_masking_checks_text_id_shapes() -> None:
    columns = random_columns(2, seed=0)
    loss_fn = MultipleNegativesRankingLoss(mask_false_negatives=True)
    with pytest.raises(ValueError, match="2 embedding columns"):
        loss_fn(columns, text_ids=[torch.arange(B)])
    with pytest.raises(ValueError, match=r"text_ids\[1\]"):
        loss_fn(columns, text_ids=[torch.arange(B), torch.arange(B - 1)])
    with pytest.raises(TypeError, match=r"text_ids\[0\]"):
        loss_fn(columns, text_ids=[torch.zeros(B), torch.arange(B)])


# ---------------------------------------------------------------------------------------------------------------
# Validation and metadata
# ---------------------------------------------------------------------------------------------------------------


def test_needs_two_columns() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        MultipleNegativesRankingLoss()(random_columns(1, seed=0))


def test_mismatched_batch_names_the_column() -> None:
    columns = random_columns(3, seed=0)
    columns[2] = columns[2][:-1]
    with pytest.raises(ValueError, match="column 2 has batch size 7"):
        MultipleNegativesRankingLoss()(columns)


def test_bad_inputs() -> None:
    with pytest.raises(TypeError):
        MultipleNegativesRankingLoss()(torch.randn(B, D))
    with pytest.raises(ValueError, match=r"column 1 must have shape \[batch, dim\]"):
        MultipleNegativesRankingLoss()([torch.randn(B, D), torch.randn(B)])
    with pytest.raises(ValueError, match="scale"):
        MultipleNegativesRankingLoss(scale=0.0)
    with pytest.raises(ValueError, match="unknown similarity"):
        MultipleNegativesRankingLoss(similarity="jaccard")


def test_config_and_citation() -> None:
    assert MultipleNegativesRankingLoss().config() == {
        "scale": 20.0,
        "similarity_fct": "cos_sim",
        "symmetric": False,
        "mask_false_negatives": False,
    }
    assert MultipleNegativesRankingLoss(scale=1, similarity="dot_score").config()["similarity_fct"] == "dot_score"
    st_config = st_losses.MultipleNegativesRankingLoss(torch.nn.Identity()).get_config_dict()
    ours = MultipleNegativesRankingLoss().config()
    assert {k: st_config[k] for k in ("scale", "similarity_fct")} == {k: ours[k] for k in ("scale", "similarity_fct")}
    assert MultipleNegativesRankingLoss.citation.startswith("@")


def test_half_precision_embeddings_give_a_float32_loss() -> None:
    columns = [c.bfloat16() for c in random_columns(3, seed=40)]
    loss, grads = value_and_grads(MultipleNegativesRankingLoss(symmetric=True), columns)
    assert loss.dtype == torch.float32
    assert all(g.dtype == torch.bfloat16 and torch.isfinite(g).all() for g in grads)
    reference = MultipleNegativesRankingLoss(symmetric=True)([c.float() for c in columns])
    torch.testing.assert_close(loss, reference, rtol=2e-2, atol=2e-2)
