"""A small typed client of Parley's Server API (``/api/v1``; PROTOCOL.md "Server API").

The emitter of the Parley ecosystem: a backend service publishes into rooms, moves users
between rooms and reads presence with it. Async (``httpx.AsyncClient``)::

    async with ParleyApi("http://gateway:8000", key) as api:
        message_id = await api.publish("lobby", "match found", client_msg_id="m-1")
        await api.join("game-7", "u-42")
        await api.event("game-7", "app:match", {"players": ["u-42"]})

Every non-2xx answer raises ``ApiError`` (``status``, ``error``, ``message``; ``retry_after``
for 429/503). Path segments are URL-encoded here, so room and user ids may hold ``:``.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

__all__ = ["ApiError", "Member", "ParleyApi", "Presence"]


class ApiError(Exception):
    def __init__(
        self, status: int, error: str, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{status} {error}: {message}")
        self.status, self.error, self.message, self.retry_after = (
            status,
            error,
            message,
            retry_after,
        )


@dataclass(frozen=True)
class Member:
    user_id: str
    username: str
    online: bool
    sockets: int


@dataclass(frozen=True)
class Presence:
    user_id: str
    online: bool
    sockets: int
    since: str | None = None


def _seg(value: str) -> str:
    return quote(value, safe="")


class ParleyApi:
    def __init__(
        self,
        base_url: str,
        key: str,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {key}"},
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> ParleyApi:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        response = await self._http.request(method, path, json=json, params=params)
        if response.status_code >= 400:
            try:
                body = response.json()
                error, message = str(body["error"]), str(body["message"])
            except (ValueError, KeyError, TypeError):
                error, message = "http_error", response.text[:200]
            retry = response.headers.get("retry-after")
            raise ApiError(response.status_code, error, message, float(retry) if retry else None)
        return response.json()

    # --- publish --------------------------------------------------------------------------

    async def publish(
        self,
        room_id: str,
        text: str,
        *,
        user_id: str | None = None,
        client_msg_id: str | None = None,
        reply_to: str | None = None,
    ) -> str:
        """A chat message; returns its id once durable (a retry with the same
        ``client_msg_id`` returns the first id)."""
        body: dict[str, Any] = {"text": text}
        if user_id is not None:
            body["userId"] = user_id
        if client_msg_id is not None:
            body["clientMsgId"] = client_msg_id
        if reply_to is not None:
            body["replyTo"] = reply_to
        answer = await self._call("POST", f"/rooms/{_seg(room_id)}/messages", json=body)
        return str(answer["messageId"])

    async def event(self, room_id: str, event: str, data: Any = None) -> None:
        """An ephemeral ``app:`` event to the room's sockets."""
        await self._call(
            "POST", f"/rooms/{_seg(room_id)}/events", json={"event": event, "data": data}
        )

    async def notify(self, user_id: str, type_: str, **fields: Any) -> None:
        """A ``notification`` (``type`` must start with ``app:``) to the user's sockets."""
        await self._call(
            "POST", f"/users/{_seg(user_id)}/notifications", json={"type": type_, **fields}
        )

    # --- rooms ----------------------------------------------------------------------------

    async def join(self, room_id: str, user_id: str) -> int:
        """Store the user's membership (kept while offline: their later sockets are joined on
        connect) and join every live socket; returns how many are in the room (0 offline)."""
        path = f"/rooms/{_seg(room_id)}/members/{_seg(user_id)}"
        return int((await self._call("PUT", path))["sockets"])

    async def leave(self, room_id: str, user_id: str) -> int:
        """End the stored membership; every socket leaves the room; returns how many remain."""
        path = f"/rooms/{_seg(room_id)}/members/{_seg(user_id)}"
        return int((await self._call("DELETE", path))["sockets"])

    async def disconnect(self, user_id: str) -> int:
        """Closes every socket of the user on every pod; returns how many were live."""
        return int((await self._call("POST", f"/users/{_seg(user_id)}/disconnect"))["sockets"])

    # --- read -----------------------------------------------------------------------------

    async def members(self, room_id: str) -> list[Member]:
        answer = await self._call("GET", f"/rooms/{_seg(room_id)}/members")
        return [
            Member(m["userId"], m["username"], bool(m["online"]), int(m["sockets"]))
            for m in answer["members"]
        ]

    async def history(
        self, room_id: str, before: str | None = None, limit: int | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        """A page oldest-first and whether older messages exist (as ``chat:history``)."""
        params: dict[str, Any] = {}
        if before is not None:
            params["before"] = before
        if limit is not None:
            params["limit"] = limit
        answer = await self._call("GET", f"/rooms/{_seg(room_id)}/messages", params=params)
        return list(answer["messages"]), bool(answer["hasMore"])

    async def presence(self, user_id: str) -> Presence:
        answer = await self._call("GET", f"/users/{_seg(user_id)}/presence")
        return Presence(
            answer["userId"], bool(answer["online"]), int(answer["sockets"]), answer.get("since")
        )

    async def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document (served without a key)."""
        answer = await self._call("GET", "/openapi.json")
        assert isinstance(answer, dict)
        return answer
