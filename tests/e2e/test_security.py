"""Security hardening (issue 16), tried as an attacker would: raw Engine.IO frames, real
clients and plain HTTP against running gateways.

One single-node gateway with tight limits (``hardened``) serves most checks; the kick-revoke
check runs on both deployments (Redis denylist in cluster mode).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid

import httpx
import pytest
import socketio
import websockets

from services.common.auth import issue_token
from services.common.settings import Settings
from tests.support.client import ChatClient
from tests.support.nsclient import NamespaceClient
from tests.support.procs import ROOT, Service, free_port

pytestmark = pytest.mark.e2e

INVALID = {"status": "error", "error": "Invalid message", "code": "invalid_message"}
MiB = 1024 * 1024


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def hardened(tmp_path_factory):
    """A single-node gateway with small limits, a metrics port apart, an explicit CORS origin
    and a trusted-proxy list that does not include the tests' own address."""
    metrics_port = free_port()
    env = {
        "PARLEY_MODE": "single",
        "PARLEY_SQLITE_PATH": str(tmp_path_factory.mktemp("hardened") / "parley.db"),
        "PARLEY_MAX_ROOMS_PER_SOCKET": "3",
        "PARLEY_RATE_LIMITS": "chat:message=100/10,room:join=8/60,chat:history=3/60",
        "PARLEY_METRICS_PORT": str(metrics_port),
        "PARLEY_CORS_ORIGINS": "https://chat.example",
        "PARLEY_TRUSTED_PROXIES": "10.0.0.0/8",
        "PARLEY_LOGIN_IP_RATE_LIMIT": "3/60",
        "PARLEY_PASSWORD_BCRYPT_ROUNDS": "4",
    }
    gateway = Service("gateway", unique("hardened"), env).start()
    try:
        gateway.wait_ready()
        gateway.metrics_port = metrics_port
        gateway.settings = Settings.from_env(env)
        yield gateway
    finally:
        gateway.stop()


def token(gateway, user: str, **kw) -> str:
    return issue_token(gateway.settings, user, **kw)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


class RawSocket:
    """Engine.IO v4 over a bare WebSocket: what an attacker types, not what a client library
    would send."""

    def __init__(self, url: str) -> None:
        self.url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        self.ws = None

    async def __aenter__(self) -> RawSocket:
        self.ws = await websockets.connect(self.url, max_size=None)
        opened = await self.ws.recv()
        assert opened.startswith("0{"), opened
        return self

    async def __aexit__(self, *exc) -> None:
        await self.ws.close()

    async def send(self, frame: str | bytes) -> None:
        await self.ws.send(frame)

    async def recv_packet(self, timeout: float = 5) -> str | bytes:
        """The next Socket.IO packet, answering Engine.IO pings on the way."""
        while True:
            frame = await asyncio.wait_for(self.ws.recv(), timeout)
            if frame == "2":
                await self.ws.send("3")
                continue
            return frame

    async def open_chat(self, tok: str) -> str:
        await self.send("40/chat," + json.dumps({"token": tok}))
        while True:
            packet = await self.recv_packet()
            if isinstance(packet, str) and packet.startswith("40/chat,"):
                return json.loads(packet[len("40/chat,") :])["sid"]

    async def closed(self, timeout: float = 5) -> bool:
        try:
            while True:
                await self.recv_packet(timeout)
        except websockets.ConnectionClosed:
            return True
        except TimeoutError:
            return False


# --- 1. namespaces and binary attachments --------------------------------------------------


async def test_the_root_namespace_and_unknown_ones_are_refused(hardened):
    async with RawSocket(hardened.url) as raw:
        await raw.send("40")
        assert await raw.recv_packet() == '44"Unable to connect"'  # python-socketio's form
        await raw.send("40/secret,")
        assert await raw.recv_packet() == '44/secret,"Unable to connect"'
    client = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(hardened.url, namespaces=["/"], transports=["websocket"])
    await client.disconnect()


async def test_unauthenticated_binary_frames_are_refused_not_buffered(hardened):
    async with RawSocket(hardened.url) as raw:
        await raw.send('451-["x",{"_placeholder":true,"num":0}]')  # root: never connected
        await raw.send(os.urandom(1024))
        assert await raw.closed()


async def test_the_attachment_attack_disconnects_and_memory_stays_flat(hardened):
    user = unique("mallory")
    before = rss_kib(hardened.proc.pid)
    async with RawSocket(hardened.url) as raw:
        await raw.open_chat(token(hardened, user))
        # Engine.IO message (4), Socket.IO BINARY_EVENT (5) announcing 100 attachments
        await raw.send('45100-/chat,["chat:file",' + json.dumps({"roomId": "r"}) + "]")
        chunk = os.urandom(MiB)
        sent = 0
        with pytest.raises(websockets.ConnectionClosed):
            for _ in range(100):
                await raw.send(chunk)
                sent += 1
                await asyncio.sleep(0.005)
            await raw.recv_packet()  # only reached if nothing closed the socket
    await asyncio.sleep(0.5)
    grown_mib = (rss_kib(hardened.proc.pid) - before) / 1024
    assert grown_mib < 8, f"gateway RSS grew {grown_mib:.1f} MiB after {sent} frames"
    assert "input_limit" in hardened.tail(200)


async def test_a_binary_frame_nobody_announced_disconnects_once_logged(hardened):
    async with RawSocket(hardened.url) as raw:
        await raw.open_chat(token(hardened, unique("trent")))
        await raw.send(b"\x00" * 1024)
        assert await raw.closed()


async def test_one_file_still_uploads_with_its_single_attachment(hardened):
    client = ChatClient(hardened.url, token(hardened, unique("uma")))
    await client.connect()
    try:
        room = unique("files")
        await client.call("room:join", room)
        ack = await client.call(
            "chat:file",
            {"roomId": room, "file": b"hello", "fileName": "a.txt", "mimeType": "text/plain"},
        )
        assert ack["status"] == "ok"
    finally:
        await client.close()


# --- 2. secrets --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [None, "parley-dev-secret-change-me-in-production", "ten-bytes!", "x" * 31],
)
def test_cluster_mode_refuses_weak_jwt_secrets(secret):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env.update({"PARLEY_MODE": "cluster", "PARLEY_PORT": str(free_port())})
    if secret is not None:
        env["PARLEY_JWT_SECRET"] = secret
    result = subprocess.run(
        [sys.executable, "-m", "services.gateway"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "PARLEY_JWT_SECRET" in result.stderr


# --- 5. trusted proxies ------------------------------------------------------------------


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(hardened):
    statuses = []
    async with httpx.AsyncClient(base_url=hardened.url) as http:
        for n in range(4):  # a spoofed address each time; the limit still sees 127.0.0.1
            r = await http.post(
                "/auth/login",
                json={"username": unique("spray"), "password": "password1"},
                headers={"X-Forwarded-For": f"203.0.113.{n}"},
            )
            statuses.append(r.status_code)
    assert statuses == [401, 401, 401, 429]


# --- 6. internal room names --------------------------------------------------------------


async def test_derived_room_names_cannot_be_joined_and_tokens_cannot_use_them(hardened):
    client = ChatClient(hardened.url, token(hardened, unique("ivan")))
    await client.connect()
    try:
        for room in ("lobby#live", "lobby#batch", "#"):
            assert await client.call("room:join", room) == INVALID
            assert await client.call("chat:message", {"roomId": room, "text": "x"}) == INVALID
    finally:
        await client.close()
    refused = await ChatClient(hardened.url, token(hardened, "a#live")).try_connect()
    assert refused["message"] == "Invalid token"


# --- 7. deep JSON ------------------------------------------------------------------------


async def test_a_deeply_nested_payload_gets_one_invalid_message_ack_logged_once(hardened):
    depth = 100_000
    deep = "[" * depth + "]" * depth
    async with RawSocket(hardened.url) as raw:
        sid = await raw.open_chat(token(hardened, unique("deep")))
        for ack_id in (7, 8):
            await raw.send(f'42/chat,{ack_id}["chat:message",{deep}]')
            packet = await raw.recv_packet()
            while not packet.startswith("43/chat,"):
                packet = await raw.recv_packet()
            assert packet == f"43/chat,{ack_id}[{json.dumps(INVALID, separators=(',', ':'))}]"
        await raw.send('42/chat,9["room:join","still-serving"]')
        packet = await raw.recv_packet()
        while not packet.startswith("43/chat,9"):
            packet = await raw.recv_packet()
        assert '"status":"ok"' in packet
    await asyncio.sleep(0.2)
    log = hardened.tail(400)
    assert log.count(f"sid={sid} nested too deeply") == 1
    assert "RecursionError" not in log


# --- 8. upload types and downloads -------------------------------------------------------


async def test_mime_types_follow_the_rfc_grammar_and_active_types_are_refused(hardened):
    user = unique("wendy")
    client = ChatClient(hardened.url, token(hardened, user))
    await client.connect()
    try:
        room = unique("files")
        await client.call("room:join", room)

        async def upload(mime):
            return await client.call(
                "chat:file", {"roomId": room, "file": b"x", "fileName": "f", "mimeType": mime}
            )

        for bad in ("image/png\r\nX-Evil: 1", "image/../text/html", "image/svg+xml", "image/"):
            assert await upload(bad) == INVALID, bad
        ack = await upload("text/plain")
        assert ack["status"] == "ok"
        async with httpx.AsyncClient() as http:
            r = await http.get(
                hardened.url + ack["attachment"]["url"],
                headers={"Authorization": f"Bearer {token(hardened, user)}"},
            )
        assert r.status_code == 200
        assert r.headers["content-security-policy"] == "default-src 'none'; sandbox"
        assert r.headers["content-disposition"].startswith("attachment;")
    finally:
        await client.close()


# --- 9. unbounded work -------------------------------------------------------------------


async def test_rooms_per_socket_are_capped_and_joins_and_history_are_rate_limited(hardened):
    client = ChatClient(hardened.url, token(hardened, unique("zed")))
    await client.connect()
    try:
        rooms = [unique("cap") for _ in range(4)]
        acks = [await client.call("room:join", r) for r in rooms]
        assert [a["status"] for a in acks[:3]] == ["ok"] * 3
        assert acks[3] == {"status": "error", "error": "Too many rooms", "code": "too_many_rooms"}
        assert (await client.call("room:join", rooms[0]))["status"] == "ok"  # rejoin is fine
        await client.call("room:leave", rooms[0])
        assert (await client.call("room:join", rooms[3]))["status"] == "ok"  # a free slot
        history = [await client.call("chat:history", {"roomId": rooms[1]}) for _ in range(4)]
        assert [h["status"] for h in history[:3]] == ["ok"] * 3
        assert history[3]["code"] == "rate_limited"
        more = [await client.call("room:join", rooms[1]) for _ in range(3)]
        assert more[-1]["code"] == "rate_limited"  # 8 joins a minute
    finally:
        await client.close()


# --- 10. deployment hygiene ----------------------------------------------------------------


async def test_metrics_live_on_their_own_port(hardened):
    async with httpx.AsyncClient() as http:
        assert (await http.get(hardened.url + "/metrics")).status_code == 404
        apart = await http.get(f"http://127.0.0.1:{hardened.metrics_port}/metrics")
    assert apart.status_code == 200 and "parley_gateway" in apart.text


async def test_cors_allows_only_the_configured_origin_without_credentials(hardened):
    async with httpx.AsyncClient(base_url=hardened.url) as http:
        path = "/socket.io/?EIO=4&transport=polling"
        good = await http.get(path, headers={"Origin": "https://chat.example"})
        assert good.status_code == 200
        assert good.headers["access-control-allow-origin"] == "https://chat.example"
        assert "access-control-allow-credentials" not in good.headers
        evil = await http.get(path, headers={"Origin": "https://evil.example"})
        assert evil.status_code >= 400


async def test_default_cors_is_same_origin_only(system):
    async with httpx.AsyncClient(base_url=system.gateways[0].url) as http:
        path = "/socket.io/?EIO=4&transport=polling"
        evil = await http.get(path, headers={"Origin": "https://evil.example"})
        assert evil.status_code >= 400
        own = system.gateways[0].url
        same = await http.get(path, headers={"Origin": own})
        assert same.status_code == 200


async def test_kick_with_revoke_denies_the_token_everywhere(system):
    victim = unique("victim")
    held = system.token(victim)
    gateways = range(len(system.gateways))
    chats = [ChatClient(system.gateways[g].url, held) for g in gateways]
    for c in chats:
        await c.connect()
        system.clients.append(c)
    root = NamespaceClient(
        system.gateways[0].url, "/admin", {"token": system.token(unique("root"), role="admin")}
    )
    system.clients.append(root)
    await root.connect()
    ack = await root.call("admin:kick", {"userId": victim, "revoke": True})
    assert ack["status"] == "ok"
    deadline = asyncio.get_running_loop().time() + 10
    while any(c.sio.connected for c in chats):
        assert asyncio.get_running_loop().time() < deadline, "not kicked"
        await asyncio.sleep(0.1)
    for g in gateways:
        refused = await ChatClient(system.gateways[g].url, held).try_connect()
        assert refused == {"message": "Invalid token", "data": {"code": "token_revoked"}} or (
            refused.get("message") == "Invalid token"
        ), refused
    fresh = await system.client(victim, gateway=len(system.gateways) - 1)
    assert fresh.sio.connected  # a new login works: revoke is not a ban
