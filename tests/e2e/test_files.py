"""``chat:file`` end to end: upload, broadcast, history, authorized download, limits."""

from __future__ import annotations

import asyncio
import os
import uuid

import httpx
import pytest

pytestmark = pytest.mark.e2e


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def test_file_is_stored_broadcast_and_downloadable_by_members_only(system):
    room = unique("files")
    owner_user, member_user = unique("fay"), unique("gus")
    owner = await system.client(owner_user)
    member = await system.client(member_user, gateway=len(system.gateways) - 1)
    for c in (owner, member):
        await c.call("room:join", room)
    data = os.urandom(300 * 1024)
    ack = await owner.call(
        "chat:file", {"roomId": room, "file": data, "fileName": "pic.png", "mimeType": "image/png"}
    )
    assert ack["status"] == "ok"
    got = await member.wait_for("chat:message", lambda m: m["id"] == ack["messageId"])
    attachment = got["attachment"]
    assert got["text"] == "" and attachment["fileName"] == "pic.png"
    assert attachment["mimeType"] == "image/png" and attachment["size"] == len(data)

    url = system.gateways[-1].url + attachment["url"]
    async with httpx.AsyncClient() as http:
        ok = await http.get(url, headers={"Authorization": f"Bearer {system.token(member_user)}"})
        assert ok.status_code == 200 and ok.content == data
        assert ok.headers["content-type"] == "image/png"
        assert ok.headers["x-content-type-options"] == "nosniff"
        assert (await http.get(url)).status_code == 401
        stranger = {"Authorization": f"Bearer {system.token(unique('hal'))}"}
        assert (await http.get(url, headers=stranger)).status_code == 403
        missing = await http.get(
            system.gateways[0].url + "/files/" + uuid.uuid4().hex,
            headers={"Authorization": f"Bearer {system.token(member_user)}"},
        )
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"

    async def in_history():
        page = await member.call("chat:history", {"roomId": room})
        return [m.get("attachment") for m in page["messages"]] == [attachment]

    deadline = asyncio.get_running_loop().time() + 20
    while not await in_history():
        assert asyncio.get_running_loop().time() < deadline, "attachment not in history"
        await asyncio.sleep(0.3)


async def test_file_limits_and_membership(system):
    room = unique("limits")
    c = await system.client(unique("ivy"))
    payload = {"roomId": room, "file": b"hello", "fileName": "a.txt", "mimeType": "text/plain"}
    assert (await c.call("chat:file", payload))["code"] == "forbidden"
    await c.call("room:join", room)
    too_big = {**payload, "file": b"x" * (5 * 1024 * 1024 + 1)}
    assert await c.call("chat:file", too_big, timeout=30) == {
        "status": "error",
        "error": "File too large",
        "code": "too_large",
    }
    assert (await c.call("chat:file", {**payload, "mimeType": "text/html"}))[
        "code"
    ] == "invalid_message"
    assert (await c.call("chat:file", payload))["status"] == "ok"
