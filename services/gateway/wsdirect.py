"""Engine.IO over WebSocket without a resident writer task: frames encoded once, written
straight to the transport.

engine.io's stock WebSocket loop keeps, per connection, a writer task parked on the send
queue (and a task plus a timer around every ``queue.get`` and every read), and sends each
packet through the queue, a task wake-up, an ASGI ``websocket.send`` dict, uvicorn's flow
control and the ``websockets`` library's framing. A ``Session`` serves the same Engine.IO v4
protocol with less of both:

- **Writes.** A packet becomes a WebSocket frame at once, whenever nothing is queued before
  it (a server's frames are never masked, RFC 6455 §5.1, so a room emit's frame is the same
  bytes for every recipient: ``emit.py`` encodes it once per pod and calls ``try_write`` per
  recipient); the frames a session gets during one event-loop pass go out together at the end
  of the pass with one ``transport.write`` (``Flusher``). Only when uvicorn has paused writing (the
  client reads slower than it is sent to) or the session is closing do packets queue; a drain
  task then exists just until the queue is empty, and writes in order. A client that stops
  reading therefore fills its transport buffer, then its queue, and the slow-consumer policy
  of ``emit.py`` (``PARLEY_SLOW_CONSUMER_MAX_FRAMES``) drops it.
- **Reads.** One loop awaits the next message in the connection's own ASGI task; no task or
  timer per read. A dead peer is found by the Engine.IO heartbeat (engine.io's service task
  closes a socket whose pong is late); closing a session ends its WebSocket as well, so the
  read loop cannot outlive it.
- **Upgrades** (a client that starts on long-polling): the probe is answered, the pending
  poll released with a NOOP, and after the client's UPGRADE packet whatever is still queued
  for the polling transport is moved, in order, to the session's queue.
- **Closing**: a ``None`` in the queue (engine.io's and ``transport.drop``'s way to end a
  writer) closes the WebSocket after everything queued before it.

The session replaces the engine.io socket's ``send``, ``close`` and ``queue`` for the life of
the connection (instance attributes; the class is untouched). Needs uvicorn's
``websockets-sansio`` protocol (``transport``, ``writable``, ``close_sent``, ``disconnected``;
the server's choice in ``common/web.py``) and engine.io's ``AsyncSocket`` at the versions
pinned in requirements.txt; with any other WebSocket implementation the stock loop runs.
Without permessage-deflate nothing else is needed; with it an uncompressed message (RSV1
clear) is still valid (RFC 7692 §6).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio.async_drivers import asgi as eio_asgi

from .transport import take_all

log = logging.getLogger("parley.gateway.ws")

_TEXT, _BINARY = 0x81, 0x82  # FIN + opcode 1 (text) / 2 (binary)


def _frame(first: int, data: bytes) -> bytes:
    n = len(data)
    if n < 126:
        return bytes((first, n)) + data
    if n < 65536:
        return bytes((first, 126)) + n.to_bytes(2, "big") + data
    return bytes((first, 127)) + n.to_bytes(8, "big") + data


def text_frame(payload: str) -> bytes:
    """An unmasked, unfragmented WebSocket text frame carrying ``payload``."""
    return _frame(_TEXT, payload.encode())


def frame_of(encoded: str | bytes) -> bytes:
    """The WebSocket frame of an encoded Engine.IO packet (text, or a binary attachment)."""
    return text_frame(encoded) if isinstance(encoded, str) else _frame(_BINARY, encoded)


class SendQueue(asyncio.Queue[Any]):
    """An engine.io socket's send queue that wakes its session's drain on every put."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self._putters = ()  # unbounded: a put never waits, so no deque of putters is needed
        self._session = session

    def put_nowait(self, item: Any) -> None:
        super().put_nowait(item)
        self._session.kick()


class Flusher:
    """Writes every session's frames of one event-loop pass at the end of the pass, one
    ``transport.write`` per session: when several room emits run in the same pass (the
    appends of concurrent senders complete together), a recipient costs one system call, not
    one per message. Anything queued or closing is scheduled after the flush, so order holds."""

    def __init__(self) -> None:
        self.dirty: list[Session] = []

    def add(self, session: Session) -> None:
        if not self.dirty:
            asyncio.get_running_loop().call_soon(self.flush)
        self.dirty.append(session)

    def flush(self) -> None:
        dirty, self.dirty = self.dirty, []
        for session in dirty:
            try:
                session.flush()
            except Exception:  # one broken transport must not keep the others' frames
                log.exception("%s: writing frames failed", session.socket.sid)


class Session:
    """One WebSocket connection's Engine.IO session (see the module doc)."""

    __slots__ = (
        "socket",
        "ws",
        "protocol",
        "transport",
        "queue",
        "drain",
        "ended",
        "pending",
        "flusher",
        "_stock_close",
    )

    def __init__(self, socket: Any, ws: Any, protocol: Any, flusher: Flusher) -> None:
        self.socket = socket
        self.ws = ws
        self.protocol = protocol
        self.transport = protocol.transport
        self.queue = SendQueue(self)
        self.drain: asyncio.Task[None] | None = None
        self.ended = False  # the WebSocket was closed by this session
        self.pending: list[bytes] = []  # frames of this event-loop pass, written by flush()
        self.flusher = flusher
        self._stock_close = socket.close

    def writable(self) -> bool:
        """True if a frame written now goes out in order, after everything sent before it."""
        protocol = self.protocol
        return (
            self.drain is None
            and self.queue.empty()
            and not self.ended
            and protocol.writable.is_set()
            and not protocol.close_sent
            and not protocol.disconnected
            and not self.transport.is_closing()
        )

    def try_write(self, frame: bytes) -> bool:
        """Write ``frame`` (at the end of this event-loop pass) if order allows; False: the
        caller queues it instead."""
        if not self.writable():
            return False
        self._append(frame)
        return True

    def _append(self, frame: bytes) -> None:
        if not self.pending:
            self.flusher.add(self)
        self.pending.append(frame)

    def flush(self) -> None:
        """One write for every frame of this pass (several room emits often land in one)."""
        frames, self.pending = self.pending, []
        if not frames or self.protocol.close_sent or self.transport.is_closing():
            return
        self.transport.write(frames[0] if len(frames) == 1 else b"".join(frames))

    # --- replacing the engine.io socket's send / close ----------------------------------

    async def send(self, pkt: Any) -> None:
        if not await self.socket.check_ping_timeout():
            return
        if self.writable():
            self._append(frame_of(pkt.encode()))
        else:
            self.queue.put_nowait(pkt)  # the drain encodes it when it is its turn

    async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        await self._stock_close(wait=wait, abort=abort, reason=reason)
        self.queue.put_nowait(None)  # then end the WebSocket too (after a CLOSE packet)

    # --- the drain ----------------------------------------------------------------------

    def kick(self) -> None:
        if self.drain is None and not self.ended:
            self.drain = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while True:
                try:
                    pkt = self.queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                self.queue.task_done()
                if pkt is None:
                    await self._end()
                    return
                try:
                    await self.ws.send(pkt.encode())  # waits while uvicorn has paused writing
                except Exception:
                    await self._end()
                    return
        finally:
            self.drain = None

    async def _end(self) -> None:
        if not self.ended:
            self.ended = True
            await self.ws.close()
        take_all(self.queue)  # nothing more can be sent: free what is left

    # --- the connection -----------------------------------------------------------------

    async def run(self) -> None:
        socket = self.socket
        if socket.connected and not await self._upgrade():
            return
        socket.connected = socket.upgraded = True
        for pkt in take_all(socket.queue):  # the OPEN packet, or what polling left
            self.queue.put_nowait(pkt)
        socket.queue, socket.send, socket.close = self.queue, self.send, self.close
        socket.direct = self
        try:
            await self._read()
        finally:
            socket.direct = None
            self.queue.put_nowait(None)
            drain = self.drain
            if drain is not None:
                await asyncio.wait([drain])
            await socket.close(wait=False, abort=True, reason=socket.server.reason.TRANSPORT_CLOSE)

    async def _upgrade(self) -> bool:
        """The Engine.IO v4 upgrade of a long-polling session: probe, NOOP, UPGRADE."""
        socket = self.socket
        socket.upgrading = True
        try:
            probe = await self._next()
            if probe != "2probe":
                log.info("%s: websocket upgrade without a probe", socket.sid)
                return False
            await self.ws.send("3probe")
            await socket.queue.put(eio_packet.Packet(eio_packet.NOOP))  # ends the pending poll
            if await self._next() != "5":
                log.info("%s: websocket upgrade without an UPGRADE packet", socket.sid)
                return False
            return True
        except (OSError, ValueError):
            return False
        finally:
            socket.upgrading = False

    async def _next(self) -> Any:
        data = await self.ws.wait()  # OSError once the client is gone
        if data is not None and len(data) > self.socket.server.max_http_buffer_size:
            raise ValueError("packet is too large")
        return data

    async def _read(self) -> None:
        socket = self.socket
        while True:
            try:
                data = await self._next()
            except (OSError, ValueError, asyncio.CancelledError):
                return
            if data is None:
                return
            try:
                await socket.receive(eio_packet.Packet(encoded_packet=data))
            except eio_exceptions.UnknownPacketError:
                pass
            except eio_exceptions.SocketIsClosedError:
                return
            except Exception:
                log.exception("%s: error handling a received packet", socket.sid)


class DirectWebSocket(eio_asgi.WebSocket):
    """engine.io's ASGI WebSocket wrapper, serving the connection with a ``Session``."""

    def __init__(self, handler: Any, server: Any) -> None:
        super().__init__(handler, server)
        self._eio_socket = getattr(handler, "__self__", None)  # handler: socket._websocket_handler

    async def __call__(self, environ: dict[str, Any]) -> Any:
        socket = self._eio_socket
        send: Any = environ.get("asgi.send")
        protocol = getattr(send, "__self__", None)
        if socket is None or not _supported(protocol):
            return await super().__call__(environ)
        self.asgi_receive = environ["asgi.receive"]
        self.asgi_send = send
        await send({"type": "websocket.accept"})
        _shed_handshake(protocol, environ)
        await Session(socket, self, protocol, socket.server.parley_flusher).run()
        return ""


def _supported(protocol: Any) -> bool:
    return all(
        hasattr(protocol, name)
        for name in ("transport", "writable", "close_sent", "disconnected", "request")
    )


# What is kept of a WebSocket's WSGI-style environ once it is open: engine.io's response
# path reads asgi.*; python-socketio hands the environ to later namespace connects (Parley's
# handlers read nothing of it) and the Admin UI shows address, query, URL and a few headers.
_ENVIRON_KEPT = frozenset(
    (
        "asgi.scope",
        "asgi.send",
        "asgi.receive",
        "REMOTE_ADDR",
        "REMOTE_PORT",
        "REQUEST_METHOD",
        "PATH_INFO",
        "QUERY_STRING",
        "wsgi.url_scheme",
        "HTTP_HOST",
        "HTTP_ORIGIN",
        "HTTP_USER_AGENT",
    )
)


def _shed_handshake(protocol: Any, environ: dict[str, Any]) -> None:
    """Drop what a handshake leaves behind for the life of the connection: uvicorn's copy of
    the request and response, and the environ's copies of every header (engine.io builds it,
    python-socketio keeps it per session). About 3 KB per connection (bench/reports/memory.md)."""
    protocol.request = None
    protocol.response = None
    kept = {k: v for k, v in environ.items() if k in _ENVIRON_KEPT}
    environ.clear()  # the same dict python-socketio holds: shrink it in place
    environ.update(kept)


def direct_of(socket: Any) -> Session | None:
    """The session writing ``socket``'s frames directly, if it has one."""
    return getattr(socket, "direct", None)


def install(eio: Any) -> None:
    """Serve ``eio``'s (an engine.io ``AsyncServer`` in ``asgi`` mode) WebSockets with
    sessions."""
    eio._async = {**eio._async, "websocket": DirectWebSocket}
    eio.parley_flusher = Flusher()
