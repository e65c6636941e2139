"""The Socket.IO server the gateway runs: python-socketio's ``AsyncServer`` with the input
limits an Internet-facing server needs.

- **Namespaces**: only the ones Parley serves accept connections (``/chat``,
  ``/notifications``, ``/admin`` and the Admin UI's when it is on). The root namespace ``/``
  and any other get ``connect_error`` "Unable to connect" — nothing unauthenticated can open a
  namespace.
- **Binary attachments**: a packet may announce at most ``MAX_ATTACHMENTS`` binary frames
  (``chat:file`` needs one), and the frames buffered for one socket's pending packet may
  total at most ``max_buffered`` bytes. A client that asks for more is disconnected and the
  reason logged (python-socketio would otherwise buffer every following frame until the
  socket closes).
- **Undecodable packets** (``ValueError`` from the packet parser: a bad header, a binary frame
  nobody announced) disconnect the socket with one log line instead of a traceback per
  packet, as the Node server does on a parse error.
- **Direct WebSocket writes** for room emits (``wsdirect.py``).

These hooks use python-socketio internals (``packet_class``, ``_handle_eio_message``,
``_binary_packet``) of the pinned version; ``tests/e2e/test_security_wire.py`` checks them
with raw Engine.IO frames.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import socketio
from socketio import packet

from . import metrics, wsdirect

log = logging.getLogger("parley.gateway.wire")
MAX_ATTACHMENTS = 1


class InputRefused(ValueError):
    """The client broke an input limit; the socket is disconnected with this reason."""


class BoundedPacket(packet.Packet):
    """A Socket.IO packet that refuses more than ``MAX_ATTACHMENTS`` binary attachments and
    counts the bytes of those it buffers."""

    def decode(self, encoded_packet: Any) -> int:
        count = super().decode(encoded_packet)
        if count > MAX_ATTACHMENTS:
            raise InputRefused(f"packet announces {count} attachments (max {MAX_ATTACHMENTS})")
        self.buffered_bytes = 0
        return int(count)

    def add_attachment(self, attachment: Any) -> bool:
        self.buffered_bytes = getattr(self, "buffered_bytes", 0) + len(attachment)
        return bool(super().add_attachment(attachment))


class ParleyServer(socketio.AsyncServer):
    def __init__(self, *, served_namespaces: list[str], max_buffered: int, **kwargs: Any):
        super().__init__(serializer=BoundedPacket, namespaces=served_namespaces, **kwargs)
        self.max_buffered = max_buffered
        self._refused_eio: set[str] = set()
        if getattr(self.eio, "async_mode", None) == "asgi":
            wsdirect.install(self.eio)  # room emits written straight to WebSocket transports

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        if eio_sid in self._refused_eio:  # closing: what still arrives is read and dropped
            return
        try:
            pending = self._binary_packet.get(eio_sid)
            if pending is not None and (
                getattr(pending, "buffered_bytes", 0) + len(data) > self.max_buffered
            ):
                raise InputRefused(f"attachments over {self.max_buffered} bytes")
            await super()._handle_eio_message(eio_sid, data)
        except (ValueError, TypeError, RecursionError) as exc:  # InputRefused, parse errors
            await self._refuse(eio_sid, exc)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        self._binary_packet.pop(eio_sid, None)
        if eio_sid in self._refused_eio:  # frames may still be in flight: drop them a while
            asyncio.get_running_loop().call_later(60, self._refused_eio.discard, eio_sid)
        socket = self.eio.sockets.get(eio_sid)
        if socket is not None and not socket.upgraded:
            # A long-polling session that ended (the client's CLOSE, a ping timeout) would
            # keep its pending GET open until the poll times out (ping interval + timeout),
            # and python-socketio's client waits that long in disconnect(): release it now.
            socket.queue.put_nowait(None)
        await super()._handle_eio_disconnect(eio_sid, reason)

    async def _refuse(self, eio_sid: str, exc: BaseException) -> None:
        self._binary_packet.pop(eio_sid, None)
        self._refused_eio.add(eio_sid)
        reason = "input_limit" if isinstance(exc, InputRefused) else "parse_error"
        metrics.INPUT_REFUSED.labels(reason).inc()
        log.warning("disconnecting eio_sid=%s (%s): %s", eio_sid, reason, exc)
        socket = self.eio.sockets.get(eio_sid)
        await self.eio.disconnect(eio_sid)
        if socket is not None:
            # Engine.IO waits for the client to close after its CLOSE packet; an attacker
            # never does, so end the transport now (the writer closes the WebSocket).
            await socket.queue.put(None)
