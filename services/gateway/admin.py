"""The ``/admin`` namespace (filled in by the admin work)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .app import Gateway


class AdminNamespace:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def start(self) -> None:
        """Background work started in the gateway's lifespan (e.g. stats reporting)."""
        return None

    async def stop(self) -> None:
        return None
