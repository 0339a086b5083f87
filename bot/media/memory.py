"""Process memory: glibc's allocator tuned for many reader threads handling large packets.

Measured on the farm (20 cameras at 1080p25 ~4 Mbit/s, 10 viewers, one process): RSS grew
by ~140 MB over the demux floor, nearly all of it glibc heap that was freed but not returned:

- every reader thread got its own malloc arena (up to 8 per core), each keeping its own
  free lists of packets that sister threads would never reuse;
- keyframes (100-350 kB) are above the default mmap threshold at first, but freeing an
  mmapped block raises glibc's dynamic threshold (up to 32 MB), after which every keyframe
  and GOP fragment is carved from the arenas and fragments them.

Two arenas and a fixed 64 kB mmap threshold (a large block is mapped, and unmapped the
moment it is freed) took the same run from 200 MB to 105 MB (bench/media/bench_live.py
prints the figure).

What stays is fragmentation: the GOP caches free a whole GOP of 10-40 kB frames at each
keyframe while the next GOP is being allocated around the holes, so the heap keeps pages
that are free but lie between live blocks (glibc only gives back the top of an arena by
itself). ``trim_malloc`` (``malloc_trim(0)``, every 30 s from the scheduler) hands those
pages back with MADV_DONTNEED: ~8-12 MB on the farm run, for ~2 ms of CPU each time
(bench/media/bench_memory.py prints the breakdown). Anything other than glibc on Linux is
left as it is.
"""

from __future__ import annotations

import ctypes
import logging
import sys

logger = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD = 64 * 1024


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        # glibc's soname, loaded as is: ctypes.util.find_library would run a compiler and
        # write a temporary file to find it
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - both must exist: glibc, not musl
    except (OSError, AttributeError):  # musl or another libc: nothing to tune
        logger.debug("no glibc mallopt: allocator left as it is")
        return None
    return libc


def tune_malloc() -> bool:
    """Apply the settings above to this process (before the reader threads start); True if applied."""
    libc = _glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, ARENAS)) and bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def trim_malloc() -> bool:
    """Give the free pages inside the heap back to the system (glibc); True if any were."""
    libc = _glibc()
    if libc is None:
        return False
    trim = libc.malloc_trim
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return bool(trim(0))
