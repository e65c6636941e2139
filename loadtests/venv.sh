#!/usr/bin/env bash
# Make (or refresh) the load-test virtualenv and print its python.
#   PARLEY_LOCUST_VENV  where it lives (default ~/.cache/parley/venvs/locust)
# Re-installs only when loadtests/requirements.txt changed (a stamp with its hash).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${PARLEY_LOCUST_VENV:-$HOME/.cache/parley/venvs/locust}"
STAMP="$VENV/.installed-$(md5sum "$HERE/requirements.txt" | cut -c1-12)"
if [[ ! -f $STAMP ]]; then
  mkdir -p "$(dirname "$VENV")"
  [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$HERE/requirements.txt" >&2
  rm -f "$VENV"/.installed-* && touch "$STAMP"
fi
echo "$VENV/bin/python"
