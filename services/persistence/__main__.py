"""``python -m services.persistence``: run the persistence worker with its HTTP probes."""

from __future__ import annotations

import asyncio
import logging

from starlette.applications import Starlette

from services.common.retry import Backoff
from services.common.settings import Settings
from services.common.web import configure_logging, health_routes, uvicorn_server
from services.persistence.worker import PersistenceWorker
from services.storage.messages_cassandra import CassandraMessageStore

log = logging.getLogger("parley.persistence")


async def connect_store(settings: Settings) -> CassandraMessageStore:
    backoff = Backoff(0.5, 5.0)
    while True:
        store = CassandraMessageStore(settings)
        try:
            await store.start()
            return store
        except Exception as exc:  # the driver raises NoHostAvailable and friends
            delay = backoff.next()
            log.warning("cassandra not reachable (%s); retrying in %.1fs", exc, delay)
            await store.close()
            await asyncio.sleep(delay)


async def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    store = await connect_store(settings)
    worker = PersistenceWorker(settings, store)
    app = Starlette(
        routes=health_routes(
            {"kafka": worker.healthy, "cassandra": store.healthy},
            metrics_port=settings.metrics_port,
        )
    )
    server = uvicorn_server(app, settings)
    log.info(
        "persistence worker %s: probes on http://%s:%d",
        settings.pod_id,
        settings.host,
        settings.port,
    )
    try:
        async with asyncio.TaskGroup() as tasks:
            worker_task = tasks.create_task(worker.run(), name="worker")
            await server.serve()  # returns on SIGTERM/SIGINT
            worker_task.cancel()
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
