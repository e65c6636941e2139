"""The running system: two gateways, the persistence worker and the presence service as
processes on the real engines (cluster), or one single-node gateway."""

from __future__ import annotations

import pytest

from services.common.auth import issue_token
from services.common.settings import Settings
from tests.support.client import ChatClient
from tests.support.procs import Service

# Short presence timings so crash tests finish quickly; the defaults are documented.
PRESENCE_ENV = {
    "PARLEY_PRESENCE_TTL_SECONDS": "4",
    "PARLEY_PRESENCE_HEARTBEAT_SECONDS": "1",
    "PARLEY_PRESENCE_SWEEP_SECONDS": "0.5",
    "PARLEY_PRESENCE_GRACE_SECONDS": "1",
}


class System:
    def __init__(
        self,
        settings: Settings,
        gateways: list[Service],
        others: list[Service],
        env: dict[str, str] | None = None,
    ):
        self.settings = settings
        self.gateways = gateways
        self.others = others
        self.env = env or {}  # what its services were started with (for extra ones)
        self.clients: list[ChatClient] = []

    def token(self, user: str, **kw) -> str:
        return issue_token(self.settings, user, **kw)

    async def client(self, user: str, gateway: int = 0, transports=None) -> ChatClient:
        c = ChatClient(self.gateways[gateway].url, self.token(user), transports)
        self.clients.append(c)
        return await c.connect()

    async def close_clients(self) -> None:
        for c in self.clients:
            await c.close()
        self.clients.clear()


def run_system(settings: Settings, engine_env: dict[str, str], name: str = ""):
    """Two gateways, the worker and the presence service on ``engine_env`` (a generator for
    session fixtures: yields the ``System``, stops it after)."""
    env = {**engine_env, **PRESENCE_ENV}
    tag = f"-{name}" if name else ""  # process and log names: gateway-a, gateway-rc-a, ...
    gateways = [Service("gateway", f"gateway{tag}-{n}", env) for n in ("a", "b")]
    others = [
        Service("persistence", f"persistence{tag}", env),
        Service("presence", f"presence{tag}", env),
    ]
    every = gateways + others
    try:
        for s in every:
            s.start()
        for s in every:
            s.wait_ready()
        yield System(settings, gateways, others, env)
    finally:
        for s in every:
            s.stop()


@pytest.fixture(scope="session")
def cluster(migrated, engine_env):
    yield from run_system(migrated, engine_env)


@pytest.fixture(scope="session")
def single_node(tmp_path_factory):
    path = tmp_path_factory.mktemp("single") / "parley.db"
    env = {"PARLEY_MODE": "single", "PARLEY_SQLITE_PATH": str(path)}
    gateway = Service("gateway", "single", env).start()
    try:
        gateway.wait_ready()
        yield System(Settings.from_env(env), [gateway], [])
    finally:
        gateway.stop()


@pytest.fixture(params=["cluster", "single"])
def deployment(request) -> System:
    """The same end-to-end test on both deployments."""
    return request.getfixturevalue("cluster" if request.param == "cluster" else "single_node")


@pytest.fixture
async def system(deployment):
    yield deployment
    await deployment.close_clients()
