"""SoftmaxLoss: the original SBERT recipe, a linear classifier over ``(u, v, |u - v|)`` trained with cross-entropy.

Unlike every other kosim loss this one has parameters of its own (the classifier head). The trainer must put them
in the optimizer next to the encoder's (sentence-transformers does so too) and move them to the training device.
sentence-transformers never saves the head; kosim can (:meth:`SoftmaxLoss.save_head` /
:meth:`SoftmaxLoss.load_head`, one safetensors file), so a run that resumes or continues NLI training keeps it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from kosim.losses.checks import check_columns, check_labels
from kosim.losses.citations import SBERT

__all__ = ["HEAD_FILE", "SoftmaxLoss"]

HEAD_FILE = "softmax_loss_head.safetensors"


def _check_positive_int(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive int, got {value!r}")
    return value


class SoftmaxLoss(nn.Module):
    """Cross-entropy of ``classifier(concat(features))`` for two columns ``u``, ``v`` and integer class labels.

    The features are, in this order and as the flags select: ``u`` and ``v``, ``|u - v|``, ``u * v``; the head is
    ``nn.Linear(n_features * embedding_dimension, num_labels)`` (initialised from torch's global RNG when the loss is
    built, as in sentence-transformers). With the same head weights it equals sentence-transformers' ``SoftmaxLoss``.

    Labels arrive from the collator as floats; with the default cross-entropy they must be whole numbers in
    ``[0, num_labels)`` (KorNLI's entailment / neutral / contradiction as 0 / 1 / 2), else a ValueError names the
    first bad one.

    Args:
        embedding_dimension: the sentence embedding width (``model.get_sentence_embedding_dimension()``).
        num_labels: number of classes.
        concatenation_sent_rep: include ``u`` and ``v``.
        concatenation_sent_difference: include ``|u - v|``.
        concatenation_sent_multiplication: include ``u * v``.
        loss_fct: loss of ``(logits [batch, num_labels], labels)``; ``nn.CrossEntropyLoss()`` when None. Another
            loss gets the float labels (``[batch]``; with ``num_labels=1`` the logits as ``[batch]`` too).
    """

    citation = SBERT

    def __init__(
        self,
        embedding_dimension: int,
        num_labels: int,
        concatenation_sent_rep: bool = True,
        concatenation_sent_difference: bool = True,
        concatenation_sent_multiplication: bool = False,
        loss_fct: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.embedding_dimension = _check_positive_int(embedding_dimension, "embedding_dimension")
        self.num_labels = _check_positive_int(num_labels, "num_labels")
        self.concatenation_sent_rep = bool(concatenation_sent_rep)
        self.concatenation_sent_difference = bool(concatenation_sent_difference)
        self.concatenation_sent_multiplication = bool(concatenation_sent_multiplication)
        n_vectors = 2 * self.concatenation_sent_rep + self.concatenation_sent_difference
        n_vectors += self.concatenation_sent_multiplication
        if n_vectors == 0:
            raise ValueError(
                "SoftmaxLoss needs at least one of concatenation_sent_rep, concatenation_sent_difference or "
                "concatenation_sent_multiplication"
            )
        self.classifier = nn.Linear(n_vectors * self.embedding_dimension, self.num_labels)
        self.loss_fct = loss_fct if loss_fct is not None else nn.CrossEntropyLoss()

    def features(self, u: Tensor, v: Tensor) -> Tensor:
        """The classifier input ``[batch, n_vectors * dim]`` for two ``[batch, dim]`` columns."""
        parts = []
        if self.concatenation_sent_rep:
            parts += [u, v]
        if self.concatenation_sent_difference:
            parts.append(torch.abs(u - v))
        if self.concatenation_sent_multiplication:
            parts.append(u * v)
        return torch.cat(parts, dim=1).to(self.classifier.weight.dtype)

    def logits(self, embeddings: list[Tensor]) -> Tensor:
        """Class scores ``[batch, num_labels]`` for two columns of ``[batch, dim]`` embeddings."""
        u, v = check_columns(embeddings, type(self).__name__, min_columns=2, max_columns=2)
        if u.shape[1] != self.embedding_dimension:
            raise ValueError(
                f"SoftmaxLoss was built for embedding_dimension={self.embedding_dimension}, got embeddings of "
                f"width {u.shape[1]}"
            )
        return self.classifier(self.features(u, v))

    def _class_labels(self, labels: Tensor | None, batch: int, device: torch.device) -> Tensor:
        labels = check_labels(labels, batch, type(self).__name__).to(device)
        if not isinstance(self.loss_fct, nn.CrossEntropyLoss):
            return labels
        bad = (labels != labels.round()) | (labels < 0) | (labels >= self.num_labels)
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            raise ValueError(
                f"SoftmaxLoss: label at index {i} is {labels[i].item()}, not a class id in [0, {self.num_labels})"
            )
        return labels.long()

    def forward(
        self,
        embeddings: list[Tensor],
        labels: Tensor | None = None,
        text_ids: list[Tensor] | None = None,
    ) -> Tensor:
        """Scalar loss from two ``[batch, dim]`` columns and ``[batch]`` class labels; ``text_ids`` is ignored."""
        logits = self.logits(embeddings)  # [batch, num_labels]
        targets = self._class_labels(labels, logits.shape[0], logits.device)
        if self.num_labels == 1 and not isinstance(self.loss_fct, nn.CrossEntropyLoss):
            # One output regressed onto [batch] labels: sentence-transformers compares [batch, 1] with [batch],
            # which broadcasts to [batch, batch]; kosim compares [batch] with [batch].
            logits = logits.view(-1)
        return self.loss_fct(logits, targets)

    def config(self) -> dict[str, Any]:
        """Parameters for the model card (sentence-transformers' keys)."""
        return {
            "num_labels": self.num_labels,
            "concatenation_sent_rep": self.concatenation_sent_rep,
            "concatenation_sent_difference": self.concatenation_sent_difference,
            "concatenation_sent_multiplication": self.concatenation_sent_multiplication,
        }

    # ------------------------------------------------------------------------------------------- the saved head
    def save_head(self, directory: str | Path) -> Path:
        """Write the classifier head to ``directory/softmax_loss_head.safetensors`` (its settings in the metadata)."""
        from safetensors.torch import save_file

        path = Path(directory) / HEAD_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {name: t.detach().cpu().contiguous() for name, t in self.classifier.state_dict().items()}
        meta = {"embedding_dimension": self.embedding_dimension, **self.config()}
        save_file(tensors, str(path), metadata={"kosim_softmax_loss": json.dumps(meta)})
        return path

    def load_head(self, directory: str | Path) -> None:
        """Load a head written by :meth:`save_head`; a head built with other settings raises a ValueError."""
        from safetensors import safe_open
        from safetensors.torch import load_file

        path = Path(directory) / HEAD_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no SoftmaxLoss head at {path}")
        with safe_open(str(path), framework="pt") as f:
            saved = json.loads((f.metadata() or {}).get("kosim_softmax_loss", "{}"))
        ours = {"embedding_dimension": self.embedding_dimension, **self.config()}
        diff = sorted(k for k in ours if saved.get(k) != ours[k])
        if diff:
            raise ValueError(f"{path}: the saved head was built with other settings ({diff}): {saved} vs {ours}")
        self.classifier.load_state_dict(load_file(str(path)))

    def card_note(self) -> str:
        """One sentence for the model card: where the head is and that sentence-transformers does not load it."""
        return (
            f"The SoftmaxLoss classifier head ({self.classifier.in_features} -> {self.num_labels}) is saved in "
            f"`{HEAD_FILE}`; it is only used in training: sentence-transformers neither saves nor loads it, and "
            "the sentence embeddings do not depend on it."
        )
