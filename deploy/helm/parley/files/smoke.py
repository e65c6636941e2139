"""`helm test` smoke check of a Parley release (standard library + PyJWT, both in the image).

    python smoke.py http://<gateway-service>[:port]

1. GET /readyz must answer 200.
2. A Socket.IO client (Engine.IO v4 long-polling, the transport every proxy passes) connects to
   /chat with a JWT signed by the release's own key (PARLEY_JWT_SECRET for HS256, or
   PARLEY_JWT_PRIVATE_KEY for RS256; PARLEY_JWT_AUDIENCE / PARLEY_JWT_ISSUER added when set),
   joins a fresh room and sends one chat:message, whose ack must be {status: "ok", messageId}.
Exit 0 on success; any failure prints what was expected and what came back, and exits 1.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import sys
import time
import urllib.request
import uuid

import jwt

RS = "\x1e"  # Engine.IO v4 packet separator in a polling payload
NS = "/chat"


class Smoke:
    def __init__(self, base: str, timeout: float = 10.0) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout
        # Cookies keep a sticky-session cookie (ingress affinity) across the polling requests.
        self.http = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        self.sid = ""
        self.pending: list[str] = []

    def request(self, path: str, data: str | None = None) -> tuple[int, str]:
        req = urllib.request.Request(
            self.base + path,
            data=None if data is None else data.encode(),
            headers={"Content-Type": "text/plain;charset=UTF-8"},
            method="GET" if data is None else "POST",
        )
        try:
            with self.http.open(req, timeout=self.timeout) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")

    def poll_path(self) -> str:
        return f"/socket.io/?EIO=4&transport=polling&t={uuid.uuid4().hex[:8]}&sid={self.sid}"

    def send(self, packet: str) -> None:
        status, body = self.request(self.poll_path(), packet)
        if status != 200:
            fail(f"POST {packet[:40]!r}: HTTP {status} {body[:200]}")

    def receive(self, prefix: str) -> str:
        """The next Socket.IO packet starting with ``prefix`` (answering pings meanwhile)."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            while self.pending:
                packet = self.pending.pop(0)
                if packet == "2":
                    self.send("3")
                elif packet.startswith(prefix):
                    return packet[len(prefix) :]
                elif packet.startswith("44" + NS):
                    fail(f"connect_error on {NS}: {packet}")
            status, body = self.request(self.poll_path())
            if status != 200:
                fail(f"GET poll: HTTP {status} {body[:200]}")
            self.pending.extend(p for p in body.split(RS) if p)
        fail(f"no packet {prefix!r} within {self.timeout}s")
        raise AssertionError  # unreachable

    def run(self, token: str) -> str:
        status, body = self.request("/readyz")
        if status != 200:
            fail(f"/readyz: HTTP {status} {body[:200]}")
        print(f"readyz: {body}")
        status, body = self.request("/socket.io/?EIO=4&transport=polling")
        if status != 200 or not body.startswith("0"):
            fail(f"Engine.IO open: HTTP {status} {body[:200]}")
        self.sid = json.loads(body[1:])["sid"]
        self.send(f"40{NS}," + json.dumps({"token": token}))
        print("connected:", self.receive(f"40{NS},"))
        room = "helm-smoke-" + uuid.uuid4().hex[:10]
        self.send(f"42{NS},1" + json.dumps(["room:join", room]))
        ack = json.loads(self.receive(f"43{NS},1"))[0]
        if ack.get("status") != "ok":
            fail(f"room:join ack: {ack}")
        self.send(f"42{NS},2" + json.dumps(["chat:message", {"roomId": room, "text": "helm test"}]))
        ack = json.loads(self.receive(f"43{NS},2"))[0]
        if ack.get("status") != "ok" or not ack.get("messageId"):
            fail(f"chat:message ack: expected status ok with a messageId, got {ack}")
        self.send("41" + NS + ",")
        return ack["messageId"]


def token_from_env(env: dict[str, str]) -> str:
    algorithm = env.get("PARLEY_JWT_ALGORITHM", "HS256")
    key = (
        env.get("PARLEY_JWT_PRIVATE_KEY") if algorithm == "RS256" else env.get("PARLEY_JWT_SECRET")
    )
    if not key:
        fail(f"no signing key in the environment for {algorithm} (the release's Secret)")
    now = int(time.time())
    claims: dict[str, object] = {"sub": "helm-smoke", "username": "helm-smoke", "iat": now}
    claims["exp"] = now + 300
    if env.get("PARLEY_JWT_AUDIENCE"):
        claims["aud"] = env["PARLEY_JWT_AUDIENCE"]
    if env.get("PARLEY_JWT_ISSUER"):
        claims["iss"] = env["PARLEY_JWT_ISSUER"]
    return jwt.encode(claims, key, algorithm=algorithm)


def fail(message: str) -> None:
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def main() -> None:
    if len(sys.argv) != 2:
        fail("usage: smoke.py http://<gateway>[:port]")
    message_id = Smoke(sys.argv[1]).run(token_from_env(dict(os.environ)))
    print(f"ok: chat:message acked with messageId {message_id}")


if __name__ == "__main__":
    main()
