"""The allocator tuning applies on glibc Linux (the deployment target) and is harmless to repeat."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

from bot.media.memory import trim_malloc, tune_malloc


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="glibc only")
def test_tune_malloc_applies_on_glibc() -> None:
    assert tune_malloc()
    assert tune_malloc()  # the app may be built twice in one process (tests): no harm


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="glibc only")
def test_trim_malloc_runs_on_glibc() -> None:
    trim_malloc()  # True or False (nothing to give back): it must simply run
    assert tune_malloc()


def test_room_client_libraries_are_imported_only_when_configured() -> None:
    """matrix-nio and python-telegram-bot cost ~15 MB of memory each, the ONVIF client with zeep and
    lxml about as much: not loaded for nothing."""
    code = "import sys, bot.app; print(sorted(m for m in ('nio', 'telegram', 'onvif', 'zeep') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"
