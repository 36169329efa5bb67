"""keep_freed_memory: a large block freed by one step is reused by the next without page faults (glibc)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# Five "steps", each allocating and freeing the same activations (over glibc's largest mmap threshold, 32 MiB, and
# under it); print the page faults of the last one. The heap settles after a few steps (a freed block is a few
# bytes short of an aligned request of its own size until it merges with its neighbours).
_PROBE = """
import resource, sys, torch
from kosim.utils.memory import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else None
if sys.argv[1] == "encode":  # a CPU encode applies it
    from kosim.model import SentenceEncoder
    SentenceEncoder.load(sys.argv[2], device="cpu").encode(["한국어 문장입니다.", "짧다"])
    applied = keep_freed_memory.cache_info().hits + keep_freed_memory.cache_info().misses > 0
for step in range(5):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    activations = [torch.ones(n << 20) for n in (14, 14, 4, 14, 1, 14)]  # float32: 56 MB, 16 MB, 4 MB
    del activations
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _last_step_faults(mode: str, *args: str) -> tuple[str, int]:
    cmd = [sys.executable, "-c", _PROBE, mode, *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    applied, faults = out.split()
    return applied, int(faults)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc malloc setting")
def test_a_freed_large_block_is_reused_without_page_faults():
    applied, kept = _last_step_faults("keep")
    _, default = _last_step_faults("default")
    pages = (61 << 22) // 4096  # of one step
    assert applied == "True"
    assert default > pages // 2  # glibc's default: a fresh mmap, every page faulted in again
    assert kept < pages // 20


def test_is_idempotent_and_says_whether_it_applied():
    from kosim.utils.memory import keep_freed_memory

    expected = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert keep_freed_memory() is expected
    assert keep_freed_memory() is expected


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc malloc setting")
def test_a_cpu_encode_applies_it(bert_dir):
    applied, faults = _last_step_faults("encode", str(bert_dir))
    assert applied == "True"
    assert faults < (61 << 22) // 4096 // 20
