"""Dropping a client's Engine.IO transport without a goodbye, the way a dying pod would: every
client library reads it as "transport close" and reconnects (a Socket.IO DISCONNECT reads as
"io server disconnect", an Engine.IO CLOSE as a server close; clients give up on both). The
disconnect handlers still run, so presence ends the session normally. Used by the drain and by
the slow-consumer policy. Relies on engine.io's socket internals (``close(abort=True)``, the
send ``queue``) of the pinned version."""

from __future__ import annotations

import asyncio
from typing import Any


def take_all(queue: asyncio.Queue[Any]) -> list[Any]:
    """Empty an Engine.IO socket's send queue (marking each item done); returns the items."""
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
        queue.task_done()
    return items


async def drop(eio: Any, eio_sid: str, discard_queued: bool = False) -> Any:
    """Drop ``eio_sid``'s transport; returns its socket, or None if it was already gone.
    ``discard_queued`` frees the frames waiting in its send queue first."""
    socket = eio.sockets.pop(eio_sid, None)
    if socket is None:
        return None
    if discard_queued:
        take_all(socket.queue)
    await socket.close(wait=False, abort=True, reason=eio.reason.SERVER_DISCONNECT)
    await socket.queue.put(None)  # ends the WebSocket writer now, not at ping timeout
    return socket
