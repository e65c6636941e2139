"""The Redis adapter of the ``stats`` port (port and memory adapter: ``stats.py``)."""

from __future__ import annotations

from redis.exceptions import RedisError

from services.common.errors import Unavailable
from services.common.redis_io import AnyRedis
from services.storage.stats import PodReport


class RedisStatsBoard:
    """Keys (one hash tag, so it also runs on Redis Cluster):
    ``<prefix>{gateways}:r:<pod>`` the report (JSON, expires with the TTL) and
    ``<prefix>{gateways}:pods`` a sorted set pod → expiry ms, to list pods without SCAN."""

    def __init__(self, redis: AnyRedis, prefix: str) -> None:
        self._redis = redis
        self._p = f"{prefix}{{gateways}}:"

    async def put(self, report: PodReport, ttl_ms: int) -> None:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.set(self._p + "r:" + report.pod_id, report.encode(), px=ttl_ms)
                pipe.zadd(self._p + "pods", {report.pod_id: report.at_ms + ttl_ms})
                await pipe.execute()
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc

    async def live(self, now_ms: int) -> list[PodReport]:
        try:
            pods = await self._redis.zrangebyscore(self._p + "pods", f"({now_ms}", "+inf")
            await self._redis.zremrangebyscore(self._p + "pods", "-inf", now_ms)
            keys = [f"{self._p}r:{p!s}" for p in pods]
            raws = await self._redis.mget(keys) if keys else []
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
        reports = []
        for raw in raws:
            if raw is None:  # expired between the two reads
                continue
            try:
                reports.append(PodReport.decode(str(raw)))
            except ValueError:
                continue  # a foreign or corrupt key never breaks admin:stats
        return reports

    async def remove(self, pod_id: str) -> None:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._p + "r:" + pod_id)
                pipe.zrem(self._p + "pods", pod_id)
                await pipe.execute()
        except RedisError as exc:
            raise Unavailable(f"redis: {exc}") from exc
