"""glibc malloc settings and trimming for a long-running process that frees large buffers often.

Every scrape renders (and gzips) megabytes in a worker thread and frees them a moment later.
With glibc's defaults that memory stays in the process: RSS rises and swings under meeting
churn although the live data does not grow (docs/performance.md, "Churn"). Nothing here does
anything where the C library is not glibc."""

from __future__ import annotations

import ctypes

_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") else None


_LIBC = _glibc()


def tune_glibc_malloc() -> None:
    """Fix the mmap threshold at its 128 KiB default and allow two arenas.

    glibc raises the threshold (up to 32 MiB) each time a large mmap-ed block is freed, so
    after the first scrape the render buffers come from the heap, where freed space is kept
    and fragmented; a fixed threshold keeps them mmap-ed, and freeing one gives it back to the
    system. Each thread that allocates would also get an arena of its own, kept and fragmented
    in turn; two are plenty for a process whose threads hold the GIL to allocate."""
    if _LIBC is not None:
        _LIBC.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
        _LIBC.mallopt(_M_ARENA_MAX, 2)


def release_free_memory() -> None:
    """Give the free pages of every malloc arena back to the system (``malloc_trim``).

    The scrape's worker thread allocates its blocks below the mmap threshold (a family's lines,
    zlib's buffers, gzip output) from an arena of its own. A body's blocks are freed a scrape
    later, in another order and other sizes than the next body's, so the arena's free space
    grows in holes that glibc only trims at its top: about 2 MiB a scrape in the soak, until
    this runs before each render. ctypes releases the GIL for the call."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
