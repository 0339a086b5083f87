#!/usr/bin/env bash
# Install the Synapse used by the Matrix tests (tests/matrix/) into its own virtualenv,
# <repo>/.venv-synapse, from the pinned scripts/synapse/requirements.txt.
#
# Idempotent: when the venv exists and was built from the current requirements.txt
# (stamp file), it only checks that and exits (well under a second).
#
# Env:
#   PYTHON              interpreter to build the venv with (default: python3.11, else python3; needs >= 3.10)
#   VIGIE_SYNAPSE_VENV  venv location (default: <repo>/.venv-synapse)
#   FORCE=1             rebuild from scratch
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${VIGIE_SYNAPSE_VENV:-$repo/.venv-synapse}"
req="$here/requirements.txt"
stamp="$venv/.vigie-synapse-stamp"

want="$(sha256sum "$req" | cut -d' ' -f1)"

if [[ "${FORCE:-0}" != 1 && -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "synapse: already installed in $venv ($(sed -n 's/^matrix-synapse==//p' "$req"))"
    exit 0
fi

if [[ -n "${PYTHON:-}" ]]; then
    py="$PYTHON"
elif command -v python3.11 >/dev/null 2>&1; then
    py=python3.11
else
    py=python3
fi
"$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Synapse needs Python >= 3.10")'

start=$SECONDS
if [[ "${FORCE:-0}" == 1 || ! -x "$venv/bin/python" ]]; then
    rm -rf "$venv"
    "$py" -m venv "$venv"
fi
rm -f "$stamp"
# --no-deps with a fully pinned list: exactly what was tested, no resolver surprises.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$req"
"$venv/bin/python" -m pip check >/dev/null
"$venv/bin/python" -c 'import synapse, synapse.app.homeserver; print("synapse:", synapse.__version__, "installed")'
echo "$want" >"$stamp"
echo "synapse: installed in $venv in $((SECONDS - start)) s"
