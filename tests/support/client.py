"""A test client over python-socketio's AsyncClient that records every event it receives."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import socketio

NAMESPACE = "/chat"


class ChatClient:
    def __init__(self, url: str, token: str | None, transports: list[str] | None = None) -> None:
        self.url = url
        self.token = token
        self.transports = transports or ["websocket"]
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self.connect_error: Any = None
        self.auth_extra: dict[str, Any] = {}
        self._changed = asyncio.Condition()
        self.sio.on("*", self._record, namespace=NAMESPACE)
        self.sio.on("connect_error", self._refused, namespace=NAMESPACE)

    async def _record(self, event: str, data: Any = None) -> None:
        async with self._changed:
            self.events.append((event, data))
            self._changed.notify_all()

    async def _refused(self, data: Any = None) -> None:
        async with self._changed:
            self.connect_error = data
            self._changed.notify_all()

    async def connect(self) -> ChatClient:
        auth = {"token": self.token} if self.token is not None else None
        if self.auth_extra:
            auth = {**(auth or {}), **self.auth_extra}
        await self.sio.connect(
            self.url, namespaces=[NAMESPACE], auth=auth, transports=self.transports, wait_timeout=10
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
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: self.connect_error is not None), 5
            )
        return self.connect_error

    async def call(self, event: str, data: Any = None, timeout: float = 10) -> Any:
        return await self.sio.call(event, data, namespace=NAMESPACE, timeout=timeout)

    async def emit(self, event: str, data: Any = None) -> None:
        await self.sio.emit(event, data, namespace=NAMESPACE)

    def received(self, event: str, where: Callable[[Any], bool] = lambda _: True) -> list[Any]:
        return [d for e, d in self.events if e == event and where(d)]

    async def wait_for(
        self, event: str, where: Callable[[Any], bool] = lambda _: True, timeout: float = 10
    ) -> Any:
        """The first received ``event`` whose data satisfies ``where`` (waiting for it)."""
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: bool(self.received(event, where))), timeout
            )
        return self.received(event, where)[0]

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()
