"""``PARLEY_PRESENCE_SCOPE=rooms``: a user's presence reaches only users sharing a room."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.support.client import ChatClient
from tests.support.procs import Service
from tests.support.system import PRESENCE_ENV

pytestmark = pytest.mark.e2e


def ids(users) -> set[str]:
    return {u["userId"] for u in users}


@pytest.fixture(scope="module", params=["single", "cluster", "redis-cluster"])
def scoped_gateways(request, tmp_path_factory, engine_env):
    scope = {**PRESENCE_ENV, "PARLEY_PRESENCE_SCOPE": "rooms"}
    if request.param == "single":
        db = tmp_path_factory.mktemp("scoped") / "p.db"
        env = {
            **scope,
            "PARLEY_MODE": "single",
            "PARLEY_SQLITE_PATH": str(db),
            "PARLEY_JWT_SECRET": engine_env["PARLEY_JWT_SECRET"],  # tokens from cluster.token
        }
        names = ["scoped-single"]
    else:
        request.getfixturevalue("migrated")
        base = engine_env
        if request.param == "redis-cluster":  # Redis is the local Redis Cluster
            base = request.getfixturevalue("rc_engine_env")
        env = {**base, **scope, "PARLEY_REDIS_PREFIX": f"scoped{uuid.uuid4().hex[:6]}:"}
        names = ["scoped-a", "scoped-b"]
    gateways = [Service("gateway", f"{n}-{uuid.uuid4().hex[:4]}", env).start() for n in names]
    others = []
    if request.param != "single":  # the presence service ends grace periods in cluster mode
        others.append(Service("presence", f"scoped-presence-{uuid.uuid4().hex[:4]}", env).start())
    try:
        for s in gateways + others:
            s.wait_ready()
        yield [g.url for g in gateways]
    finally:
        for s in gateways + others:
            s.stop()


async def test_presence_follows_shared_rooms(scoped_gateways, cluster):
    urls = scoped_gateways
    room = f"scoped-{uuid.uuid4().hex[:6]}"
    names = {n: f"{n}-{uuid.uuid4().hex[:6]}" for n in ("ann", "bob", "cy")}
    ann = await ChatClient(urls[0], cluster.token(names["ann"])).connect()
    bob = await ChatClient(urls[-1], cluster.token(names["bob"])).connect()
    cy = await ChatClient(urls[0], cluster.token(names["cy"])).connect()
    try:
        assert ids(await ann.wait_for("presence:list")) == {names["ann"]}
        await ann.call("room:join", room)
        await bob.call("room:join", room)
        came = await ann.wait_for("presence:online", lambda d: d["userId"] == names["bob"])
        assert came["username"] == names["bob"]
        bob_list = await bob.wait_for("presence:list", lambda lst: names["ann"] in ids(lst))
        assert ids(bob_list) == {names["ann"], names["bob"]}
        await bob.close()
        await ann.wait_for("presence:offline", lambda d: d["userId"] == names["bob"], timeout=10)
        await asyncio.sleep(0.5)
        assert cy.received("presence:online", lambda d: d["userId"] != names["cy"]) == []
        assert cy.received("presence:offline") == []
    finally:
        for c in (ann, bob, cy):
            await c.close()
