"""``python -m services.presence``: run the presence service (reaper + HTTP API + probes)."""

from __future__ import annotations

import asyncio
import logging

from starlette.applications import Starlette

from services.common.redis_io import redis_client, redis_options
from services.common.settings import Settings
from services.common.web import configure_logging, health_routes, uvicorn_server
from services.presence.service import Reaper, api_routes
from services.storage.events_kafka import KafkaEventLog
from services.storage.presence_events import RecordingPresence
from services.storage.presence_redis import RedisPresenceStore

log = logging.getLogger("parley.presence")


async def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    events = KafkaEventLog(settings)  # presence.offline of reaped pods and ended grace periods
    await events.start()
    store = RecordingPresence(RedisPresenceStore.from_settings(settings), events)
    await store.start()
    redis = redis_client(settings.redis_url, options=redis_options(settings))
    reaper = Reaper(settings, store, redis)
    app = Starlette(
        routes=health_routes({"redis": store.healthy}, metrics_port=settings.metrics_port)
        + api_routes(store)
    )
    server = uvicorn_server(app, settings)
    log.info(
        "presence service %s on http://%s:%d (ttl %.0fs)",
        settings.pod_id,
        settings.host,
        settings.port,
        settings.presence_ttl_seconds,
    )
    try:
        async with asyncio.TaskGroup() as tasks:
            reaper_task = tasks.create_task(reaper.run(), name="reaper")
            await server.serve()
            reaper_task.cancel()
    finally:
        await events.close()
        await store.close()
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
