"""Keep freed activation memory in the process between training steps (glibc only).

A training step allocates and frees tens of MB of activations and gradients.
With glibc's defaults, large blocks go back to the OS when freed (munmap, heap
trimming) and the next step takes a page fault for every fresh 4 KiB page:
about 20,000 faults (~80 MB zeroed by the kernel) per step for the small
ResNet in bench/bench_train.py. Raising the mmap and trim thresholds lets
malloc reuse that memory instead, as jemalloc/tcmalloc would. The cost is
that up to ``TRIM`` bytes of freed memory stay mapped in the process.

Applied once when ``convcore.nn`` is imported; set ``CONVCORE_MALLOC_TUNE=0``
to leave malloc alone.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP = 32 << 20    # glibc's upper limit for the mmap threshold on 64-bit
TRIM = 512 << 20

applied = False


def tune() -> bool:
    global applied
    if applied or os.environ.get("CONVCORE_MALLOC_TUNE", "1") == "0":
        return applied
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to do
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM))
    return applied
