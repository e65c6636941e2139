#!/usr/bin/env bash
# `make bench`: Parley's gateway side by side with the shared kit's reference server, then the
# persistence pipeline; results in bench-results/<UTC time>/ (git-ignored) and a markdown
# summary, printed and saved as summary.md there and as bench-results/latest.md.
#
# Starts the engines it needs with deploy/local/infra.sh (idempotent: engines already running
# are used as they are) and stops exactly the ones it started. The kit (../shared/bench, or
# PARLEY_BENCH_KIT) is copied to a temporary directory and npm-installed there, never into the
# repo. Knobs: BENCH_ROUNDS (2), BENCH_SECONDS (8), BENCH_CONNS (2000), BENCH_MESSAGES (20000),
# BENCH_SKIP_CLUSTER=1. Takes about 4 minutes on a 2-core machine (engines running).
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
"$PY" - "$OUT/meta.json" <<'EOF'
import json, os, platform, subprocess, sys, time
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
json.dump({
    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    "command": "make bench",
    "machine": f"{os.cpu_count()} cores ({cpu}), {mem / 1048576:.0f} GiB RAM, Linux "
               f"{platform.release()}, Python {platform.python_version()}, Node {node}",
    "load_start": round(os.getloadavg()[0], 2),
}, open(sys.argv[1], "w"), indent=2)
EOF

gateway_args=(--kit "$KIT" --out "$OUT" --rounds "${BENCH_ROUNDS:-2}"
  --seconds "${BENCH_SECONDS:-8}" --conns "${BENCH_CONNS:-2000}")
[[ ${BENCH_SKIP_CLUSTER:-0} == 1 ]] && gateway_args+=(--skip-cluster)
"$PY" -m bench.gateway "${gateway_args[@]}"
"$PY" -m bench.persistence --out "$OUT" --messages "${BENCH_MESSAGES:-20000}"

"$PY" - "$OUT/meta.json" <<'EOF'
import json, os, sys
meta = json.load(open(sys.argv[1]))
meta["load_end"] = round(os.getloadavg()[0], 2)
json.dump(meta, open(sys.argv[1], "w"), indent=2)
EOF
echo
"$PY" -m bench.report "$OUT"
cp "$OUT/summary.md" "$REPO/bench-results/latest.md"
echo
echo "[bench] results: $OUT (summary.md, gateway.json, persistence.json, logs/)"
