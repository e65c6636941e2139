"""End-to-end: the Socket.IO Admin UI (instrumented namespace + static files).

The shared deployments run without an Admin UI password (the default, UI off), so this module
starts its own gateways with one: a single node, and two cluster-mode pods on a private Redis
prefix (so they neither join the shared cluster's fan-out nor its stats).
"""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from services.common.auth import issue_token
from services.common.settings import Settings
from tests.support.client import ChatClient
from tests.support.nsclient import NamespaceClient
from tests.support.procs import Service

pytestmark = pytest.mark.e2e

NS = "/socketio-admin"
PASSWORD = "ui-" + uuid.uuid4().hex[:8]
UI_ENV = {
    "PARLEY_ADMIN_UI_USERNAME": "ops",
    "PARLEY_ADMIN_UI_PASSWORD": PASSWORD,
    "PARLEY_JWT_SECRET": "ui-secret-" + uuid.uuid4().hex,  # cluster mode wants >= 32 bytes
}
GOOD = {"username": "ops", "password": PASSWORD}


@pytest.fixture(scope="module", params=["single", "cluster"])
def ui_gateways(request, tmp_path_factory):
    if request.param == "single":
        db = tmp_path_factory.mktemp("ui-single") / "parley.db"
        env = {"PARLEY_MODE": "single", "PARLEY_SQLITE_PATH": str(db), **UI_ENV}
        services = [Service("gateway", "ui-single", env)]
    else:
        engine_env = request.getfixturevalue("engine_env")
        request.getfixturevalue("migrated")
        env = {
            **engine_env,
            **UI_ENV,
            "PARLEY_REDIS_PREFIX": engine_env["PARLEY_REDIS_PREFIX"] + "ui:",
        }
        services = [Service("gateway", f"ui-gateway-{n}", env) for n in ("a", "b")]
    try:
        for s in services:
            s.start()
        for s in services:
            s.wait_ready()
        yield services
    finally:
        for s in services:
            s.stop()


@pytest.fixture
async def clients():
    made: list = []
    yield made
    for c in made:
        await c.close()


def token(user: str, **kw) -> str:
    return issue_token(Settings.from_env(UI_ENV), user, **kw)


async def test_wrong_credentials_are_refused(ui_gateways, clients):
    url = ui_gateways[0].url
    for auth in (None, {"username": "ops", "password": "wrong"}, {**GOOD, "username": "x"}):
        c = NamespaceClient(url, NS, auth)
        clients.append(c)
        assert (await c.try_connect())["message"] == "authentication failed"


async def test_the_ui_namespace_reports_every_pod(ui_gateways, clients):
    uis = [NamespaceClient(g.url, NS, GOOD, ["polling", "websocket"]) for g in ui_gateways]
    clients.extend(uis)
    for ui in uis:
        await ui.connect()
    config = await uis[0].wait_for("config")
    features = config["supportedFeatures"]
    assert "AGGREGATED_EVENTS" in features and "EMIT" not in features  # read-only
    for g in ui_gateways:  # server_stats of every pod reach a UI connected to the first
        pod = g.env["PARLEY_POD_ID"]
        stats = await uis[0].wait_for("server_stats", lambda s, pod=pod: s["serverId"] == pod)
        names = {n["name"] for n in stats["namespaces"]}
        assert {"/chat", "/notifications", "/admin"} <= names


async def test_parley_still_works_on_an_instrumented_gateway(ui_gateways, clients):
    room = "ui-" + uuid.uuid4().hex[:8]
    chats = []
    # (long-polling through the instrumented engine.io is covered by the UI clients above,
    # which connect with polling and upgrade)
    for g in (ui_gateways * 2)[:2]:
        c = ChatClient(g.url, token("u-" + uuid.uuid4().hex[:6]))
        clients.append(c)
        chats.append(await c.connect())
        assert (await c.call("room:join", room))["status"] == "ok"
    ack = await chats[0].call("chat:message", {"roomId": room, "text": "instrumented"})
    assert ack["status"] == "ok"
    await chats[-1].wait_for("chat:message", lambda m: m["id"] == ack["messageId"])
    root = NamespaceClient(ui_gateways[-1].url, "/admin", {"token": token("root", role="admin")})
    clients.append(await root.connect())
    stats = await root.call("admin:stats")
    assert stats["status"] == "ok" and stats["gateways"] == len(ui_gateways)


async def test_the_ui_files_are_served(ui_gateways):
    async with httpx.AsyncClient(base_url=ui_gateways[0].url) as http:
        index = await http.get("/admin-ui/")
        assert index.status_code == 200 and "text/html" in index.headers["content-type"]
        assert "Socket.IO Admin UI" in index.text
        script = re.search(r'src="(js/app\.[^"]+\.js)"', index.text)
        assert script, index.text[:500]
        asset = await http.get("/admin-ui/" + script.group(1))
        assert asset.status_code == 200 and "javascript" in asset.headers["content-type"]
        assert (await http.get("/admin-ui/nope.js")).status_code == 404
