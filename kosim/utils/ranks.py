"""Which process this is under torchrun, read from the launcher's environment (before torch.distributed starts)."""

from __future__ import annotations

import os


def process_rank() -> int:
    """The global rank torchrun gave this process (0 when not launched by torchrun)."""
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    """The rank on this machine (selects the CUDA device); 0 when not launched by torchrun."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    """True in the process that writes files and prints results (rank 0)."""
    return process_rank() == 0
