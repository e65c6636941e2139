#!/usr/bin/env bash
# Installs Debian's chromium and chromium-driver (for the web client's browser tests) when
# /usr/bin/chromium is missing. Quiet and offline when it is there. tests/web/conftest.py runs
# it; run it by hand to prepare a machine: bash tests/web/install_chromium.sh
set -euo pipefail

log() { echo "[install_chromium] $*"; }

if [[ -x /usr/bin/chromium ]]; then exit 0; fi
command -v apt-get >/dev/null || { log "apt-get not found; install chromium by hand" >&2; exit 1; }
as_root() {
  if [[ $EUID -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else log "need root (or sudo) to run: $*" >&2; exit 1
  fi
}
exec 9>/tmp/parley-install-chromium.lock  # two test runs at once install once
flock 9
if [[ -x /usr/bin/chromium ]]; then exit 0; fi
log "apt-get update"
as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
log "apt-get install chromium chromium-driver"
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  chromium chromium-driver >/dev/null
[[ -x /usr/bin/chromium ]] || { log "chromium still missing after apt-get install" >&2; exit 1; }
log "installed: $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
