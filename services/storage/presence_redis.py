"""Redis presence store: atomic Lua scripts shared by every gateway and the presence service
(the scripts themselves: ``presence_lua.py``).

Every transition is one script, and the script itself PUBLISHes the announcement on the
Socket.IO channel every gateway listens to (python-socketio's pub/sub message format). So a
state change and its announcement are one atomic step, and every gateway sees announcements in
the order the transitions happened — an online from pod A and an offline from the presence
service can never arrive swapped.

Keys. ``P`` is the user's shard: ``<prefix>{presence}:`` on a single Redis (one hash tag for
everything, the layout since the first release), ``<prefix>{presence:<n>}:`` on a Redis Cluster
with ``n = crc32(user) % CLUSTER_SHARDS`` — presence is sharded by user, so the load spreads
over 64 slots (and so over the masters), while every key one transition touches is in the
user's shard, so each script runs on one node:
  ``P s:<user>``            hash sid → "pod\\tdevice\\tusername" (live sessions)
  ``P online``              hash user → username (the shard's users announced online)
  ``P pending``             zset user → deadline (ms): last session gone, in grace
  ``P pod:<pod>``           set of "user\\tsid" the pod holds in this shard
  ``P seen``                hash user → when the user went offline (ms)
  ``P sessions``            counter of the shard's live sessions
  ``P rm:<user>:<room>``    set of the user's sids joined to the room
  ``P sr:<sid>``            set of rooms the session joined (cleaned with the session)
  ``P members:<room>``      set of the shard's users with a session in the room
  ``P lastrooms:<user>``    rooms a user's ended sessions were in (rooms scope: where their
                            offline is announced)
and in one slot of their own, ``<prefix>{presence}:``:
  ``pods``                  zset pod → last heartbeat (ms)
  ``epoch``                 random token of this state; a gateway that finds another one
                            (Redis restarted empty) registers its sessions again
  ``leader``                the presence service's lease (``services/presence/service.py``)

How the transitions stay inside one slot on a cluster (``__CLUSTER__`` in the Lua):
- connect / disconnect / join / leave touch only the user's shard. The one cross-slot write
  of a connect — putting the pod into ``pods`` if missing — is a separate ``ZADD GT`` done
  *before* the script (a connect is a sign of life of its pod; a crash in between leaves a
  pod with nothing to reap).
- reaping a pod is one script per shard (each atomic, each announcing its own users); the pod
  then leaves ``pods`` only if its score did not move meanwhile (``FORGET_POD``), so a
  connect racing the reaper keeps the pod registered and reapable.
- grace sweeps run per shard; global reads (online users, counts, room members) add the
  shards up; ``scoped_online`` reads the user's rooms from their shard, then each shard's
  online members of those rooms (a snapshot per shard, not one across all).
- room-scoped announcements (scope ``rooms``) are published on the pod-wide channel with the
  room in the envelope: a script may only publish a *shard* channel of its own slot, and the
  room channels are shard channels on a cluster (``fanout_cluster.py``). Every pod receives
  them and delivers to its members of the room (O(pods) per transition in that scope).
A node that restarts empty in a cluster without replicas loses its shards' presence; the epoch
only notices a restart of the node holding ``{presence}`` — run the cluster with replicas.

Scope ``all`` (default) announces to every client and ``presence:list`` is every online user;
scope ``rooms`` announces a user only to the rooms they share (online on their first socket in
a room, offline to the rooms they were in) and lists only users who share a room.
"""

from __future__ import annotations

import asyncio
import uuid
import zlib
from collections.abc import Mapping
from typing import Any, cast

from redis.exceptions import RedisError

from services.common.errors import Unavailable
from services.common.redis_io import AnyRedis, is_cluster, redis_client, redis_options
from services.common.settings import Settings
from services.storage.presence import OnlineUser, RoomMember, Session, UserPresence
from services.storage.presence_lua import (  # noqa: F401 - HOST_ID, announcement: re-exported
    CONNECT,
    DISCONNECT,
    FORGET_POD,
    HEARTBEAT,
    HOST_ID,
    JOIN_ROOM,
    LEAVE_ROOM,
    REAP_POD,
    SCOPED_ONLINE,
    SHARD_ONLINE_IN,
    SWEEP_PENDING,
    USER_ROOMS,
    announcement,
)

SCOPES = ("all", "rooms")
CLUSTER_SHARDS = 64  # presence shards (hash tags) on a Redis Cluster; one on a single Redis


def _pairs(flat: list[str]) -> list[OnlineUser]:
    return [OnlineUser(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def shard_of(user_id: str, shards: int) -> int:
    """The shard (hash tag) a user's presence lives in: stable across processes."""
    return zlib.crc32(user_id.encode()) % shards if shards > 1 else 0


class RedisPresenceStore:
    def __init__(
        self,
        url: str,
        prefix: str,
        channel: str,
        grace_ms: int = 0,
        scope: str = "all",
        redis_options: Mapping[str, Any] | None = None,
        shards: int | None = None,
    ) -> None:
        if scope not in SCOPES:
            raise ValueError(f"presence scope must be one of {SCOPES}")
        self.scope = scope
        self._url = url
        self._redis_options = redis_options
        self.cluster = is_cluster(redis_options)
        self.shards = shards or (CLUSTER_SHARDS if self.cluster else 1)
        if self.cluster and self.shards < 2:
            raise ValueError("a Redis Cluster needs presence shards > 1")
        self._p = f"{prefix}{{presence}}:"  # pods, epoch, leader lease (one slot)
        self._shard_p = (
            [f"{prefix}{{presence:{n}}}:" for n in range(self.shards)]
            if self.shards > 1
            else [self._p]
        )
        self._channel = channel
        self._grace_ms = grace_ms
        self._redis: AnyRedis | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisPresenceStore:
        return cls(
            settings.redis_url,
            settings.redis_prefix,
            settings.socketio_channel,
            int(settings.presence_grace_seconds * 1000),
            settings.presence_scope,
            redis_options(settings),
        )

    async def start(self) -> None:
        self._redis = redis_client(self._url, options=self._redis_options)
        scripts = {
            "connect": CONNECT,
            "disconnect": DISCONNECT,
            "reap": REAP_POD,
            "sweep": SWEEP_PENDING,
            "heartbeat": HEARTBEAT,
            "join": JOIN_ROOM,
            "leave": LEAVE_ROOM,
            "scoped": SCOPED_ONLINE,
            "user_rooms": USER_ROOMS,
            "shard_online_in": SHARD_ONLINE_IN,
            "forget_pod": FORGET_POD,
        }
        flag = "1" if self.cluster else "0"
        self._scripts = {
            name: self._redis.register_script(
                src.replace("__SCOPE__", self.scope).replace("__CLUSTER__", flag)
            )
            for name, src in scripts.items()
        }

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    @property
    def redis(self) -> AnyRedis:
        if self._redis is None:
            raise Unavailable("redis: presence store not started")
        return self._redis

    def _key(self, name: str) -> str:
        """A key of the pod registry's slot (``pods``, ``epoch``)."""
        return self._p + name

    def prefix_of(self, user_id: str) -> str:
        """The key prefix (with its hash tag) of the user's shard."""
        return self._shard_p[shard_of(user_id, self.shards)]

    async def _run(self, script: str, p: str, *args: str | int | float) -> Any:
        """One script on the slot of ``p``: every key it touches starts with ``p``."""
        if self._redis is None:
            raise Unavailable("redis: presence store not started")
        try:
            return await self._scripts[script](keys=[p], args=[p, *args])
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc

    async def _each_shard(self, script: str, *args: str | int | float) -> list[Any]:
        """The script on every shard (concurrently: the shards are on different nodes)."""
        return list(await asyncio.gather(*(self._run(script, p, *args) for p in self._shard_p)))

    async def healthy(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except (RedisError, Unavailable):
            return False

    async def connect(self, session: Session, now_ms: int, quiet: bool = False) -> bool:
        if self.cluster:  # the registry is in another slot: register first (GT: a sign of life)
            try:
                await self.redis.zadd(self._key("pods"), {session.pod_id: now_ms}, gt=True)
            except RedisError as exc:
                raise Unavailable(f"redis: {exc}") from exc
        info = f"{session.pod_id}\t{session.device}\t{session.username}"
        first = await self._run(
            "connect",
            self.prefix_of(session.user_id),
            self._channel,
            session.user_id,
            session.sid,
            session.username,
            info,
            session.pod_id,
            now_ms,
            "1" if quiet else "0",
        )
        return bool(first == 1)

    async def disconnect(self, session: Session, now_ms: int) -> bool:
        result = await self._run(
            "disconnect",
            self.prefix_of(session.user_id),
            self._channel,
            session.user_id,
            session.sid,
            session.pod_id,
            now_ms,
            self._grace_ms,
        )
        return bool(result == 1)

    async def sweep_pending(self, now_ms: int) -> list[OnlineUser]:
        found = await self._each_shard("sweep", self._channel, now_ms)
        return [user for flat in found for user in _pairs(flat)]

    async def reap_pod(self, pod_id: str, now_ms: int) -> list[OnlineUser]:
        if not self.cluster:
            return _pairs(await self._run("reap", self._p, self._channel, pod_id, now_ms))
        try:
            score = await self.redis.zscore(self._key("pods"), pod_id)
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
        found = await self._each_shard("reap", self._channel, pod_id, now_ms)
        if score is not None:
            try:
                await self._scripts["forget_pod"](
                    keys=[self._key("pods")], args=[self._key("pods"), pod_id, int(score)]
                )
            except RedisError as exc:
                raise Unavailable(f"redis: {exc}") from exc
        return [user for flat in found for user in _pairs(flat)]

    async def heartbeat(self, pod_id: str, now_ms: int) -> tuple[str, bool]:
        epoch, known = await self._run("heartbeat", self._p, pod_id, now_ms, uuid.uuid4().hex)
        return epoch, known == 1

    async def online_users(self) -> list[OnlineUser]:
        try:
            shards = await asyncio.gather(
                *(self.redis.hgetall(p + "online") for p in self._shard_p)
            )
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
        return [OnlineUser(str(uid), str(name)) for o in shards for uid, name in o.items()]

    async def counts(self) -> tuple[int, int]:
        """``(online users, live sessions)`` — cheap, for metrics."""

        async def one(p: str) -> tuple[int, int]:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hlen(p + "online")
                pipe.get(p + "sessions")
                users, sessions = await pipe.execute()
            return int(users), int(sessions or 0)

        try:
            found = await asyncio.gather(*(one(p) for p in self._shard_p))
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
        return sum(u for u, _ in found), sum(s for _, s in found)

    async def user(self, user_id: str) -> UserPresence:
        p = self.prefix_of(user_id)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(f"{p}s:{user_id}")
                pipe.hget(p + "seen", user_id)
                sessions, seen = await pipe.execute()
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
        devices = []
        for sid, info in sessions.items():
            pod, device, _name = ([*info.split("\t", 2), "", ""])[:3]
            devices.append({"sid": sid, "pod": pod, "device": device})
        return UserPresence(user_id, bool(sessions), devices, int(seen) if seen else None)

    async def room_members(self, room_id: str) -> list[RoomMember]:
        try:
            found = await asyncio.gather(*(self._room_members(p, room_id) for p in self._shard_p))
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
        return sorted((m for shard in found for m in shard), key=lambda m: m.user_id)

    async def _room_members(self, p: str, room_id: str) -> list[RoomMember]:
        raw = await self.redis.smembers(f"{p}members:{room_id}")
        users = sorted(u.decode() if isinstance(u, bytes) else str(u) for u in raw)
        if not users:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for user in users:
                pipe.scard(f"{p}rm:{user}:{room_id}")
                pipe.hget(p + "online", user)
            found = await pipe.execute()
        out = []
        for i, user in enumerate(users):
            sockets, name = int(found[2 * i]), found[2 * i + 1]
            if sockets:
                out.append(RoomMember(user, str(name or user), sockets))
        return out

    async def pods(self) -> dict[str, int]:
        """Every registered pod and its last heartbeat (ms)."""
        try:
            pods = cast(
                list[tuple[str, float]],
                await self.redis.zrange(self._key("pods"), 0, -1, withscores=True),
            )
            return {str(pod): int(score) for pod, score in pods}
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc

    async def dead_pods(self, now_ms: int, ttl_ms: int) -> list[str]:
        try:
            dead = await self.redis.zrangebyscore(self._key("pods"), "-inf", f"({now_ms - ttl_ms}")
            return [str(pod) for pod in dead]
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc

    async def join_room(self, session: Session, room_id: str, quiet: bool = False) -> None:
        await self._run(
            "join",
            self.prefix_of(session.user_id),
            self._channel,
            session.user_id,
            session.sid,
            room_id,
            session.username,
            "1" if quiet else "0",
        )

    async def leave_room(self, session: Session, room_id: str) -> None:
        await self._run(
            "leave",
            self.prefix_of(session.user_id),
            self._channel,
            session.user_id,
            session.sid,
            room_id,
        )

    async def scoped_online(self, user_id: str) -> list[OnlineUser]:
        p = self.prefix_of(user_id)
        if not self.cluster:
            return _pairs(await self._run("scoped", p, self._channel, user_id))
        # members of a room are spread over the shards: the user's rooms from their shard,
        # then each shard's online members of those rooms (a snapshot per shard)
        rooms = [str(r) for r in await self._run("user_rooms", p, self._channel, user_id)]
        found = await self._each_shard("shard_online_in", self._channel, *rooms) if rooms else []
        out = {u.user_id: u for flat in found for u in _pairs(flat)}
        if user_id not in out:
            try:
                name = await self.redis.hget(p + "online", user_id)
            except RedisError as exc:
                raise Unavailable(f"redis: {exc}") from exc
            if name is not None:
                out[user_id] = OnlineUser(user_id, str(name))
        return list(out.values())

    async def is_member(self, user_id: str, room_id: str) -> bool:
        try:
            return await self.redis.scard(f"{self.prefix_of(user_id)}rm:{user_id}:{room_id}") > 0
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
