#!/usr/bin/env bash
# `make bench-idle`: one single-node gateway holding BENCH_IDLE_CONNS (10000) idle websocket
# connections for BENCH_IDLE_HOLD (300) seconds: RSS, CPU at idle, drops (bench/idle_conns.py).
# No engines needed. Results in bench-results/<UTC time>-idle/ (idle_conns.json, summary.md).
#
# Room for the sockets: the open-files limit of this shell is raised to its hard limit (the
# gateway and the client each hold one end of every connection; bench.idle_conns checks it and
# the ephemeral port range, and refuses to start when either is too small).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
cd "$REPO"
PY="$REPO/.venv/bin/python"
CONNS="${BENCH_IDLE_CONNS:-10000}"
HOLD="${BENCH_IDLE_HOLD:-300}"
OUT="$REPO/bench-results/$(date -u +%Y%m%dT%H%M%SZ)-idle"
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "[bench] idle connections: $CONNS for ${HOLD}s (open files: $(ulimit -n); ephemeral ports:" \
  "$(tr '\t' - </proc/sys/net/ipv4/ip_local_port_range))"
"$PY" -m bench.meta start "$OUT" "make bench-idle (BENCH_IDLE_CONNS=$CONNS BENCH_IDLE_HOLD=$HOLD)"
"$PY" -m bench.idle_conns --out "$OUT" --conns "$CONNS" --hold "$HOLD"
"$PY" -m bench.meta end "$OUT"
echo
"$PY" -m bench.report "$OUT"
echo
echo "[bench] results: $OUT (summary.md, idle_conns.json, logs/)"
