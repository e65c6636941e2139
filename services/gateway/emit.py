"""A cheaper room emit for python-socketio managers.

The stock ``AsyncManager.emit`` encodes a broadcast once but then starts one asyncio task per
recipient and waits for all of them. Handing an Engine.IO packet to a socket is only a put on
its unbounded send queue, which never suspends, so here the packets are handed over in a plain
loop: same order, same packets, no task per recipient. Emits with callbacks (per-recipient ack
ids) keep the stock path. Relies on python-socketio internals (``packet_class``,
``get_participants``, ``_send_eio_packet``), so the version is pinned in requirements.txt.
"""

from __future__ import annotations

from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet

from . import metrics


class DirectEmitMixin:
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
        send = self.server._send_eio_packet  # type: ignore[attr-defined]
        delivered = 0
        for sid, eio_sid in list(self.get_participants(namespace, room)):  # type: ignore[attr-defined]
            if sid not in skip:
                delivered += 1
                for frame in frames:
                    await send(eio_sid, frame)
        metrics.DELIVERIES.labels(namespace).inc(delivered)
        return None


class DirectEmitManager(DirectEmitMixin, socketio.AsyncManager):
    """The single-node manager."""
