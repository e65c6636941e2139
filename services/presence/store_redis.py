"""Redis presence store: atomic Lua updates shared by every gateway and the presence service.

Keys (all under one hash tag so the scripts also run on Redis Cluster):
  ``<prefix>{presence}:s:<user>``   hash sid → "pod\\tdevice\\tusername" (live sessions)
  ``<prefix>{presence}:online``     hash user → username (users with ≥ 1 session)
  ``<prefix>{presence}:pod:<pod>``  set of "user\\tsid" the pod holds
  ``<prefix>{presence}:pods``       zset pod → last heartbeat (ms)
  ``<prefix>{presence}:seen``       hash user → last time the user went offline (ms)
  ``<prefix>{presence}:rm:<user>:<room>``  set of the user's sids joined to the room
  ``<prefix>{presence}:sr:<sid>``   set of rooms the session joined (cleaned with the session)
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from services.common.errors import Unavailable

from .ports import OnlineUser, Session, UserPresence

CONNECT = """
local before = redis.call('HLEN', KEYS[1])
redis.call('HSET', KEYS[1], ARGV[2], ARGV[4])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[5])
if redis.call('ZSCORE', KEYS[4], ARGV[7]) == false then
  redis.call('ZADD', KEYS[4], ARGV[6], ARGV[7])
end
if before == 0 then return 1 end
return 0
"""

# Removes one session (and its room memberships); KEYS: sessions, online, pod set, seen;
# ARGV: user, sid, pod member, now, key prefix.
DROP_SESSION = """
local function drop(prefix, user, sid)
  local rooms_key = prefix .. 'sr:' .. sid
  for _, room in ipairs(redis.call('SMEMBERS', rooms_key)) do
    redis.call('SREM', prefix .. 'rm:' .. user .. ':' .. room, sid)
  end
  redis.call('DEL', rooms_key)
end
"""

DISCONNECT = (
    DROP_SESSION
    + """
drop(ARGV[5], ARGV[1], ARGV[2])
redis.call('SREM', KEYS[3], ARGV[3])
if redis.call('HDEL', KEYS[1], ARGV[2]) == 1 and redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HSET', KEYS[4], ARGV[1], ARGV[4])
  return 1
end
return 0
"""
)

# KEYS: pod set, online hash, pods zset, seen hash; ARGV: pod, now, session-key prefix,
# key prefix.
# Returns the user ids that went offline, each followed by their username.
REAP_POD = (
    DROP_SESSION
    + """
local gone = {}
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local tab = string.find(member, '\\t', 1, true)
  local user = string.sub(member, 1, tab - 1)
  local sid = string.sub(member, tab + 1)
  local skey = ARGV[3] .. user
  local info = redis.call('HGET', skey, sid)
  drop(ARGV[4], user, sid)
  if info and redis.call('HDEL', skey, sid) == 1 and redis.call('HLEN', skey) == 0 then
    local name = redis.call('HGET', KEYS[2], user) or user
    redis.call('HDEL', KEYS[2], user)
    redis.call('HSET', KEYS[4], user, ARGV[2])
    table.insert(gone, user)
    table.insert(gone, name)
  end
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[1])
return gone
"""
)


class RedisPresenceStore:
    def __init__(self, url: str, prefix: str) -> None:
        self._url = url
        self._p = f"{prefix}{{presence}}:"
        self._redis: aioredis.Redis | None = None

    async def start(self) -> None:
        self._redis = aioredis.Redis.from_url(
            self._url,
            decode_responses=True,
            socket_timeout=5,
            socket_connect_timeout=5,
            health_check_interval=10,
        )
        self._connect = self._redis.register_script(CONNECT)
        self._disconnect = self._redis.register_script(DISCONNECT)
        self._reap = self._redis.register_script(REAP_POD)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            raise Unavailable("redis: presence store not started")
        return self._redis

    def _key(self, name: str) -> str:
        return self._p + name

    async def healthy(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except RedisError:
            return False

    async def connect(self, session: Session, now_ms: int) -> bool:
        info = f"{session.pod_id}\t{session.device}\t{session.username}"
        try:
            first = await self._connect(
                keys=[
                    self._key(f"s:{session.user_id}"),
                    self._key("online"),
                    self._key(f"pod:{session.pod_id}"),
                    self._key("pods"),
                ],
                args=[
                    session.user_id,
                    session.sid,
                    session.username,
                    info,
                    session.member,
                    now_ms,
                    session.pod_id,
                ],
            )
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
        return first == 1

    async def disconnect(self, session: Session, now_ms: int) -> bool:
        try:
            last = await self._disconnect(
                keys=[
                    self._key(f"s:{session.user_id}"),
                    self._key("online"),
                    self._key(f"pod:{session.pod_id}"),
                    self._key("seen"),
                ],
                args=[session.user_id, session.sid, session.member, now_ms, self._p],
            )
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
        return last == 1

    async def online_users(self) -> list[OnlineUser]:
        try:
            online = await self.redis.hgetall(self._key("online"))
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
        return [OnlineUser(uid, name) for uid, name in online.items()]

    async def user(self, user_id: str) -> UserPresence:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(self._key(f"s:{user_id}"))
                pipe.hget(self._key("seen"), user_id)
                sessions, seen = await pipe.execute()
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
        devices = []
        for sid, info in sessions.items():
            pod, device, _name = (info.split("\t", 2) + ["", ""])[:3]
            devices.append({"sid": sid, "pod": pod, "device": device})
        return UserPresence(user_id, bool(sessions), devices, int(seen) if seen else None)

    async def heartbeat(self, pod_id: str, now_ms: int) -> None:
        try:
            await self.redis.zadd(self._key("pods"), {pod_id: now_ms})
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc

    async def dead_pods(self, now_ms: int, ttl_ms: int) -> list[str]:
        try:
            return list(
                await self.redis.zrangebyscore(self._key("pods"), "-inf", f"({now_ms - ttl_ms}")
            )
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc

    async def reap_pod(self, pod_id: str, now_ms: int) -> list[OnlineUser]:
        try:
            flat = await self._reap(
                keys=[
                    self._key(f"pod:{pod_id}"),
                    self._key("online"),
                    self._key("pods"),
                    self._key("seen"),
                ],
                args=[pod_id, now_ms, self._key("s:"), self._p],
            )
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
        return [OnlineUser(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]

    async def join_room(self, session: Session, room_id: str) -> None:
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.sadd(self._key(f"rm:{session.user_id}:{room_id}"), session.sid)
                pipe.sadd(self._key(f"sr:{session.sid}"), room_id)
                await pipe.execute()
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc

    async def leave_room(self, session: Session, room_id: str) -> None:
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.srem(self._key(f"rm:{session.user_id}:{room_id}"), session.sid)
                pipe.srem(self._key(f"sr:{session.sid}"), room_id)
                await pipe.execute()
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc

    async def is_member(self, user_id: str, room_id: str) -> bool:
        try:
            return await self.redis.scard(self._key(f"rm:{user_id}:{room_id}")) > 0
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
