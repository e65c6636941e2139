"""The web chat client: ``GET /`` (the page) and its static files under ``/web/``.

The client is plain ES modules from ``web/`` in the repository; the official
``socket.io-client`` is served from ``node_modules`` (``npm ci`` installs it) at
``/web/vendor/``. ``GET /web/config.json`` tells the page the limits it checks before
uploading (the server checks them again).

Every response carries ``X-Content-Type-Options: nosniff`` and a strict Content Security
Policy: scripts, styles and connections only from this origin (``'self'`` also covers the
same-origin WebSocket), images from this origin or ``blob:`` (attachment previews fetched
with the bearer token), nothing else; no framing, no ``<base>``, no form submissions (the
forms are handled by script). The page is never cached, so a deploy takes effect at once.
"""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router, request_response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.settings import Settings

log = logging.getLogger("parley.gateway.webclient")

ROOT = Path(__file__).resolve().parents[2]
WEB_DIR = ROOT / "web"
VENDOR_DIR = ROOT / "node_modules" / "socket.io-client" / "dist"
PREFIX = "/web"
VENDOR_FILES = {
    "socket.io.esm.min.js": "text/javascript; charset=utf-8",
    "socket.io.esm.min.js.map": "application/json",
}

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SAFE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class SafeHeaders:
    """ASGI wrapper adding ``SAFE_HEADERS`` (and ``no-cache``) to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in (b"cache-control",)
                ]
                headers += [(k.lower().encode(), v.encode()) for k, v in SAFE_HEADERS.items()]
                headers.append((b"cache-control", b"no-cache"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def client_config(settings: Settings) -> dict[str, object]:
    """What the page checks before sending (the server enforces the same limits)."""
    return {
        "fileMaxBytes": settings.file_max_bytes,
        "fileAllowedTypes": [t.strip() for t in settings.file_allowed_types.split(",") if t],
        "messageMaxChars": settings.message_max_chars,
        "historyPageSize": settings.history_default_limit,
    }


def webclient_routes(settings: Settings) -> list[BaseRoute]:
    """``/`` and ``/web/...``; nothing (with a warning) when ``web/index.html`` is missing."""
    index = WEB_DIR / "index.html"
    if not index.is_file():
        log.warning("web client not found at %s; / is not served", WEB_DIR)
        return []
    if not (VENDOR_DIR / "socket.io.esm.min.js").is_file():
        log.warning(
            "socket.io-client not found at %s (run npm ci); the web client cannot connect",
            VENDOR_DIR,
        )
    config = client_config(settings)

    async def page(_: Request) -> Response:
        return FileResponse(index, media_type="text/html; charset=utf-8")

    async def config_json(_: Request) -> Response:
        return JSONResponse(config)

    async def vendor(request: Request) -> Response:
        """Only the ESM bundle of socket.io-client (and its source map), nothing else of
        node_modules; 404 while it is missing (e.g. during ``npm ci``)."""
        name = request.path_params["name"]
        path = VENDOR_DIR / name
        if name not in VENDOR_FILES or not path.is_file():
            return JSONResponse({"error": "Not found", "code": "not_found"}, status_code=404)
        return FileResponse(path, media_type=VENDOR_FILES[name])

    files = [
        Route("/config.json", config_json),
        Route("/vendor/{name}", vendor),
        Mount("/", app=StaticFiles(directory=WEB_DIR)),
    ]
    return [
        Route("/", SafeHeaders(request_response(page)), methods=["GET", "HEAD"]),
        Mount(PREFIX, app=SafeHeaders(Router(routes=files)), name="web"),
    ]
