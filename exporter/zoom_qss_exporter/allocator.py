"""glibc malloc settings for a long-running process that frees large buffers often.

Every scrape renders (and gzips) megabytes in a worker thread and frees them a moment later.
With glibc's defaults that memory stays in the process: RSS rises and swings under meeting
churn although the live data does not grow (docs/performance.md, "Churn")."""

from __future__ import annotations

import ctypes

_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def tune_glibc_malloc() -> None:
    """Fix the mmap threshold at its 128 KiB default and allow two arenas.

    glibc raises the threshold (up to 32 MiB) each time a large mmap-ed block is freed, so
    after the first scrape the render buffers come from the heap, where freed space is kept
    and fragmented; a fixed threshold keeps them mmap-ed, and freeing one gives it back to the
    system. Each thread that allocates would also get an arena of its own, kept and fragmented
    in turn; two are plenty for a process whose threads hold the GIL to allocate. Nothing
    happens where the C library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
    libc.mallopt(_M_ARENA_MAX, 2)
