"""The HTTP side every service shares: ``/healthz``, ``/readyz``, ``/metrics``, and serving.

``/healthz`` answers 200 while the process runs (liveness). ``/readyz`` runs the service's
readiness checks (each a coroutine returning bool, bounded by a timeout) and answers 503
when a required one fails, 200 ``degraded`` when only optional ones do. ``/metrics`` is the
Prometheus text exposition of the default registry — on the main port, or with
``PARLEY_METRICS_PORT`` only on a port of its own (so an ingress that routes the main port can
never expose it).

``uvicorn_server`` trusts ``X-Forwarded-For`` / ``-Proto`` only from ``PARLEY_TRUSTED_PROXIES``
(never uvicorn's environment default).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest, start_http_server
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from .metrics import observe_readiness
from .settings import Settings

Check = Callable[[], Awaitable[bool]]
log = logging.getLogger("parley.web")


async def run_checks(checks: Mapping[str, Check], timeout: float = 3.0) -> dict[str, bool]:
    async def one(check: Check) -> bool:
        try:
            return bool(await asyncio.wait_for(check(), timeout))
        except Exception:  # a probe that fails in any way is "not ready", never a 500
            log.debug("readiness check raised", exc_info=True)
            return False

    names = list(checks)
    results = await asyncio.gather(*(one(checks[n]) for n in names))
    return dict(zip(names, results, strict=True))


def health_routes(
    checks: Mapping[str, Check],
    optional: frozenset[str] = frozenset(),
    metrics_port: int = 0,
) -> list[Route]:
    """``optional`` checks are reported but do not make the service unready (it still does
    useful work without them, e.g. a gateway relays chat while Cassandra is down)."""

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        results = await run_checks(checks)
        observe_readiness(results, optional)  # parley_ready (also fresh with PARLEY_METRICS_PORT)
        ready = all(ok for name, ok in results.items() if name not in optional)
        degraded = sorted(name for name, ok in results.items() if not ok and name in optional)
        status = ("degraded" if degraded else "ready") if ready else "not ready"
        body = {"status": status, "checks": results}
        if degraded:
            body["degraded"] = degraded
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(_: Request) -> Response:
        observe_readiness(await run_checks(checks, timeout=0.5), optional)  # parley_ready
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    routes = [Route("/healthz", healthz), Route("/readyz", readyz)]
    if not metrics_port:
        routes.append(Route("/metrics", metrics))
    return routes


def uvicorn_server(app: ASGIApp, settings: Settings) -> uvicorn.Server:
    """The service's server; also starts the separate metrics listener when configured."""
    return uvicorn.Server(uvicorn_config(app, settings))


def uvicorn_config(app: ASGIApp, settings: Settings) -> uvicorn.Config:
    """The server configuration every service uses (and the metrics listener, if any)."""
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.host)
        log.info("metrics on http://%s:%d/metrics", settings.host, settings.metrics_port)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        lifespan="on",
        ws="websockets-sansio",
        # permessage-deflate keeps a zlib compressor and decompressor per websocket, ~50 KB of
        # an idle connection's memory (bench/reports/memory.md), for chat frames of a few
        # hundred bytes; Socket.IO's own servers leave it off by default too.
        ws_per_message_deflate=False,
        # Engine.IO's heartbeat (ping_interval/ping_timeout) already finds dead peers; a second,
        # websocket-level keepalive would only add a timer and a frame per socket.
        ws_ping_interval=None,
        ws_ping_timeout=None,
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxy_list,
        timeout_graceful_shutdown=10,
    )
    return config


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run a service's ``main`` on uvloop (libuv's event loop: transport writes, timers and
    callbacks in C — the gateway's per-recipient writes cost about half as much CPU), or on
    asyncio's own loop with ``PARLEY_EVENT_LOOP=asyncio`` or where uvloop is missing."""
    choice = os.environ.get("PARLEY_EVENT_LOOP", "uvloop").strip().lower()
    if choice not in ("uvloop", "asyncio"):
        raise SystemExit(f"PARLEY_EVENT_LOOP: expected uvloop or asyncio, got {choice!r}")
    if choice == "uvloop":
        try:
            import uvloop
        except ImportError:  # not on this platform (Windows): asyncio's loop is correct too
            log.warning("uvloop is not installed; running on asyncio's event loop")
        else:
            uvloop.run(main)
            return
    asyncio.run(main)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger("cassandra").setLevel(logging.WARNING)
