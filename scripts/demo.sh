#!/usr/bin/env bash
# Set up and start the demo: synthetic venue, SQLite registre, the console room on this terminal.
# Extra arguments go to `python -m bot demo` (e.g. --port 8081 --data-dir ./demo-data).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
cd "$root"
exec .venv/bin/python -m bot demo "$@"
