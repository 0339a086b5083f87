"""Which files this process holds open for writing, read from /proc: catches writes made by C
libraries (FFmpeg, libjpeg) that Python's audit hook never sees."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def writable_files(skip: Callable[[str], bool]) -> set[str]:
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            info = Path(f"/proc/self/fdinfo/{fd}").read_text()
        except OSError:
            continue
        if not target.startswith("/") or target.startswith(("/dev/", "/proc/")) or skip(target):
            continue
        flags = int(info.split("flags:")[1].split()[0], 8)
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_APPEND) and os.path.isfile(target):
            found.add(target)
    return found
