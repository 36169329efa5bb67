"""Keep memory freed by one CPU training step or encode batch for the next, instead of handing it back to the kernel.

glibc's malloc serves every block over its mmap threshold (at most 32 MiB) with a fresh `mmap` and returns it
with `munmap` when freed, so each such block is faulted in again, page by page and zero-filled by the kernel,
every time it is allocated. A training step allocates and frees the same large activations every step (MiniLM at
64 KorNLI triplets: the `[tokens, 1536]` feed-forward states, ~57 MB each, several per layer): 400k-650k page
faults and 0.9-1.4 s of kernel time per step, ~10% of the step's CPU time on a 2-core Intel host, spread over
whichever ops first touch the memory (matmul outputs, GELU, the attention layouts). With mmap off for large
blocks and the heap not trimmed, the second step on allocates from memory it already holds: the faults go to
~0 and peak RSS grows by ~5% (the heap's fragmentation).

Encoding on CPU has the same pattern (each batch allocates and frees its `[tokens, 1536]` states, the int8 path
also its quantized copies): 300k page faults per 3,000 KorSTS sentences with MiniLM at batch 32, 4M at batch
128 (7 s of kernel time), and 5-10% of the encode time. This is a setting of the process's allocator (like
`torch.set_num_threads`), made once when a CPU training run is set up or a model first encodes on CPU; it changes
no number a step or an encode computes. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import platform

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4
_TOP_PAD = 64 << 20  # grow the heap in steps of at least 64 MiB (fewer brk calls)
_INT_MAX = 2**31 - 1  # mallopt takes an int: free heap top beyond 2 GiB is still trimmed


@functools.cache
def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse (no mmap per large block, no trimming of the heap).

    Returns True where the settings were applied (Linux with glibc), False elsewhere. Idempotent. Memory the
    process frees stays mapped (and counted in its RSS) until it exits; large blocks come from the heap, which
    glibc still extends with mmap when `brk` cannot grow.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    settings = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _INT_MAX), (_M_TOP_PAD, _TOP_PAD))
    return all(mallopt(param, value) == 1 for param, value in settings)


__all__ = ["keep_freed_memory"]
