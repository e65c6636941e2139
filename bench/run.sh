#!/usr/bin/env bash
# `make bench`: Parley's gateway side by side with the shared kit's reference server, then the
# persistence pipeline; results in bench-results/<UTC time>/ (git-ignored) and a markdown
# summary, printed and saved as summary.md there and as bench-results/latest.md.
#
# Starts the engines it needs with deploy/local/infra.sh (idempotent: engines already running
# are used as they are) and stops exactly the ones it started. The kit (../shared/bench, or
# PARLEY_BENCH_KIT) is copied to a temporary directory and npm-installed there, never into the
# repo. Knobs: BENCH_ROUNDS (2), BENCH_SECONDS (8), BENCH_CONNS (2000), BENCH_MESSAGES (20000), BENCH_BACKLOG (50000),
# BENCH_FIXED_SECONDS (8), BENCH_FIXED_SENDERS (4), BENCH_FIXED_RATE (default: half the
# reference's saturated rate), BENCH_PROFILE_SECONDS (8), BENCH_SKIP_CLUSTER=1, BENCH_PARTS (all of
# single,memory,cluster,fixed,profile,cluster2,interest,api,persistence; `make bench-profile` runs
# only profile). Takes about 8 minutes on a 2-core machine (engines running).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
cd "$REPO"
PY="$REPO/.venv/bin/python"
KIT_SRC="${PARLEY_BENCH_KIT:-$REPO/../shared/bench}"
[[ -f $KIT_SRC/fanout.js ]] || { echo "[bench] no benchmark kit at $KIT_SRC (set PARLEY_BENCH_KIT)" >&2; exit 1; }

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="$REPO/bench-results/$STAMP"
mkdir -p "$OUT"
KIT="$(mktemp -d "${TMPDIR:-/tmp}/parley-bench-kit.XXXXXX")"

started=()
for engine in redis kafka cassandra; do
  if ! bash deploy/local/infra.sh status "$engine" | grep -q running; then
    started+=("$engine")
  fi
done
cleanup() {
  rm -rf "$KIT"
  if ((${#started[@]})); then
    echo "[bench] stopping engines started by this run: ${started[*]}"
    bash deploy/local/infra.sh down "${started[@]}" || true
  fi
}
trap cleanup EXIT
bash deploy/local/infra.sh up

echo "[bench] benchmark kit: $KIT_SRC -> $KIT (npm install)"
cp -r "$KIT_SRC/." "$KIT"
chmod -R u+w "$KIT"
(cd "$KIT" && npm install --no-audit --no-fund --loglevel=error >/dev/null)

export BENCH_RUN_ID="${STAMP,,}"
"$PY" -m bench.meta start "$OUT" "${BENCH_COMMAND:-make bench}"

# BENCH_PARTS: which parts run (bench.gateway's parts, and persistence), comma-separated.
PARTS="${BENCH_PARTS:-single,memory,cluster,fixed,profile,cluster2,interest,api,persistence}"
gateway_parts="$(tr , '\n' <<<"$PARTS" | grep -vx -e persistence -e api | paste -sd, -)" || true
if [[ -n $gateway_parts ]]; then
  gateway_args=(--kit "$KIT" --out "$OUT" --parts "$gateway_parts" --rounds "${BENCH_ROUNDS:-2}"
    --seconds "${BENCH_SECONDS:-8}" --conns "${BENCH_CONNS:-2000}"
    --fixed-seconds "${BENCH_FIXED_SECONDS:-8}" --fixed-senders "${BENCH_FIXED_SENDERS:-4}"
    --profile-seconds "${BENCH_PROFILE_SECONDS:-8}")
  [[ -n ${BENCH_FIXED_RATE:-} ]] && gateway_args+=(--fixed-rate "$BENCH_FIXED_RATE")
  [[ ${BENCH_SKIP_CLUSTER:-0} == 1 ]] && gateway_args+=(--skip-cluster)
  "$PY" -m bench.gateway "${gateway_args[@]}"
fi
if [[ ,$PARTS, == *,api,* ]]; then  # the server API beside chat:message, two gateways
  "$PY" -m bench.api --out "$OUT"
fi
if [[ ,$PARTS, == *,persistence,* ]]; then
  "$PY" -m bench.persistence --out "$OUT" --messages "${BENCH_MESSAGES:-20000}" \
    --backlog "${BENCH_BACKLOG:-50000}"
fi

"$PY" -m bench.meta end "$OUT"
echo
"$PY" -m bench.report "$OUT"
if [[ -z ${BENCH_PARTS:-} ]]; then  # a full run only
  cp "$OUT/summary.md" "$REPO/bench-results/latest.md"
fi
echo
echo "[bench] results: $OUT (summary.md, gateway.json, persistence.json, logs/)"
