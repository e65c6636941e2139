#!/usr/bin/env bash
# The full local cluster (`make up` / `make down` / `make status`):
#   engines (infra.sh) → schema and topic (migrate) → gateways on :8001 and :8002,
#   persistence worker (probes :8011), presence service (:8012), nginx on :8080 (ip_hash).
# Every process we start has a pid file under .run/pids and a log under .run/logs;
# `down` stops exactly those, then nginx, then the engines.
#
# A second stack beside the first (a helper's or a test's), sharing the running engines:
#   PARLEY_CLUSTER_PORT_BASE=8100  gateways :8101/:8102, worker :8111, presence :8112, nginx :8180
#   PARLEY_CLUSTER_DIR=<dir>       its pids, logs and nginx state (default: .run)
#   PARLEY_CLUSTER_KEEP_ENGINES=1  `up` uses the running engines (never starts them), `down`
#                                  leaves them running
# The JWT secret: PARLEY_JWT_SECRET if set, else one generated once into .run/jwt-secret.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
ENGINE_RUN_DIR="${PARLEY_RUN_DIR:-$REPO/.run}"
RUN_DIR="${PARLEY_CLUSTER_DIR:-$ENGINE_RUN_DIR}"
PY="$REPO/.venv/bin/python"
BASE="${PARLEY_CLUSTER_PORT_BASE:-8000}"
[[ $BASE =~ ^[0-9]+$ ]] || { echo "PARLEY_CLUSTER_PORT_BASE: '$BASE' is not a number" >&2; exit 2; }
SERVICES=(gateway-1:gateway:$((BASE + 1)) gateway-2:gateway:$((BASE + 2))
          persistence:persistence:$((BASE + 11)) presence:presence:$((BASE + 12)))
NGINX_PORT=$((BASE + 80))
SECRET_FILE="$ENGINE_RUN_DIR/jwt-secret"

# The development secret (deploy/local/secret.sh: made once, kept), unless one is set.
jwt_secret() {
  PARLEY_JWT_SECRET="$(bash "$HERE/secret.sh")"
  export PARLEY_JWT_SECRET
}

log() { echo "[cluster] $*"; }

pid_of() { cat "$RUN_DIR/pids/$1.pid" 2>/dev/null || true; }
alive() { local pid; pid="$(pid_of "$1")"; [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; }

wait_ready() {  # name port
  local deadline=$((SECONDS + 90))
  until curl -fsS "http://127.0.0.1:$2/readyz" >/dev/null 2>&1; do
    if ! alive "$1"; then
      log "ERROR: $1 exited; last lines of $RUN_DIR/logs/$1.log:"; tail -n 30 "$RUN_DIR/logs/$1.log" >&2
      return 1
    fi
    if ((SECONDS > deadline)); then
      log "ERROR: $1 not ready on :$2 after 90s; log: $RUN_DIR/logs/$1.log"; return 1
    fi
    sleep 0.5
  done
}

start_service() {  # name module port
  local name=$1 module=$2 port=$3
  if alive "$name"; then log "$name already running (pid $(pid_of "$name"))"; return; fi
  mkdir -p "$RUN_DIR/pids" "$RUN_DIR/logs"
  PARLEY_MODE=cluster PARLEY_PORT="$port" PARLEY_POD_ID="$name-$RANDOM" \
    PARLEY_DRAIN_SECONDS="${PARLEY_DRAIN_SECONDS:-3}" \
    PARLEY_DRAIN_DISCONNECT_SECONDS="${PARLEY_DRAIN_DISCONNECT_SECONDS:-2}" \
    setsid nohup "$PY" -m "services.$module" >>"$RUN_DIR/logs/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN_DIR/pids/$name.pid"
}

stop_service() {
  local name=$1 pid
  pid="$(pid_of "$name")"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    local t0=$SECONDS
    kill -TERM "$pid"   # a gateway drains first (PARLEY_DRAIN_SECONDS + _DISCONNECT_SECONDS)
    for _ in $(seq 1 240); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    log "stopped $name ($((SECONDS - t0))s)"
  fi
  rm -f "$RUN_DIR/pids/$name.pid"
}

up() {
  jwt_secret
  if [[ -n ${PARLEY_CLUSTER_KEEP_ENGINES:-} ]]; then
    # a second stack uses the engines that are running and never (re)starts them: a fault
    # test may have stopped one on purpose
    if bash "$HERE/infra.sh" status | grep -q stopped; then
      log "ERROR: engines not all running (PARLEY_CLUSTER_KEEP_ENGINES): $(bash "$HERE/infra.sh" status | tr '\n' ' ')"
      return 1
    fi
  else
    bash "$HERE/bootstrap.sh"
    bash "$HERE/infra.sh" up
  fi
  (cd "$REPO" && "$PY" -m services.persistence.migrate)
  for spec in "${SERVICES[@]}"; do
    IFS=: read -r name module port <<<"$spec"
    (cd "$REPO" && start_service "$name" "$module" "$port")
  done
  for spec in "${SERVICES[@]}"; do
    IFS=: read -r name _ port <<<"$spec"
    wait_ready "$name" "$port"
  done
  PARLEY_RUN_DIR="$RUN_DIR" PARLEY_NGINX_PORT=$NGINX_PORT \
    PARLEY_GATEWAY_PORTS="$((BASE + 1)) $((BASE + 2))" bash "$HERE/nginx.sh" up
  # opt-in: PARLEY_PROMETHEUS=1 make up (deploy/prometheus/prometheus.sh; README "Dashboards and alerts")
  if [[ -n ${PARLEY_PROMETHEUS:-} ]]; then bash "$REPO/deploy/prometheus/prometheus.sh" up; fi
  cat <<TXT

Parley cluster is up.
  clients (nginx, sticky): http://127.0.0.1:$NGINX_PORT   namespace /chat
  gateways:                http://127.0.0.1:$((BASE + 1))  http://127.0.0.1:$((BASE + 2))
  persistence probes:      http://127.0.0.1:$((BASE + 11))/readyz   presence: http://127.0.0.1:$((BASE + 12))
  JWT secret:              generated once, in $SECRET_FILE (or PARLEY_JWT_SECRET if you set it)
  token:                   make token USER=alice   (uses that secret)
  logs:                    $RUN_DIR/logs/
  stop everything:         make down
TXT
}

restart() {  # rolling: one service at a time, each ready again before the next
  jwt_secret
  local names=("$@") spec name module port found
  ((${#names[@]})) || names=(gateway-1 gateway-2)
  for name in "${names[@]}"; do
    found=""
    for spec in "${SERVICES[@]}"; do
      IFS=: read -r n module port <<<"$spec"
      [[ $n == "$name" ]] && found="$module:$port"
    done
    [[ -n $found ]] || { log "ERROR: unknown service $name"; return 2; }
    IFS=: read -r module port <<<"$found"
    stop_service "$name"
    (cd "$REPO" && start_service "$name" "$module" "$port")
    wait_ready "$name" "$port"
    log "$name restarted and ready"
  done
}

down() {
  bash "$REPO/deploy/prometheus/prometheus.sh" down || true  # only if it was started
  PARLEY_RUN_DIR="$RUN_DIR" PARLEY_NGINX_PORT=$NGINX_PORT bash "$HERE/nginx.sh" down || true
  for ((i=${#SERVICES[@]}-1; i>=0; i--)); do
    IFS=: read -r name _ _ <<<"${SERVICES[$i]}"
    stop_service "$name"
  done
  if [[ -z ${PARLEY_CLUSTER_KEEP_ENGINES:-} ]]; then bash "$HERE/infra.sh" down; fi
}

status() {
  for spec in "${SERVICES[@]}"; do
    IFS=: read -r name _ port <<<"$spec"
    if alive "$name"; then echo "$name running pid $(pid_of "$name") port $port"
    else echo "$name stopped"; fi
  done
  PARLEY_RUN_DIR="$RUN_DIR" PARLEY_NGINX_PORT=$NGINX_PORT bash "$HERE/nginx.sh" status || true
  bash "$REPO/deploy/prometheus/prometheus.sh" status || true
  bash "$HERE/infra.sh" status
}

case "${1:-}" in
  up) up ;;
  restart) shift; restart "$@" ;;
  down) down ;;
  status) status ;;
  *) echo "usage: cluster.sh up|down|status|restart [service...]" >&2; exit 2 ;;
esac
