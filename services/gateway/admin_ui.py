"""The Socket.IO Admin UI: python-socketio's instrumentation and the UI's static files.

``sio.instrument()`` runs in *production* mode on its own namespace
(``PARLEY_ADMIN_UI_NAMESPACE``, default ``/socketio-admin``; ``/admin`` is Parley's), behind
``PARLEY_ADMIN_UI_USERNAME`` / ``PARLEY_ADMIN_UI_PASSWORD``; it is off while the password is
empty (the default). Production mode reports server statistics only (no per-socket event
capture, which would slow every emit), and it is read-only because the actions of the UI
(emit, join, leave, disconnect) are only wired in development mode. Every gateway emits its
``server_stats`` to the namespace through the Socket.IO manager — over Redis in cluster mode —
so a UI connected to any pod lists every pod (``serverId`` is the pod id).

The UI itself (the ``@socket.io/admin-ui`` npm package's ``ui/dist``) is served at
``/admin-ui/``; point it at the gateway's URL with the namespace above.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import socketio
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from services.common.settings import Settings

log = logging.getLogger("parley.gateway.admin_ui")

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_UI_DIR = ROOT / "node_modules" / "@socket.io" / "admin-ui" / "ui" / "dist"
MOUNT_PATH = "/admin-ui"

# instrument() patches engine.io classes for the whole process: twice would recurse forever
_instrumented_in_process = False


def credentials_check(username: str, password: str) -> Callable[[object], bool]:
    """A constant-time check of the ``{username, password}`` the UI sends at connect."""
    want_user, want_password = username.encode(), password.encode()

    def check(auth: object) -> bool:
        if not isinstance(auth, dict):
            return False
        user, pw = auth.get("username"), auth.get("password")
        if not isinstance(user, str) or not isinstance(pw, str):
            return False
        # both comparisons always run, so the timing does not tell which one failed
        ok_user = hmac.compare_digest(user.encode(), want_user)
        ok_password = hmac.compare_digest(pw.encode(), want_password)
        return ok_user and ok_password

    return check


def instrument(sio: socketio.AsyncServer, settings: Settings) -> Any:
    """Instrument ``sio`` when a password is set; returns the instrumentation (or None)."""
    global _instrumented_in_process
    if not settings.admin_ui_password:
        log.info("Socket.IO Admin UI off (PARLEY_ADMIN_UI_PASSWORD is empty)")
        return None
    if _instrumented_in_process:
        log.warning("Socket.IO Admin UI already instrumented in this process; skipped")
        return None
    _instrumented_in_process = True
    log.info(
        "Socket.IO Admin UI on namespace %s (production mode, read-only)",
        settings.admin_ui_namespace,
    )
    return sio.instrument(
        auth=credentials_check(settings.admin_ui_username, settings.admin_ui_password),
        mode="production",
        read_only=True,
        server_id=settings.pod_id,
        namespace=settings.admin_ui_namespace,
    )


def ui_routes(settings: Settings) -> list[BaseRoute]:
    """``/admin-ui/`` serving the UI's files, or nothing (with a warning) if they are missing."""
    directory = Path(settings.admin_ui_dir) if settings.admin_ui_dir else DEFAULT_UI_DIR
    if not (directory / "index.html").is_file():
        log.warning(
            "Admin UI files not found at %s (PARLEY_ADMIN_UI_DIR; npm install provides them); "
            "%s/ is not served",
            directory,
            MOUNT_PATH,
        )
        return []
    return [Mount(MOUNT_PATH, app=StaticFiles(directory=directory, html=True), name="admin-ui")]
