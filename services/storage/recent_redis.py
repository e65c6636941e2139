"""Redis ``RecentLog``: one sorted set per room ordered by message id (lexicographic), and one
set of readers per recently read message, all expiring after ``RECENT_TTL_S``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError

from services.common.errors import Unavailable
from services.common.model import Message, Receipt
from services.common.redis_io import AnyRedis
from services.storage.recent import RECENT_PER_ROOM, RECENT_TTL_S

SEP = "\x1f"


def _member(message: Message) -> str:
    return message.id + SEP + message.to_record().decode()


def _decode(members: list[str]) -> list[Message]:
    return [Message.from_record(m.split(SEP, 1)[1].encode()) for m in members]


class RedisRecentLog:
    def __init__(self, redis: AnyRedis, prefix: str) -> None:
        self._redis = redis
        self._p = prefix

    def _room(self, room_id: str) -> str:
        return f"{self._p}recent:{room_id}"

    def _reads(self, room_id: str, message_id: str) -> str:
        return f"{self._p}reads:{room_id}:{message_id}"

    async def add(self, message: Message) -> None:
        key = self._room(message.room_id)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zadd(key, {_member(message): 0})
                pipe.zremrangebyrank(key, 0, -(RECENT_PER_ROOM + 1))
                pipe.expire(key, RECENT_TTL_S)
                await pipe.execute()
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc

    async def remove(self, message: Message) -> None:
        try:
            await self._redis.zrem(self._room(message.room_id), _member(message))
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc

    async def add_reader(self, receipt: Receipt) -> None:
        key = self._reads(receipt.room_id, receipt.message_id)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.sadd(key, receipt.user_id)
                pipe.expire(key, RECENT_TTL_S)
                await pipe.execute()
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc

    async def _range(self, *args: Any, rev: bool) -> list[Message]:
        try:
            if rev:
                members = await self._redis.zrevrangebylex(*args)
            else:
                members = await self._redis.zrangebylex(*args)
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
        found = _decode([str(m) for m in members])
        return found[::-1] if rev else found

    async def newest(self, room_id: str, limit: int) -> list[Message]:
        return await self._range(self._room(room_id), "+", "-", 0, limit, rev=True)

    async def contains(self, room_id: str, message_id: str) -> bool:
        # the member of an id is "<id>\x1f<record>": between "<id>" and "<id>\x7f"
        try:
            found = await self._redis.zrangebylex(
                self._room(room_id), f"[{message_id}", f"({message_id}\x7f", 0, 1
            )
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
        return bool(found)

    async def after(self, room_id: str, since_id: str, limit: int) -> list[Message]:
        # every member of an id > since_id sorts after since_id + "\x7f" (ids are fixed width)
        return await self._range(self._room(room_id), f"({since_id}\x7f", "+", 0, limit, rev=False)

    async def before(self, room_id: str, before_id: str | None, limit: int) -> list[Message]:
        top = "+" if before_id is None else f"({before_id}"
        return await self._range(self._room(room_id), top, "-", 0, limit, rev=True)

    async def readers(self, room_id: str, message_ids: Sequence[str]) -> dict[str, list[str]]:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for mid in message_ids:
                    pipe.smembers(self._reads(room_id, mid))
                results = await pipe.execute()
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
        return {
            mid: sorted(users) for mid, users in zip(message_ids, results, strict=True) if users
        }
