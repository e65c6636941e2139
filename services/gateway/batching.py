"""Opt-in batching of ``chat:message`` for busy rooms (clients that connect with
``auth: {batch: true}``).

Batching happens where the sockets are (receiver side): every pod receives a room's
``chat:message`` once, delivers it to its ordinary sockets, and diverts it from the sockets
that opted in (``emit.py``) to its batcher, which sends to the local room ``<room>#batch``
(never published). A message for a quiet room goes out at once as a plain ``chat:message``
and opens a window; messages arriving during the window are held and sent when it closes as
one ``chat:batch [message, ...]`` (or a plain ``chat:message`` if only one came), and the
window stays open while messages keep arriving. So a quiet room adds no latency, a busy one
sends one event per window instead of one per message, and nobody opting in costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("parley.gateway.batching")
Emit = Callable[[str, Any, str], Awaitable[None]]  # (event, data, room)


def batch_room(room_id: str) -> str:
    return f"{room_id}#batch"


class Batcher:
    def __init__(self, emit: Emit, window_s: float = 0.05) -> None:
        self._emit = emit
        self._window = window_s
        self._pending: dict[str, list[Any]] = {}  # room -> held messages, while a window is open
        self._tasks: set[asyncio.Task[None]] = set()

    async def add(self, room_id: str, message: Any) -> None:
        held = self._pending.get(room_id)
        if held is not None:
            held.append(message)
            return
        self._pending[room_id] = []
        await self._emit("chat:message", message, batch_room(room_id))
        task = asyncio.create_task(self._window_loop(room_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _window_loop(self, room_id: str) -> None:
        try:
            while True:
                await asyncio.sleep(self._window)
                held = self._pending.get(room_id) or []
                if not held:
                    return
                self._pending[room_id] = []
                if len(held) == 1:
                    await self._emit("chat:message", held[0], batch_room(room_id))
                else:
                    await self._emit("chat:batch", held, batch_room(room_id))
        except Exception:
            log.exception("batch flush for %s failed", room_id)
        finally:
            self._pending.pop(room_id, None)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
