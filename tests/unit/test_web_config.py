"""The websocket settings every service's uvicorn runs with (bench/reports/memory.md)."""

from services.common.settings import Settings
from services.common.web import uvicorn_config


async def _app(scope, receive, send):  # pragma: no cover - never called
    raise AssertionError


def test_websockets_without_deflate_or_a_second_keepalive():
    config = uvicorn_config(_app, Settings(mode="single"))
    assert config.ws == "websockets-sansio"
    assert config.ws_per_message_deflate is False  # a zlib pair per socket: ~50 KB idle
    assert config.ws_ping_interval is None  # Engine.IO's heartbeat finds dead peers
    assert config.ws_ping_timeout is None
