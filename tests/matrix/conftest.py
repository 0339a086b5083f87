"""Fixtures for tests against a real Synapse (see tests/matrix/synapse_server.py).

``synapse`` (session scope) is a running :class:`Synapse` on 127.0.0.1::

    def test_x(synapse):
        alice = synapse.register("alice")      # User(user_id, password, access_token, device_id, ...)
        synapse.admin_token                    # an admin user's token (registered on first use)
        synapse.base_url                       # "http://127.0.0.1:<port>"
        synapse.restart()                      # same port, same data; also stop() / start()

Without ``<repo>/.venv-synapse`` the tests are skipped, except under ``CI=true`` where that is an error:
CI must run ``scripts/synapse/install.sh`` first.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from synapse_server import Synapse, default_venv  # noqa: E402


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    venv = default_venv()
    if not (venv / "bin" / "python").exists():
        msg = f"Synapse venv missing at {venv}: run scripts/synapse/install.sh"
        if _ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    server = Synapse(tmp_path_factory.mktemp("synapse"), venv=venv)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _synapse_running(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that stopped the shared server and failed before starting it again must not break the
    tests after it."""
    if "synapse" in request.fixturenames:
        server: Synapse = request.getfixturevalue("synapse")
        server.start()  # no-op when running
    yield
