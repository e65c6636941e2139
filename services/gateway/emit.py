"""A cheaper room emit for python-socketio managers, and receiver-side diversion.

The stock ``AsyncManager.emit`` encodes a broadcast once but then starts one asyncio task per
recipient and waits for all of them. Handing an Engine.IO packet to a socket is only a put on
its unbounded send queue, which never suspends, so here the packets are handed over in a plain
loop: same order, same packets, no task per recipient. Emits with callbacks (per-recipient ack
ids) keep the stock path. Each recipient's Engine.IO socket is looked up once and handed the
frames directly (the stock ``_send_eio_packet`` looks it up again per frame). Relies on
python-socketio / engine.io internals (``packet_class``, ``get_participants``, ``eio.sockets``,
``socket.send``), so the versions are pinned in requirements.txt.

The frame is encoded once per pod and the same bytes go to every local recipient: as one
WebSocket frame written straight to each transport where order allows (``wsdirect.py``), else
as the Engine.IO packet through the socket's ``send`` (its queue, for long-polling clients).

A *diversion* takes one event of one namespace away from a set of sockets and hands it to a
handler once per emit instead (``chat:message`` for sockets that opted in to ``chat:batch``:
the batcher collects and sends them). The emit itself is published and received once either
way: batching costs no extra Redis traffic, and nothing when nobody opted in.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet

from services.common.model import RESERVED_ROOM_CHAR

from . import metrics, transport, wsdirect

log = logging.getLogger("parley.gateway.emit")

Divert = Callable[[Any, Any], Awaitable[None]]  # (room, data) -> None


class DirectEmitMixin:
    diverts: dict[tuple[str, str], tuple[set[str], Divert]]
    # Slow consumers: a socket whose send queue holds more frames than this (its client does
    # not read, or reads slower than its rooms talk) is dropped — its transport closed, the
    # frames discarded — instead of growing the pod's memory without bound; it reconnects and
    # resyncs with ``since``. PARLEY_SLOW_CONSUMER_MAX_FRAMES; counted in
    # parley_gateway_slow_consumers_dropped_total.
    max_queued_frames: int = 2000

    def divert(self, namespace: str, event: str, sids: set[str], handler: Divert) -> None:
        """Hand ``event`` emits in ``namespace`` to ``handler`` instead of the ``sids``."""
        if not hasattr(self, "diverts"):
            self.diverts = {}
        self.diverts[(namespace, event)] = (sids, handler)

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None:
            await super().emit(  # type: ignore[misc]  # the manager class it is mixed into
                event,
                data,
                namespace,
                room=room,
                skip_sid=skip_sid,
                callback=callback,
                to=to,
                **kwargs,
            )
            return
        room = to or room
        if namespace not in self.rooms:  # type: ignore[attr-defined]
            return None
        args = list(data) if isinstance(data, tuple) else ([] if data is None else [data])
        skip = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        encoded = self.server.packet_class(  # type: ignore[attr-defined]
            packet.EVENT, namespace=namespace, data=[event, *args]
        ).encode()
        frames = [
            eio_packet.Packet(eio_packet.MESSAGE, p)
            for p in (encoded if isinstance(encoded, list) else [encoded])
        ]
        # one text frame (no binary attachment): the same WebSocket bytes for every recipient
        wire = wsdirect.text_frame(frames[0].encode()) if len(frames) == 1 else None
        sockets = self.server.eio.sockets  # type: ignore[attr-defined]
        diverted_sids, handler = getattr(self, "diverts", {}).get((namespace, event), (None, None))
        if isinstance(room, str) and RESERVED_ROOM_CHAR in room:  # the handler's own sends
            diverted_sids = handler = None
        delivered = diverted = direct = 0
        for sid, eio_sid in list(self.get_participants(namespace, room)):  # type: ignore[attr-defined]
            if sid in skip:
                continue
            if diverted_sids and sid in diverted_sids:
                diverted += 1
                continue
            socket = sockets.get(eio_sid)  # one lookup: the socket is handed the frames itself
            if socket is None or socket.closed:
                continue
            if wire is not None:
                session = wsdirect.direct_of(socket)
                if session is not None and session.try_write(wire):
                    direct += 1
                    continue
            if socket.queue.qsize() >= self.max_queued_frames:
                await self._drop_slow(eio_sid, socket.queue.qsize())
                continue
            delivered += 1
            for frame in frames:
                await socket.send(frame)
        metrics.DELIVERIES.labels(namespace).inc(delivered + direct)
        if direct:
            metrics.DIRECT_WRITES.inc(direct)
        if diverted and handler is not None:
            await handler(room, data)
        return None

    async def _drop_slow(self, eio_sid: str, queued: int) -> None:
        eio = self.server.eio  # type: ignore[attr-defined]
        if await transport.drop(eio, eio_sid, discard_queued=True) is not None:
            metrics.SLOW_CONSUMERS.inc()
            log.warning("dropping slow consumer eio_sid=%s: %d frames queued", eio_sid, queued)


class DirectEmitManager(DirectEmitMixin, socketio.AsyncManager):
    """The single-node manager."""
