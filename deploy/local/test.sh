#!/usr/bin/env bash
# `make test`: install what is missing, start the engines once, run every test, then stop
# exactly the engines this run started (ones already running are left as they were).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
cd "$REPO"

bash "$HERE/bootstrap.sh"

started=()
for engine in redis kafka cassandra; do
  if ! bash "$HERE/infra.sh" status "$engine" | grep -q running; then
    started+=("$engine")
  fi
done
cleanup() {
  if ((${#started[@]})); then
    echo "[test] stopping engines started by this run: ${started[*]}"
    bash "$HERE/infra.sh" down "${started[@]}" || true
  fi
}
trap cleanup EXIT
bash "$HERE/infra.sh" up

# The type checker is part of the suite: strict on services/ (pyproject.toml [tool.mypy]).
.venv/bin/mypy

if (($#)); then
  .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
else
  # Every test folder, cheapest first; fault tests restart shared engines, so they run last.
  layers=(tests/unit tests/integration tests/e2e)
  for dir in tests/*/; do
    dir=${dir%/}
    case " ${layers[*]} tests/faults tests/support tests/contracts tests/js " in
      *" $dir "*) ;;
      *) layers+=("$dir") ;;
    esac
  done
  .venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 "${layers[@]}" tests/faults
fi
