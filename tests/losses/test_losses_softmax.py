"""SoftmaxLoss: the label checks, the saved head and the argument checks (parity with sentence-transformers is in
test_losses_encoder_grads.py)."""

from __future__ import annotations

import pytest
import torch

from kosim.losses.softmax import HEAD_FILE, SoftmaxLoss

B, D = 6, 8


def columns(seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, D, generator=g) for _ in range(2)]


def test_value_is_cross_entropy_of_the_head():
    torch.manual_seed(0)
    loss = SoftmaxLoss(D, 3, concatenation_sent_multiplication=True)
    u, v = columns(1)
    labels = torch.tensor([0.0, 1, 2, 2, 1, 0])
    logits = loss.classifier(torch.cat([u, v, (u - v).abs(), u * v], dim=1))
    expected = torch.nn.functional.cross_entropy(logits, labels.long())
    torch.testing.assert_close(loss([u, v], labels), expected)
    assert loss.classifier.in_features == 4 * D


@pytest.mark.parametrize(("bad", "index"), [(0.5, 2), (3.0, 4), (-1.0, 0)])
def test_labels_must_be_class_ids(bad, index):
    labels = torch.tensor([0.0, 1, 2, 2, 1, 0])
    labels[index] = bad
    with pytest.raises(ValueError, match=f"label at index {index} is"):
        SoftmaxLoss(D, 3)(columns(2), labels)


def test_width_and_flags_are_checked():
    with pytest.raises(ValueError, match="embedding_dimension=4"):
        SoftmaxLoss(4, 3)(columns(3), torch.zeros(B))
    with pytest.raises(ValueError, match="at least one"):
        SoftmaxLoss(D, 3, concatenation_sent_rep=False, concatenation_sent_difference=False)
    with pytest.raises(ValueError, match="num_labels"):
        SoftmaxLoss(D, 0)


def test_other_loss_fct_gets_float_labels():
    loss = SoftmaxLoss(D, 1, loss_fct=torch.nn.MSELoss())
    u, v = columns(4)
    labels = torch.linspace(0, 1, B)
    expected = torch.nn.functional.mse_loss(loss.classifier(torch.cat([u, v, (u - v).abs()], 1)).view(-1), labels)
    torch.testing.assert_close(loss([u, v], labels.unsqueeze(1)), expected)


def test_head_round_trips(tmp_path):
    torch.manual_seed(1)
    saved = SoftmaxLoss(D, 3)
    path = saved.save_head(tmp_path)
    assert path.name == HEAD_FILE
    torch.manual_seed(2)
    loaded = SoftmaxLoss(D, 3)
    assert not torch.equal(loaded.classifier.weight, saved.classifier.weight)
    loaded.load_head(tmp_path)
    for name in ("weight", "bias"):
        assert torch.equal(getattr(loaded.classifier, name), getattr(saved.classifier, name))
    labels = torch.tensor([0.0, 1, 2, 2, 1, 0])
    torch.testing.assert_close(loaded(columns(5), labels), saved(columns(5), labels))
    assert HEAD_FILE in saved.card_note()


def test_head_with_other_settings_is_refused(tmp_path):
    SoftmaxLoss(D, 3).save_head(tmp_path)
    with pytest.raises(ValueError, match="num_labels"):
        SoftmaxLoss(D, 2).load_head(tmp_path)
    with pytest.raises(FileNotFoundError):
        SoftmaxLoss(D, 3).load_head(tmp_path / "missing")
