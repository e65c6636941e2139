"""The presence service: reaps crashed gateway pods and answers presence queries over HTTP.

Gateways update presence themselves, atomically (``store_redis``), on every connect and
disconnect, and heart-beat their pod every ``presence_heartbeat_seconds``. This service runs
the part no gateway can do for itself: when a pod has been silent for ``presence_ttl_seconds``
(SIGKILL, OOM, node lost) it removes every session that pod held and announces
``presence:offline`` for the users left with none. Only the replica holding the leader lease
(a Redis key with a TTL) reaps, so several replicas never announce twice.

HTTP: ``GET /presence/{userId}`` → ``{userId, online, devices, lastSeen}``;
``GET /presence?ids=a,b`` → a list of the same.
"""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.common.errors import Unavailable
from services.common.model import iso_ms
from services.common.settings import Settings

from . import metrics
from .announce import Announcer
from .ports import PresenceStore, UserPresence

log = logging.getLogger("parley.presence")

# Take the lease if free, or renew it if it is ours.
LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


def now_ms() -> int:
    return int(time.time() * 1000)


class Reaper:
    def __init__(
        self,
        settings: Settings,
        store: PresenceStore,
        announcer: Announcer,
        redis: aioredis.Redis | None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._announcer = announcer
        self._redis = redis
        self._lease = redis.register_script(LEASE) if redis is not None else None
        self._lease_key = f"{settings.redis_prefix}{{presence}}:leader"
        self.is_leader = redis is None

    async def _hold_lease(self) -> bool:
        if self._lease is None:
            return True
        ttl_ms = int(self._settings.presence_ttl_seconds * 1000)
        got = await self._lease(keys=[self._lease_key], args=[self._settings.pod_id, ttl_ms])
        return got == 1

    async def sweep(self) -> int:
        """One pass: reap every dead pod; returns how many users went offline."""
        ttl_ms = int(self._settings.presence_ttl_seconds * 1000)
        offline = 0
        for pod in await self._store.dead_pods(now_ms(), ttl_ms):
            gone = await self._store.reap_pod(pod, now_ms())
            metrics.REAPED_SESSIONS_PODS.inc()
            log.info("reaped pod %s: %d users offline", pod, len(gone))
            for user in gone:
                await self._announcer.offline(user)
            metrics.REAPED_USERS.inc(len(gone))
            offline += len(gone)
        return offline

    async def run(self) -> None:
        while True:
            try:
                leader = await self._hold_lease()
                if leader != self.is_leader:
                    log.info("reaper lease %s", "acquired" if leader else "lost")
                self.is_leader = leader
                metrics.LEADER.set(1 if leader else 0)
                if leader:
                    await self.sweep()
                metrics.ONLINE_USERS.set(len(await self._store.online_users()))
            except (RedisError, Unavailable) as exc:
                log.warning("presence sweep failed: %s", exc)
            await asyncio.sleep(self._settings.presence_sweep_seconds)


def presence_json(p: UserPresence) -> dict[str, object]:
    return {
        "userId": p.user_id,
        "online": p.online,
        "devices": p.devices,
        "lastSeen": iso_ms(p.last_seen_ms) if p.last_seen_ms else None,
    }


def api_routes(store: PresenceStore) -> list[Route]:
    async def one(request: Request) -> JSONResponse:
        try:
            return JSONResponse(presence_json(await store.user(request.path_params["user_id"])))
        except Unavailable:
            return JSONResponse({"error": "Temporarily unavailable, retry"}, status_code=503)

    async def batch(request: Request) -> JSONResponse:
        ids = [i for i in request.query_params.get("ids", "").split(",") if i][:500]
        try:
            found = [presence_json(await store.user(i)) for i in ids]
        except Unavailable:
            return JSONResponse({"error": "Temporarily unavailable, retry"}, status_code=503)
        return JSONResponse(found)

    return [Route("/presence/{user_id}", one), Route("/presence", batch)]
