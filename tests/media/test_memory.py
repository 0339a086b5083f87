"""The allocator tuning applies on glibc Linux (the deployment target) and is harmless to repeat."""

from __future__ import annotations

import platform
import sys

import pytest

from bot.media.memory import tune_malloc


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="glibc only")
def test_tune_malloc_applies_on_glibc() -> None:
    assert tune_malloc()
    assert tune_malloc()  # the app may be built twice in one process (tests): no harm
