"""HTTP ``POST /auth/register`` and ``POST /auth/login`` (filled in by the auth work)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Route

if TYPE_CHECKING:
    from .app import Gateway


def auth_routes(gateway: Gateway) -> list[Route]:
    return []
