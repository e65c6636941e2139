"""Room emits written straight to the WebSocket transport: one frame, encoded once, many writes.

The stock path costs, per recipient, a put on the Engine.IO socket's send queue, a wake-up of
its writer task (and the task ``asyncio.wait_for`` makes around each ``queue.get``), an ASGI
``websocket.send`` dict, uvicorn's flow-control check and the ``websockets`` library framing
the same text again. Frames a server sends are never masked (RFC 6455 §5.1), so a room emit's
WebSocket frame is the same bytes for every recipient: encoded once per pod, it is written to
each recipient's transport with one ``transport.write``.

Order. A socket takes a direct write only while nothing of it is waiting or in flight on the
stock path: its send queue is empty *and* its writer task is parked on ``queue.get`` (after a
put the item leaves the queue before the writer has sent it; during that gap the writer is not
parked). Any other time — connecting, upgrading, writer busy, uvicorn's write buffer above its
high-water mark (``writable`` cleared), closing — the frame goes through the queue as before,
so every frame reaches the client in the order it was handed over. Engine.IO pings, acks and
single-socket emits always take the queue, which also keeps the writer's idle timeout (ping
interval + timeout) from firing on a socket that only ever gets direct writes.

Back-pressure. A client that stops reading fills its transport's buffer; uvicorn then pauses
writing, direct writes stop, frames queue, and the slow-consumer policy of ``emit`` (frames
queued) drops it. ``PARLEY_SLOW_CONSUMER_MAX_FRAMES`` thus bounds what a stuck client holds.

Needs uvicorn's ``websockets-sansio`` protocol (``transport``, ``writable``, ``close_sent``,
``disconnected``; the server's own choice in ``common/web.py``) and engine.io's ASGI
``WebSocket`` wrapper, queue and ``upgraded`` flag, at the versions pinned in
requirements.txt. Any other WebSocket implementation simply gets no direct writer and keeps
the stock path. Without permessage-deflate nothing else is needed; with it, an uncompressed
message (RSV1 clear) is still valid (RFC 7692 §6), so a direct frame never breaks a stream.
"""

from __future__ import annotations

from typing import Any

from engineio.async_drivers import asgi as eio_asgi

_TEXT_FIN = 0x81  # FIN + opcode 1 (text)


def text_frame(payload: str) -> bytes:
    """An unmasked, unfragmented WebSocket text frame carrying ``payload``."""
    data = payload.encode()
    n = len(data)
    if n < 126:
        return bytes((_TEXT_FIN, n)) + data
    if n < 65536:
        return bytes((_TEXT_FIN, 126)) + n.to_bytes(2, "big") + data
    return bytes((_TEXT_FIN, 127)) + n.to_bytes(8, "big") + data


class DirectWriter:
    """A WebSocket-upgraded Engine.IO socket's transport, for direct writes of whole frames."""

    __slots__ = ("_socket", "_protocol", "_transport", "_queue")

    def __init__(self, socket: Any, protocol: Any) -> None:
        self._socket = socket
        self._protocol = protocol
        self._transport = protocol.transport
        self._queue = socket.queue

    def try_write(self, frame: bytes) -> bool:
        """Write ``frame`` now if order allows (see the module doc); False: use the queue."""
        socket = self._socket
        if not socket.upgraded or socket.upgrading or socket.closing or socket.closed:
            return False  # a polling GET may still hold the queue's getter while upgrading
        queue = self._queue
        if queue._queue:  # frames waiting for the writer
            return False
        for getter in queue._getters:  # the writer parked on queue.get: nothing in flight
            if not getter.done():
                break
        else:
            return False
        protocol = self._protocol
        if protocol.close_sent or protocol.disconnected or not protocol.writable.is_set():
            return False
        transport = self._transport
        if transport.is_closing():
            return False
        transport.write(frame)
        return True


class DirectWebSocket(eio_asgi.WebSocket):
    """engine.io's ASGI WebSocket wrapper that also gives its socket a ``DirectWriter``."""

    def __init__(self, handler: Any, server: Any) -> None:
        super().__init__(handler, server)
        self._eio_socket = getattr(handler, "__self__", None)  # handler: socket._websocket_handler

    async def __call__(self, environ: dict[str, Any]) -> Any:
        protocol = getattr(environ.get("asgi.send"), "__self__", None)
        socket = self._eio_socket
        if socket is not None and _supported(protocol):
            socket.direct_writer = DirectWriter(socket, protocol)
        try:
            return await super().__call__(environ)
        finally:
            if socket is not None:
                socket.direct_writer = None


def _supported(protocol: Any) -> bool:
    return all(
        hasattr(protocol, name) for name in ("transport", "writable", "close_sent", "disconnected")
    )


def install(eio: Any) -> None:
    """Give ``eio`` (an engine.io ``AsyncServer`` in ``asgi`` mode) the direct-writer wrapper."""
    eio._async = {**eio._async, "websocket": DirectWebSocket}
