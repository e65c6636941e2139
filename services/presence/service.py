"""The presence service: the part of presence no gateway can do for itself.

Gateways update presence themselves, atomically, on every connect and disconnect (the Redis
store's Lua scripts announce the transitions), and heart-beat their pod every
``presence_heartbeat_seconds``. This service, on the replica holding the leader lease (a Redis
key with a TTL, renewed every sweep), does two sweeps every ``presence_sweep_seconds``:
- **dead pods**: a pod silent for ``presence_ttl_seconds`` (SIGKILL, OOM, node lost) has every
  session it held removed; users left with none are announced offline at once;
- **grace**: users whose last session ended ``presence_grace_seconds`` ago and did not come
  back are announced offline (so a flapping connection does not spam online/offline).
Announcements happen inside the scripts, so even two replicas sweeping at once (a lease
hand-over) cannot announce twice: the second finds nothing to do.

HTTP: ``GET /presence/{userId}`` → ``{userId, online, devices, lastSeen}``;
``GET /presence?ids=a,b`` → a list of the same.
"""

from __future__ import annotations

import asyncio
import logging

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.common.clock import now_ms
from services.common.errors import Unavailable
from services.common.model import iso_ms
from services.common.redis_io import AnyRedis
from services.common.settings import Settings
from services.presence import metrics
from services.storage.presence import PresenceLookup, PresenceStore, UserPresence

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


class Reaper:
    def __init__(
        self,
        settings: Settings,
        store: PresenceStore,
        redis: AnyRedis | None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._redis = redis
        self._lease = redis.register_script(LEASE) if redis is not None else None
        self._lease_key = f"{settings.redis_prefix}{{presence}}:leader"
        self.is_leader = redis is None

    async def _hold_lease(self) -> bool:
        if self._lease is None:
            return True
        ttl_ms = int(self._settings.presence_ttl_seconds * 1000)
        got = await self._lease(keys=[self._lease_key], args=[self._settings.pod_id, ttl_ms])
        return bool(got == 1)

    async def sweep(self) -> int:
        """One pass: reap dead pods, end expired grace periods; returns users gone offline."""
        ttl_ms = int(self._settings.presence_ttl_seconds * 1000)
        offline = 0
        dead = await self._store.dead_pods(now_ms(), ttl_ms)
        beats = await self._store.pods() if dead else {}
        for pod in dead:
            gone = await self._store.reap_pod(pod, now_ms())
            if pod in beats:
                metrics.OFFLINE_DETECTION_SECONDS.observe(max(0, now_ms() - beats[pod]) / 1000)
            metrics.REAPED_SESSIONS_PODS.inc()
            log.info("reaped pod %s: %d users offline", pod, len(gone))
            metrics.REAPED_USERS.inc(len(gone))
            offline += len(gone)
        expired = await self._store.sweep_pending(now_ms())
        metrics.ANNOUNCEMENTS.labels("offline").inc(offline + len(expired))
        return offline + len(expired)

    async def observe(self) -> None:
        """Gauges: online users, sessions, and the oldest live pod's heartbeat lag."""
        users, sessions = await self._store.counts()
        metrics.ONLINE_USERS.set(users)
        metrics.SESSIONS.set(sessions)
        beats = await self._store.pods()
        lag = max((now_ms() - seen for seen in beats.values()), default=0)
        metrics.HEARTBEAT_LAG.set(max(0, lag) / 1000)

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
                await self.observe()
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


def api_routes(store: PresenceLookup) -> list[Route]:
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
