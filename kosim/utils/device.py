"""Device choice: an explicit device string is checked early; otherwise CUDA (this process's local rank) or CPU."""

from __future__ import annotations

import torch

from kosim.utils.ranks import local_rank


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The torch device to run on; a bad string (``"cpux"``) or an absent CUDA device is a ValueError naming it."""
    if device is None or device == "":
        return torch.device("cuda", local_rank()) if torch.cuda.is_available() else torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"invalid device {device!r}: expected e.g. 'cpu', 'cuda' or 'cuda:0'") from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: CUDA is not available on this machine")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif resolved.type not in ("cpu", "mps", "xpu", "meta"):
        raise ValueError(f"device {device!r} is not supported: use 'cpu' or 'cuda[:N]'")
    return resolved
