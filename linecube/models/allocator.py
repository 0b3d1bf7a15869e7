"""Keep freed memory in the process for reuse: removes page faults from large CPU tensors.

A recurrent network allocates and frees large activation tensors at every step. glibc serves
requests above its mmap threshold (at most 32 MiB) with fresh ``mmap`` pages and returns them on
free, so every step pays page faults to zero and map the same memory again; on CPUs this can
cost more than the convolutions. :func:`retain_freed_memory` tells glibc to serve every request
from its heap and never to trim it, so freed blocks are reused. The process's resident memory
then stays at its peak instead of shrinking between steps.

The same effect for a whole program: ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["retain_freed_memory"]

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def retain_freed_memory() -> bool:
    """Configure glibc malloc to reuse freed memory (no mmap, no trimming).

    Returns:
        True when applied; False where the C library is not glibc (macOS, Windows, musl),
        whose allocators do not need it or cannot be configured this way.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
