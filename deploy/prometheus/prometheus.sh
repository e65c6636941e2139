#!/usr/bin/env bash
# Parley local cluster — prometheus.sh: a real Prometheus (Debian's `prometheus` 2.42, with
# promtool) scraping every process of the local cluster, with Parley's alert rules loaded.
#
# Usage: prometheus.sh up | down | status | install
#   up      install the Debian package if missing, render prometheus.yml + rules + targets into
#           <run dir>/prometheus/, start Prometheus on 127.0.0.1:$PARLEY_PROMETHEUS_PORT, wait
#           until it is ready and print its URL (when already running: re-render and reload)
#   down    stop exactly the Prometheus this script started (pid file)
#   install only install Debian's prometheus + promtool if missing (the tests use it)
# Env:
#   PARLEY_CLUSTER_DIR / PARLEY_RUN_DIR   the run dir (same rule as cluster.sh; default .run)
#   PARLEY_CLUSTER_PORT_BASE              the cluster's ports (gateways base+1/+2, worker
#                                         base+11, presence base+12); default 8000
#   PARLEY_PROMETHEUS_PORT                default 9090
#   PARLEY_PROMETHEUS_SCRAPE_INTERVAL     default 5s
#   PARLEY_PROMETHEUS_NAMESPACE           the `namespace` label of every target; default local
# Its pid file, log and TSDB live under <run dir>/prometheus/ (the TSDB is wiped at `up`).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
ENGINE_RUN_DIR="${PARLEY_RUN_DIR:-$REPO/.run}"
RUN_DIR="${PARLEY_CLUSTER_DIR:-$ENGINE_RUN_DIR}"
BASE="${PARLEY_CLUSTER_PORT_BASE:-8000}"
PORT="${PARLEY_PROMETHEUS_PORT:-9090}"
INTERVAL="${PARLEY_PROMETHEUS_SCRAPE_INTERVAL:-5s}"
NAMESPACE="${PARLEY_PROMETHEUS_NAMESPACE:-local}"
DIR="$RUN_DIR/prometheus"
PID_FILE="$DIR/prometheus.pid"
LOG="$DIR/prometheus.log"
URL="http://127.0.0.1:$PORT"

log() { echo "[prometheus] $*"; }
die() { echo "[prometheus] ERROR: $*" >&2; exit 1; }
[[ $BASE =~ ^[0-9]+$ && $PORT =~ ^[0-9]+$ ]] || die "port base '$BASE' / port '$PORT' not numbers"
[[ $INTERVAL =~ ^[0-9]+(ms|s|m)$ ]] || die "PARLEY_PROMETHEUS_SCRAPE_INTERVAL '$INTERVAL' is not a duration"

running_pid() {
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

install() {
  command -v prometheus >/dev/null && command -v promtool >/dev/null && return
  log "installing Debian's prometheus package (its own service is not started)"
  local ours=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    ours=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus \
    || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
         --no-install-recommends prometheus; }
  ((ours)) && rm -f /usr/sbin/policy-rc.d
  command -v prometheus >/dev/null || die "prometheus did not install"
}

target() {  # job name port
  printf '  {"targets": ["127.0.0.1:%s"], "labels": {"job": "%s", "namespace": "%s", "pod": "%s"}}' \
    "$3" "$1" "$NAMESPACE" "$2"
}

render() {
  mkdir -p "$DIR/rules" "$DIR/targets"
  sed -e "s/@SCRAPE_INTERVAL@/$INTERVAL/g" -e "s/@LISTEN@/127.0.0.1:$PORT/g" \
    -e "s/@NAMESPACE@/$NAMESPACE/g" "$HERE/prometheus.yml" > "$DIR/prometheus.yml"
  cp "$HERE"/rules/*.yml "$DIR/rules/"
  {
    echo "["
    target parley-gateway gateway-1 $((BASE + 1)); echo ","
    target parley-gateway gateway-2 $((BASE + 2)); echo ","
    target parley-persistence persistence $((BASE + 11)); echo ","
    target parley-presence presence $((BASE + 12)); echo
    echo "]"
  } > "$DIR/targets/cluster.json.tmp"
  mv "$DIR/targets/cluster.json.tmp" "$DIR/targets/cluster.json"
  promtool check config "$DIR/prometheus.yml" >/dev/null || die "rendered config is invalid"
}

up() {
  install
  render
  local pid
  if pid="$(running_pid)"; then
    kill -HUP "$pid"
    log "already running (pid $pid); configuration reloaded — $URL"
    return
  fi
  rm -rf "$DIR/data"
  setsid nohup prometheus --config.file="$DIR/prometheus.yml" \
    --storage.tsdb.path="$DIR/data" --storage.tsdb.retention.time=2d \
    --web.listen-address="127.0.0.1:$PORT" >>"$LOG" 2>&1 < /dev/null &
  echo $! > "$PID_FILE"
  local deadline=$((SECONDS + 30))
  until curl -fsS "$URL/-/ready" >/dev/null 2>&1; do
    running_pid >/dev/null || { tail -n 20 "$LOG" >&2; die "prometheus exited; log: $LOG"; }
    ((SECONDS < deadline)) || die "not ready on :$PORT after 30s; log: $LOG"
    sleep 0.3
  done
  log "Prometheus on $URL (scraping every $INTERVAL; rules from deploy/prometheus/rules; log $LOG)"
}

down() {
  local pid
  if pid="$(running_pid)"; then
    kill -TERM "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    log "stopped"
  fi
  rm -f "$PID_FILE"
}

status() {
  local pid
  if pid="$(running_pid)"; then echo "prometheus running pid $pid $URL"
  else echo "prometheus stopped"; fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  install) install ;;
  *) echo "usage: prometheus.sh up|down|status|install" >&2; exit 2 ;;
esac
