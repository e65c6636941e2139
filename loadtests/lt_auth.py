"""Tokens for load-test users, the way real clients get them.

- ``register``: ``POST /auth/register`` then ``POST /auth/login`` per user, both recorded as
  locust requests. Parley limits registrations per client IP (``PARLEY_REGISTER_IP_RATE_LIMIT``,
  default 10 an hour) and logins per IP, so this suits small runs, or a deployment whose
  limits were raised for the test.
- ``tokens``: a file with one JWT per line (``loadtests/tokens.py`` mints or registers one).
  With N worker processes (``PARLEY_LT_WORKERS``) worker i takes lines i, i+N, i+2N, ... so no
  two workers share a user (per-user rate limits stay per locust user).
"""

from __future__ import annotations

import logging
import time
import uuid
from functools import cache

import requests

log = logging.getLogger("parley.loadtest")


@cache
def read_tokens(path: str) -> tuple[str, ...]:
    with open(path, encoding="utf-8") as f:
        tokens = tuple(t.strip() for t in f if t.strip() and not t.startswith("#"))
    if not tokens:
        raise ValueError(f"{path}: no tokens")
    return tokens


_wrapped = False


def token_from_file(path: str, worker: int, workers: int, n: int) -> str:
    """The ``n``-th user of worker ``worker`` (of ``workers``): line ``worker + n * workers``."""
    global _wrapped
    tokens = read_tokens(path)
    line = worker + n * workers
    if line >= len(tokens) and not _wrapped:
        _wrapped = True
        log.warning(
            "%s has %d tokens, fewer than the users; users share tokens now "
            "(their per-user rate limits too)",
            path,
            len(tokens),
        )
    return tokens[line % len(tokens)]


def register_and_login(host: str, username: str, password: str, fire, timeout: float) -> str:
    """Register then log in; each step is a locust request (``http`` type). Raises on refusal."""
    with requests.Session() as http:
        for path, ok in (("/auth/register", 201), ("/auth/login", 200)):
            started = time.perf_counter()
            exc: Exception | None = None
            body: dict = {}
            try:
                r = http.post(
                    host + path, json={"username": username, "password": password}, timeout=timeout
                )
                body = r.json() if r.content else {}
                if r.status_code != ok:
                    exc = RuntimeError(f"{r.status_code} {body.get('code') or body.get('error')}")
            except (requests.RequestException, ValueError) as e:
                exc = e
            status = "" if exc is None else f" [{str(exc).split()[0]}]"
            fire("http", f"POST {path}{status}", started, exception=exc)
            if exc is not None:
                raise exc
    return body["token"]


def new_username(prefix: str, worker: int, n: int) -> str:
    return f"{prefix}w{worker}u{n}{uuid.uuid4().hex[:4]}"[:32]
