#!/usr/bin/env bash
# Parley local infra — bootstrap.sh
#
# Owns: the one-time, idempotent installation of what deploy/local/infra.sh and
# deploy/local/nginx.sh need on this machine:
#   * Debian packages redis-server (Redis 7 + redis-cli) and nginx, installed
#     without starting Debian's own services (we run private instances);
#   * maven (only when jars still have to be fetched);
#   * the Kafka and Cassandra jars, from deploy/local/poms/{kafka,cassandra}.xml,
#     copied into ${PARLEY_CACHE_DIR:-$HOME/.cache/parley}/jars/{kafka,cassandra}.
#     A jar dir is complete only when its .complete marker holds the sha256 of
#     its pom; anything else (half download, changed pom) is fetched again.
#
# Usage: bootstrap.sh [redis|kafka|cassandra|nginx ...]   (default: all four)
# Quiet when everything is present; needs no network then.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POM_DIR="$HERE/poms"
HOME="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"   # CI may run without HOME
CACHE_DIR="${PARLEY_CACHE_DIR:-$HOME/.cache/parley}"
JAR_DIR="$CACHE_DIR/jars"
DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.6.1"

APT_UPDATED=0
POLICY_RC_D=/usr/sbin/policy-rc.d
POLICY_RC_D_OURS=0

log() { echo "[bootstrap] $*"; }
die() { echo "[bootstrap] ERROR: $*" >&2; exit 1; }

have() { command -v "$1" >/dev/null 2>&1; }

# --- apt -------------------------------------------------------------------

as_root() {
  if [[ $EUID -eq 0 ]]; then "$@"
  elif have sudo; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

# Keep apt's maintainer scripts from starting services while we install.
block_service_starts() {
  [[ -e $POLICY_RC_D ]] && return 0
  as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $POLICY_RC_D && chmod 755 $POLICY_RC_D"
  POLICY_RC_D_OURS=1
}

unblock_service_starts() {
  if [[ $POLICY_RC_D_OURS -eq 1 ]]; then
    as_root rm -f "$POLICY_RC_D"
    POLICY_RC_D_OURS=0
  fi
}
trap unblock_service_starts EXIT

# Stop and disable a Debian service that its package may have started.
quiet_debian_service() {
  local svc="$1"
  if [[ -d /run/systemd/system ]] && have systemctl; then
    as_root systemctl disable --now "$svc" >/dev/null 2>&1 || true
  else
    if have update-rc.d; then as_root update-rc.d "$svc" disable >/dev/null 2>&1 || true; fi
    if [[ -x /etc/init.d/$svc ]]; then as_root /etc/init.d/"$svc" stop >/dev/null 2>&1 || true; fi
  fi
}

apt_install() {
  local pkgs=("$@")
  have apt-get || die "apt-get not found; install ${pkgs[*]} by hand"
  block_service_starts
  if [[ $APT_UPDATED -eq 0 ]]; then
    log "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null \
      || die "apt-get update failed"
    APT_UPDATED=1
  fi
  log "apt-get install ${pkgs[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null \
    || die "apt-get install ${pkgs[*]} failed"
  unblock_service_starts
}

ensure_system_packages() {
  local want_redis="$1" want_nginx="$2" missing=()
  if [[ $want_redis -eq 1 ]] && { ! have redis-server || ! have redis-cli; }; then missing+=(redis-server); fi
  if [[ $want_nginx -eq 1 ]] && ! have nginx && [[ ! -x /usr/sbin/nginx ]]; then missing+=(nginx); fi
  [[ ${#missing[@]} -eq 0 ]] && return 0
  # Install both together when either is missing (one apt round trip).
  apt_install redis-server nginx
  quiet_debian_service redis-server
  quiet_debian_service nginx
  have redis-server || die "redis-server still missing after apt-get install"
}

# --- jars --------------------------------------------------------------------

jars_complete() {
  local name="$1" want
  want="$(sha256sum "$POM_DIR/$name.xml" | cut -d' ' -f1)"
  [[ -f $JAR_DIR/$name/.complete && "$(cat "$JAR_DIR/$name/.complete")" == "$want" ]]
}

fetch_jars() {
  local name="$1" pom="$POM_DIR/$1.xml" dest="$JAR_DIR/$1" tmp mvn_log count
  [[ -f $pom ]] || die "missing $pom"
  jars_complete "$name" && return 0
  if ! have mvn; then apt_install maven; fi
  log "fetching $name jars into $dest (from $(basename "$pom"))"
  mkdir -p "$JAR_DIR"
  rm -rf "$JAR_DIR/.$name."*   # leftovers of an interrupted fetch (we hold the lock)
  tmp="$(mktemp -d "$JAR_DIR/.$name.XXXXXX")"
  mvn_log="$tmp.mvn.log"
  if ! mvn -B -q -f "$pom" "$DEP_PLUGIN:copy-dependencies" \
        -DincludeScope=runtime -DoutputDirectory="$tmp" >"$mvn_log" 2>&1; then
    tail -n 30 "$mvn_log" >&2
    rm -rf "$tmp"
    die "maven could not fetch the $name jars (full output: $mvn_log)"
  fi
  count="$(find "$tmp" -maxdepth 1 -name '*.jar' | wc -l)"
  [[ $count -gt 0 ]] || { rm -rf "$tmp"; die "maven fetched no $name jars (see $mvn_log)"; }
  sha256sum "$pom" | cut -d' ' -f1 >"$tmp/.complete"
  rm -rf "$dest"
  mv "$tmp" "$dest"
  rm -f "$mvn_log"
  log "$name: $count jars cached"
}

# --- main ----------------------------------------------------------------------

main() {
  local parts=("$@") want_redis=0 want_nginx=0 jars=() p
  [[ ${#parts[@]} -eq 0 ]] && parts=(redis kafka cassandra nginx)
  for p in "${parts[@]}"; do
    case "$p" in
      redis) want_redis=1 ;;
      nginx) want_nginx=1 ;;
      kafka|cassandra) jars+=("$p") ;;
      *) die "unknown component '$p' (expected redis, kafka, cassandra, nginx)" ;;
    esac
  done

  ensure_system_packages "$want_redis" "$want_nginx"

  if [[ ${#jars[@]} -gt 0 ]]; then
    mkdir -p "$CACHE_DIR"
    # Serialise concurrent bootstraps (parallel shells, CI) on the jar cache.
    exec 9>"$CACHE_DIR/.bootstrap.lock"
    flock 9
    for p in "${jars[@]}"; do fetch_jars "$p"; done
    flock -u 9
  fi
}

main "$@"
