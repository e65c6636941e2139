#!/usr/bin/env bash
# Create (once per requirements hash) the Python tool venvs of the deploy checks:
#   deploy/tools/venv.sh validate checkov      -> ~/.cache/parley/venvs/<name>/bin/...
# Each tool has its own venv (checkov's pins clash with the services'); pins in requirements-<name>.txt.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VENVS=${PARLEY_VENVS_DIR:-$HOME/.cache/parley/venvs}
PYTHON=${PYTHON:-python3}
mkdir -p "$VENVS"
for name in "$@"; do
  req="$HERE/requirements-$name.txt"
  [[ -f $req ]] || { echo "[venv] no $req" >&2; exit 2; }
  dir="$VENVS/$name"
  stamp="$dir/.installed-$(md5sum <"$req" | cut -c1-12)"
  [[ -f $stamp ]] && continue
  (
    flock 9
    [[ -f $stamp ]] && exit 0
    echo "[venv] installing $name from $req" >&2
    t0=$SECONDS
    [[ -x $dir/bin/python ]] || "$PYTHON" -m venv "$dir"
    nice -n 10 "$dir/bin/pip" install -q --disable-pip-version-check -r "$req"
    rm -f "$dir"/.installed-* && touch "$stamp"
    echo "[venv] $name ready in $((SECONDS - t0)) s" >&2
  ) 9>"$VENVS/.$name.lock"
done
