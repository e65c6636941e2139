"""``python -m services.webhooks``: one delivery loop per configured endpoint, with probes."""

from __future__ import annotations

import asyncio
import logging

from starlette.applications import Starlette

from services.common.crypto import Cipher
from services.common.settings import Settings
from services.common.web import configure_logging, health_routes, uvicorn_server

from .worker import EndpointWorker

log = logging.getLogger("parley.webhooks")


async def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    cipher = Cipher.from_settings(settings.encryption_keys, settings.encryption_active_key)
    workers = [EndpointWorker(settings, e, cipher) for e in settings.webhook_endpoints]
    if not workers:
        log.warning("PARLEY_WEBHOOKS is empty: nothing to deliver")

    async def consuming() -> bool:
        return all(w.started for w in workers)

    app = Starlette(routes=health_routes({"kafka": consuming}, metrics_port=settings.metrics_port))
    server = uvicorn_server(app, settings)
    log.info("webhook worker %s: %d endpoints", settings.pod_id, len(workers))
    async with asyncio.TaskGroup() as tasks:
        running = [tasks.create_task(w.run(), name=f"webhook-{w.endpoint.name}") for w in workers]
        await server.serve()  # returns on SIGTERM/SIGINT
        for task in running:
            task.cancel()


if __name__ == "__main__":
    asyncio.run(main())
