"""A test client for any one Socket.IO namespace (``/notifications``, ``/admin``, the Admin UI).

Records every event it receives, the ``connect_error`` data of a refused handshake, and
whether the server disconnected it (``tests/support/client.py`` is the ``/chat`` one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import socketio


class NamespaceClient:
    def __init__(
        self,
        url: str,
        namespace: str,
        auth: Any = None,
        transports: list[str] | None = None,
    ) -> None:
        self.url = url
        self.namespace = namespace
        self.auth = auth
        self.transports = transports or ["websocket"]
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self.connect_error: Any = None
        self.disconnected = False
        self._changed = asyncio.Condition()
        self.sio.on("*", self._record, namespace=namespace)
        self.sio.on("connect_error", self._refused, namespace=namespace)
        self.sio.on("disconnect", self._gone, namespace=namespace)

    async def _record(self, event: str, *data: Any) -> None:
        async with self._changed:
            self.events.append((event, data[0] if len(data) == 1 else (data or None)))
            self._changed.notify_all()

    async def _refused(self, data: Any = None) -> None:
        async with self._changed:
            self.connect_error = data
            self._changed.notify_all()

    async def _gone(self, *_: Any) -> None:
        async with self._changed:
            self.disconnected = True
            self._changed.notify_all()

    async def connect(self) -> NamespaceClient:
        await self.sio.connect(
            self.url,
            namespaces=[self.namespace],
            auth=self.auth,
            transports=self.transports,
            wait_timeout=10,
        )
        return self

    async def try_connect(self) -> Any:
        """Connect expecting a refusal; returns the ``connect_error`` data."""
        try:
            await self.connect()
        except socketio.exceptions.ConnectionError:
            pass
        else:
            raise AssertionError("connection was accepted")
        await self._wait(lambda: self.connect_error is not None, 5)
        return self.connect_error

    async def call(self, event: str, data: Any = None, timeout: float = 10) -> Any:
        return await self.sio.call(event, data, namespace=self.namespace, timeout=timeout)

    def received(self, event: str, where: Callable[[Any], bool] = lambda _: True) -> list[Any]:
        return [d for e, d in self.events if e == event and where(d)]

    async def wait_for(
        self, event: str, where: Callable[[Any], bool] = lambda _: True, timeout: float = 10
    ) -> Any:
        """The first received ``event`` whose data satisfies ``where`` (waiting for it)."""
        await self._wait(lambda: bool(self.received(event, where)), timeout)
        return self.received(event, where)[0]

    async def wait_disconnected(self, timeout: float = 10) -> None:
        await self._wait(lambda: self.disconnected, timeout)

    async def _wait(self, predicate: Callable[[], bool], timeout: float) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()
