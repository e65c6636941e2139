#!/usr/bin/env bash
# Prints the development JWT secret: $PARLEY_JWT_SECRET if set, else a random one made once
# and kept in ${PARLEY_RUN_DIR:-<repo>/.run}/jwt-secret (mode 600). `make run`, `make up` and
# `make token` all use it, so no local stack runs with a secret that is public.
set -euo pipefail
if [[ -n ${PARLEY_JWT_SECRET:-} ]]; then printf '%s\n' "$PARLEY_JWT_SECRET"; exit 0; fi
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FILE="${PARLEY_RUN_DIR:-$REPO/.run}/jwt-secret"
if [[ ! -s $FILE ]]; then
  mkdir -p "$(dirname "$FILE")"
  (umask 077 && head -c 48 /dev/urandom | base64 | tr -d '\n/+=' > "$FILE.tmp" && mv "$FILE.tmp" "$FILE")
fi
cat "$FILE"
