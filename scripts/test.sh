#!/usr/bin/env bash
# Set up and run every check: lint, types, and the tests against their real peers
# (a Synapse homeserver in its own venv, SQLite files, the demo process).
# Extra arguments go to pytest (e.g. -k desk, -x).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/scripts/setup.sh"
"$root/scripts/system-deps.sh"
scripts/synapse/install.sh
.venv/bin/ruff check bot tests bench
.venv/bin/mypy bot
exec .venv/bin/pytest -q "$@"
