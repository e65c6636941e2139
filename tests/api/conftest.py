"""The Server API's test deployments: gateways started WITH ``PARLEY_API_KEYS``.

The shared ``cluster`` fixture (two gateways, worker, presence) runs without keys; this
module adds two API gateways on the same engine names (so the shared worker persists what
they accept and the presence service reaps them), and a single-node gateway with keys.
"""

from __future__ import annotations

import secrets
import uuid

import pytest

from parley_client import ParleyApi
from services.common.auth import issue_token
from services.common.settings import Settings
from tests.support.client import ChatClient
from tests.support.nsclient import NamespaceClient
from tests.support.procs import Service
from tests.support.system import PRESENCE_ENV

KEYS = {
    "publisher": secrets.token_urlsafe(24),  # publish
    "mover": secrets.token_urlsafe(24),  # rooms
    "reader": secrets.token_urlsafe(24),  # read
    "everything": secrets.token_urlsafe(24),  # publish + rooms + read
    "root": secrets.token_urlsafe(24),  # admin
}
SCOPES = {
    "publisher": "publish",
    "mover": "rooms",
    "reader": "read",
    "everything": "publish+rooms+read",
    "root": "admin",
}
API_KEYS = ",".join(f"{name}:{KEYS[name]}:{SCOPES[name]}" for name in KEYS)


class ApiSystem:
    """Gateways with the API on, and the settings to mint tokens for their sockets."""

    def __init__(self, settings: Settings, gateways: list[Service]) -> None:
        self.settings = settings
        self.gateways = gateways
        self.closers: list = []

    def token(self, user: str, **kw) -> str:
        return issue_token(self.settings, user, **kw)

    async def client(self, user: str, gateway: int = 0, **kw) -> ChatClient:
        c = ChatClient(self.gateways[gateway].url, self.token(user, **kw))
        self.closers.append(c.close)
        return await c.connect()

    async def notifications(self, user: str, gateway: int = 0) -> NamespaceClient:
        c = NamespaceClient(
            self.gateways[gateway].url, "/notifications", {"token": self.token(user)}
        )
        self.closers.append(c.close)
        return await c.connect()

    def api(self, key: str = "everything", gateway: int = 0) -> ParleyApi:
        a = ParleyApi(self.gateways[gateway].url, KEYS[key])
        self.closers.append(a.aclose)
        return a

    async def close(self) -> None:
        for close in reversed(self.closers):
            await close()
        self.closers.clear()


def _run(services: list[Service]):
    try:
        for s in services:
            s.start()
        for s in services:
            s.wait_ready()
        yield services
    finally:
        for s in services:
            s.stop()


@pytest.fixture(scope="session")
def api_cluster_gateways(cluster, engine_env):
    env = {**engine_env, **PRESENCE_ENV, "PARLEY_API_KEYS": API_KEYS}
    yield from _run([Service("gateway", f"api-gateway-{n}", env) for n in ("a", "b")])


@pytest.fixture(scope="session")
def api_single_gateway(tmp_path_factory):
    db = tmp_path_factory.mktemp("api-single") / "parley.db"
    env = {
        "PARLEY_MODE": "single",
        "PARLEY_SQLITE_PATH": str(db),
        "PARLEY_API_KEYS": API_KEYS,
        "PARLEY_API_MAX_BODY_BYTES": "4096",
    }
    yield from _run([Service("gateway", "api-single", env)])


@pytest.fixture
async def api_cluster(api_cluster_gateways, migrated):
    system = ApiSystem(migrated, api_cluster_gateways)
    yield system
    await system.close()


@pytest.fixture
async def api_single(api_single_gateway):
    system = ApiSystem(Settings.from_env(api_single_gateway[0].env), api_single_gateway)
    yield system
    await system.close()


@pytest.fixture(params=["cluster", "single"])
def api_system(request):
    """The same test on both deployments."""
    return request.getfixturevalue("api_cluster" if request.param == "cluster" else "api_single")


def room() -> str:
    return "api-" + uuid.uuid4().hex[:10]


def user() -> str:
    return "u" + uuid.uuid4().hex[:10]
