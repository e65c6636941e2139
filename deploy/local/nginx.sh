#!/usr/bin/env bash
# Parley local cluster — nginx.sh
#
# Owns: a private nginx (not Debian's service) in front of the local gateways.
# Renders deploy/local/nginx.conf.template to ${PARLEY_RUN_DIR:-<repo>/.run}/nginx/
# nginx.conf and runs `nginx -p <that dir> -c <conf>`; its pid file, logs and temp
# dirs all live in .run/nginx/.
#
# Usage: nginx.sh up | down | status
# Env: PARLEY_NGINX_PORT (default 8080), listening on 127.0.0.1;
#      PARLEY_GATEWAY_PORTS (default "8001 8002"), gateways on 127.0.0.1.
# `up` when already running re-renders the config and reloads nginx if it changed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
RUN_DIR="${PARLEY_RUN_DIR:-$REPO/.run}"
NGINX_PORT="${PARLEY_NGINX_PORT:-8080}"
GATEWAY_PORTS="${PARLEY_GATEWAY_PORTS:-8001 8002}"
TEMPLATE="$HERE/nginx.conf.template"
STOP_TIMEOUT=10

NGINX_DIR=""   # set in main, once RUN_DIR exists
CONF=""
PID_FILE=""
NGINX_BIN=""

log() { echo "[nginx] $*"; }
die() { echo "[nginx] ERROR: $*" >&2; exit 1; }

port_open() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

find_nginx() {
  NGINX_BIN="$(command -v nginx || true)"
  [[ -z $NGINX_BIN && -x /usr/sbin/nginx ]] && NGINX_BIN=/usr/sbin/nginx
  [[ -n $NGINX_BIN ]] || die "nginx not installed (run deploy/local/bootstrap.sh nginx)"
}

# nginx with our prefix, config and error log (also for errors before the
# config is read, instead of the system's /var/log/nginx).
nginx_cmd() {
  "$NGINX_BIN" -p "$NGINX_DIR/" -c "$CONF" -e "$NGINX_DIR/logs/error.log" "$@"
}

# Prints the master pid if our pid file names a live nginx master using our config.
running_pid() {
  local pid
  [[ -f $PID_FILE ]] || return 1
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
      && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$CONF"; then
    echo "$pid"
    return 0
  fi
  log "removing stale pid file ($PID_FILE)" >&2
  rm -f "$PID_FILE"
  return 1
}

check_ports() {
  local p
  [[ $NGINX_PORT =~ ^[0-9]+$ ]] || die "PARLEY_NGINX_PORT: '$NGINX_PORT' is not a port number"
  [[ -n ${GATEWAY_PORTS// /} ]] || die "PARLEY_GATEWAY_PORTS is empty"
  for p in $GATEWAY_PORTS; do
    [[ $p =~ ^[0-9]+$ ]] || die "PARLEY_GATEWAY_PORTS: '$p' is not a port number"
  done
}

upstream_servers() {
  # max_fails=0: never take a gateway out of rotation for a while; every request tries its
  # ip_hash gateway and moves to the next on a refused connection or a draining gateway's
  # 503/403 (proxy_next_upstream). A restarting gateway is back in rotation the moment it
  # listens, and a drain never leaves nginx with "no live upstreams".
  local p out=""
  for p in $GATEWAY_PORTS; do
    out+="        server 127.0.0.1:$p max_fails=0;"$'\n'
  done
  printf '%s' "${out%$'\n'}"
}

# Writes the config to $1.
render_conf() {
  local out="$1" text user_directive=""
  # As root, nginx would switch workers to 'nobody', who cannot write our temp dirs.
  [[ $EUID -eq 0 ]] && user_directive="user root root;"
  text="$(cat "$TEMPLATE")"
  text="${text//@@USER_DIRECTIVE@@/$user_directive}"
  text="${text//@@NGINX_DIR@@/$NGINX_DIR}"
  text="${text//@@LISTEN_PORT@@/$NGINX_PORT}"
  text="${text//@@UPSTREAM_SERVERS@@/$(upstream_servers)}"
  printf '%s\n' "$text" >"$out"
}

# Renders into a temp file, `nginx -t`s it, then moves it into place.
# Returns 0 if the installed config changed.
install_conf() {
  local new="$CONF.new" changed=1
  render_conf "$new"
  if ! "$NGINX_BIN" -t -q -p "$NGINX_DIR/" -c "$new" -e "$NGINX_DIR/logs/error.log" 2>"$NGINX_DIR/nginx-t.log"; then
    cat "$NGINX_DIR/nginx-t.log" >&2
    rm -f "$new"
    die "rendered config is invalid (nginx -t output above; template: $TEMPLATE)"
  fi
  rm -f "$NGINX_DIR/nginx-t.log"
  if [[ -f $CONF ]] && cmp -s "$new" "$CONF"; then changed=0; fi
  mv -f "$new" "$CONF"
  return $(( changed == 1 ? 0 : 1 ))
}

cmd_up() {
  local pid
  "$HERE/bootstrap.sh" nginx
  find_nginx
  mkdir -p "$NGINX_DIR/logs" "$NGINX_DIR/tmp"
  if pid="$(running_pid)"; then
    if install_conf; then
      log "running (pid $pid); config changed, reloading"
      nginx_cmd -s reload
    else
      log "already running (pid $pid, 127.0.0.1:$NGINX_PORT) — nothing to do"
    fi
    return 0
  fi
  install_conf || true
  port_open "$NGINX_PORT" && die "port $NGINX_PORT on 127.0.0.1 is taken by another process (set PARLEY_NGINX_PORT)"
  nginx_cmd
  for _ in $(seq 50); do
    if [[ -s $PID_FILE ]] && port_open "$NGINX_PORT"; then
      log "running on 127.0.0.1:$NGINX_PORT (pid $(cat "$PID_FILE")) -> gateways 127.0.0.1:{${GATEWAY_PORTS// /,}}"
      log "config $CONF, logs $NGINX_DIR/logs/"
      return 0
    fi
    sleep 0.1
  done
  tail -n 30 "$NGINX_DIR/logs/error.log" >&2 2>/dev/null || true
  die "nginx did not come up on 127.0.0.1:$NGINX_PORT (log: $NGINX_DIR/logs/error.log)"
}

cmd_down() {
  local pid deadline
  if ! pid="$(running_pid)"; then
    log "not running"
    return 0
  fi
  log "stopping (pid $pid)"
  # TERM = fast shutdown; a graceful QUIT would wait for open WebSockets.
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$(( SECONDS + STOP_TIMEOUT ))
  while kill -0 "$pid" 2>/dev/null; do
    if (( SECONDS >= deadline )); then
      log "still running after ${STOP_TIMEOUT}s, sending SIGKILL"
      pkill -KILL -P "$pid" 2>/dev/null || true
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_status() {
  local pid
  if pid="$(running_pid)"; then
    printf '%-10s %-28s pid %-8s port %s\n' nginx running "$pid" "$NGINX_PORT"
  else
    printf '%-10s %-28s pid %-8s port %s\n' nginx stopped - "$NGINX_PORT"
  fi
}

main() {
  [[ $# -eq 1 ]] || { echo "usage: $0 up|down|status" >&2; exit 2; }
  check_ports
  mkdir -p "$RUN_DIR/nginx"
  RUN_DIR="$(cd "$RUN_DIR" && pwd -P)"
  NGINX_DIR="$RUN_DIR/nginx"
  CONF="$NGINX_DIR/nginx.conf"
  PID_FILE="$NGINX_DIR/nginx.pid"
  case "$1" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
  esac
}

main "$@"
