"""Graceful drain: what a gateway does between SIGTERM and exit (a rolling restart, a scale-in).

Order, matching Kubernetes (``preStop`` → SIGTERM → ``terminationGracePeriodSeconds``):
1. At once: ``/readyz`` answers 503 (``draining``), so load balancers stop sending new clients;
   everything keeps working for connected ones.
2. For ``PARLEY_DRAIN_SECONDS``: keep serving, while endpoints and proxies notice (in-flight
   acks are answered, messages still flow).
3. Over ``PARLEY_DRAIN_DISCONNECT_SECONDS``: close the clients' Engine.IO transports in
   jittered batches (a transport close, not a Socket.IO server disconnect, so every client
   library reconnects by itself — to another pod — and resyncs with ``since``). Their presence
   sessions end normally, so a user who reconnects within the grace period is never announced
   offline.
4. Then the server stops; lifespan shutdown clears what is left of this pod's presence.
A second SIGTERM (or SIGINT at any time) skips the drain.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import socket
import time
from types import FrameType

import socketio
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from . import metrics, transport

log = logging.getLogger("parley.gateway.drain")
BATCH_INTERVAL_S = 0.1  # between disconnect batches (± 50 % jitter)


class Drain:
    def __init__(self, sio: socketio.AsyncServer, wait_s: float, disconnect_s: float) -> None:
        self.sio = sio
        self.wait_s = wait_s
        self.disconnect_s = disconnect_s
        self.draining = False

    async def ready(self) -> bool:
        """The ``draining`` readiness check: false from the first SIGTERM on."""
        return not self.draining

    async def run(self) -> None:
        started = time.monotonic()
        self.draining = True
        metrics.DRAINING.set(1)
        sockets = len(self.sio.eio.sockets)
        log.info(
            "draining: not ready; serving %d sockets for %.1fs, then disconnecting over %.1fs",
            sockets,
            self.wait_s,
            self.disconnect_s,
        )
        await asyncio.sleep(self.wait_s)
        closed = await self.disconnect_all()
        log.info(
            "drained: %d transports closed; drain took %.1fs", closed, time.monotonic() - started
        )

    async def disconnect_all(self) -> int:
        eio_sids = list(self.sio.eio.sockets)
        random.shuffle(eio_sids)
        rounds = max(1, int(self.disconnect_s / BATCH_INTERVAL_S))
        size = max(1, -(-len(eio_sids) // rounds))  # ceil
        closed = 0
        for start in range(0, len(eio_sids), size):
            batch = eio_sids[start : start + size]
            await asyncio.gather(*(self._close(s) for s in batch), return_exceptions=True)
            closed += len(batch)
            metrics.DRAIN_DISCONNECTS.inc(len(batch))
            if start + size < len(eio_sids):
                await asyncio.sleep(BATCH_INTERVAL_S * random.uniform(0.5, 1.5))
        return closed

    async def _close(self, eio_sid: str) -> None:
        await transport.drop(self.sio.eio, eio_sid)  # clients reconnect to another pod


class DrainingServer(uvicorn.Server):
    """uvicorn, with SIGTERM starting the drain and the server exiting when it is done."""

    def __init__(self, config: uvicorn.Config, drain: Drain) -> None:
        super().__init__(config)
        self.drain = drain
        self._drain_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and self._drain_task is None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._start_drain)
            return
        super().handle_exit(sig, frame)

    def _start_drain(self) -> None:
        if self._drain_task is not None:
            return

        async def drain_then_exit() -> None:
            try:
                await self.drain.run()
            except Exception:
                log.exception("drain failed; shutting down")
            super(DrainingServer, self).handle_exit(signal.SIGTERM, None)

        self._drain_task = asyncio.ensure_future(drain_then_exit())


class DrainGate:
    """ASGI wrapper: while draining, new Engine.IO sessions are refused (503 for a polling
    handshake, a refused upgrade for a WebSocket-only one), so a proxy retries another gateway
    (nginx ``proxy_next_upstream http_503 http_403``) and clients never land on a pod about to
    close them. Requests of existing sessions (``sid=``) pass."""

    def __init__(self, app: ASGIApp, drain: Drain, prefix: str = "/socket.io") -> None:
        self.app = app
        self.drain = drain
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.drain.draining
            and scope["type"] in ("http", "websocket")
            and scope["path"].startswith(self.prefix)
            and b"sid=" not in scope.get("query_string", b"")
        ):
            if scope["type"] == "http":
                await send(
                    {
                        "type": "http.response.start",
                        "status": 503,
                        "headers": [(b"content-type", b"text/plain"), (b"retry-after", b"1")],
                    }
                )
                await send({"type": "http.response.body", "body": b"draining"})
            else:
                await send({"type": "websocket.close", "code": 1013})
            return
        await self.app(scope, receive, send)
