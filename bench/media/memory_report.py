"""Where a process's resident memory goes: /proc/self/smaps by kind of mapping, threads, tracemalloc.

Used by live_bot (the line ``mem`` on its stdin prints this as JSON) and bench_live. Kinds:

- ``libs``: file-backed mappings (code and data of Python, libav*, OpenSSL…), by library;
- ``heap``: glibc's main arena (``[heap]``, brk);
- ``anon``: anonymous mappings: the other malloc arenas (64 MB reserved each, resident as
  used), blocks above the mmap threshold (keyframes, fragments, decoded pictures), thread stacks,
  Python's obmalloc arenas (256 kB each);
- ``stack``: the main thread's stack.

``python`` is what tracemalloc sees (when tracing): the Python objects' share of heap + anon.
"""

from __future__ import annotations

import re
import threading
import tracemalloc
from collections import defaultdict
from pathlib import Path
from typing import Any

HEADER = re.compile(r"^([0-9a-f]+)-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$")
_ROOT = str(Path(__file__).resolve().parents[2]) + "/"
ARENA_ALIGN = 64 * 2**20  # glibc maps each extra malloc arena on a 64 MB boundary


def smaps_breakdown(pid: int | str = "self") -> dict[str, Any]:
    """Resident kB per kind of mapping (and the largest libraries), from /proc/PID/smaps."""
    kinds: dict[str, int] = defaultdict(int)
    libs: dict[str, int] = defaultdict(int)
    anon_sizes: list[tuple[int, int, bool]] = []  # (resident kB, size kB, arena) of each anonymous mapping
    name, size, start = "", 0, 0
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        m = HEADER.match(line)
        if m:
            start, name = int(m.group(1), 16), m.group(2).strip()
            continue
        if line.startswith("Size:"):
            size = int(line.split()[1])
        elif line.startswith("Rss:"):
            rss = int(line.split()[1])
            if name == "[heap]":
                kinds["heap"] += rss
            elif name.startswith("[stack"):
                kinds["stack"] += rss
            elif name.startswith("/"):
                kinds["libs"] += rss
                libs[Path(name).name.split(".so")[0]] += rss
            elif name.startswith("["):
                kinds["other"] += rss
            else:
                kinds["anon"] += rss
                anon_sizes.append((rss, size, start % ARENA_ALIGN == 0))
    big = sorted(libs.items(), key=lambda kv: -kv[1])[:8]
    arenas = sum(r for r, _, a in anon_sizes if a)
    stacks = sum(r for r, s, a in anon_sizes if not a and 8180 <= s <= 8200)  # 8 MB thread stacks
    return {
        "rss_mb": round(sum(kinds.values()) / 1024, 1),
        "kinds_mb": {k: round(v / 1024, 1) for k, v in sorted(kinds.items())},
        "anon_mb": {"malloc arenas": round(arenas / 1024, 1), "thread stacks": round(stacks / 1024, 1),
                    "other (mmapped blocks, obmalloc)": round((kinds["anon"] - arenas - stacks) / 1024, 1),
                    "mappings": len(anon_sizes)},
        "libs_mb": {k: round(v / 1024, 1) for k, v in big},
        "threads": threading.active_count(),
    }


def python_top(limit: int = 12) -> dict[str, Any]:
    """tracemalloc's total and its top allocation sites (empty when not tracing)."""
    if not tracemalloc.is_tracing():
        return {}
    snap = tracemalloc.take_snapshot()
    stats = snap.statistics("lineno")
    total = sum(s.size for s in stats)
    paths = snap.statistics("traceback")[:3]  # who holds the largest: the chain of calls (with --tracemalloc N > 1)
    return {"traced_mb": round(total / 2**20, 1),
            "top": [f"{s.size / 2**20:6.2f} MB {s.count:7d}x {_where(s.traceback[0])}" for s in stats[:limit]],
            "largest_by_caller": [f"{s.size / 2**20:6.2f} MB: " + " < ".join(_where(f) for f in s.traceback[:8])
                                  for s in paths if len(s.traceback) > 1]}


def _where(frame: tracemalloc.Frame) -> str:
    """file:line, relative to site-packages or to the checkout."""
    return f"{frame.filename.split('site-packages/')[-1].removeprefix(_ROOT)}:{frame.lineno}"


def report() -> dict[str, Any]:
    return {**smaps_breakdown(), "python": python_top()}
