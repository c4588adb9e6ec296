"""glibc allocator thresholds for tensor workloads, applied in every process that evaluates.

glibc serves allocations above its mmap threshold with a fresh ``mmap`` and returns them with ``munmap`` on free,
so every large activation tensor is faulted in page by page afresh. Its default threshold starts at 128 KiB and only
rises as mmapped chunks are freed, and an environment setting such as dask's ``MALLOC_TRIM_THRESHOLD_=65536``
freezes it at 128 KiB: page faults then made a process 2–2.5× slower (``benchmarks/scaleout.py``) and put up to
46 % of CPU time in the kernel (``benchmarks/workload_224.py``). :func:`restore_malloc_thresholds` sets the mmap
and trim thresholds to the values the dynamic default settles at (32 MiB, glibc's maximum, and 64 MiB) once per
process; the engine calls it when it starts computing and dask workers at start-up. The process keeps up to 64 MiB
of freed memory for reuse; nothing changes where the C library is not glibc. ``ROBUSTVIZ_MALLOC=default`` opts out.
"""

from __future__ import annotations

import ctypes
import os
import sys

#: glibc ``mallopt`` parameters and the values its dynamic thresholds settle at on 64-bit Linux.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD, TRIM_THRESHOLD = 32 * 1024 * 1024, 64 * 1024 * 1024
_applied: bool | None = None


def restore_malloc_thresholds(force: bool = False) -> bool:
    """Set glibc's mmap and trim thresholds to 32 and 64 MiB in this process (once; ``force`` sets them again, e.g.
    after something reset them); returns False, changing nothing, where the C library is not glibc or
    ``ROBUSTVIZ_MALLOC=default`` is set."""
    global _applied
    if _applied is not None and not force:
        return _applied
    _applied = False
    if not sys.platform.startswith("linux") or os.environ.get("ROBUSTVIZ_MALLOC", "") == "default":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        _applied = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    except (OSError, AttributeError):
        _applied = False
    return _applied


__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "restore_malloc_thresholds"]
