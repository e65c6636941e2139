"""``python -m services.gateway``: serve the gateway (``PARLEY_MODE=single`` for one node)."""

from __future__ import annotations

import sys

from services.common.errors import SettingsError
from services.common.settings import Settings
from services.common.web import configure_logging, run_loop, uvicorn_config

from .app import Gateway
from .drain import DrainingServer


def banner(settings: Settings) -> str:
    url = f"http://{settings.host}:{settings.port}"
    lines = [
        f"Web client: {url}/   (open it in a browser; register two users in two windows)",
        f"Parley gateway ({settings.mode} mode) on {url}",
        f"  Socket.IO: {url}/socket.io/  namespaces /chat /notifications /admin",
        f"  HTTP:      POST {url}/auth/register  POST {url}/auth/login  GET {url}/files/<id>",
        f"  probes:    {url}/healthz  {url}/readyz  "
        + (
            f"http://{settings.host}:{settings.metrics_port}/metrics"
            if settings.metrics_port
            else f"{url}/metrics"
        ),
    ]
    if settings.admin_ui_password:
        lines.append(f"  Admin UI:  {url}/admin-ui/  (namespace {settings.admin_ui_namespace})")
    if settings.single_node:
        lines += [
            f"  storage:   SQLite at {settings.sqlite_path}",
            "  token:     make token USER=alice   (JWT signed with PARLEY_JWT_SECRET)",
        ]
    return "\n".join(lines)


async def main() -> None:
    try:
        settings = Settings.from_env()
        settings.require_strong_secret()
    except SettingsError as exc:
        print(f"parley gateway: configuration error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    configure_logging(settings.log_level)
    print(banner(settings), flush=True)
    gateway = Gateway(settings)
    await DrainingServer(uvicorn_config(gateway.asgi, settings), gateway.drain).serve()


if __name__ == "__main__":
    run_loop(main())
