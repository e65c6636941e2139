"""Make a token list for a load test (one JWT per line), for ``PARLEY_LT_TOKENS_FILE``.

python loadtests/tokens.py mint 500 --secret "$PARLEY_JWT_SECRET" > tokens.txt
    HS256 tokens signed with the deployment's secret (a test or staging deployment
    whose secret you hold): no accounts are created, nothing is rate limited.
python loadtests/tokens.py register 500 --host https://chat.example.com > tokens.txt
    real accounts through POST /auth/register + /auth/login, paced by the server's
    Retry-After when it answers 429 (registrations are limited per client IP).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid

import jwt
import requests


def mint(
    count: int, secret: str, prefix: str, ttl: int, audience: str = "", issuer: str = ""
) -> list[str]:
    """HS256 tokens as Parley issues them (``sub``, ``username``, ``iat``, ``exp``; ``aud`` and
    ``iss`` when the deployment checks them: PARLEY_JWT_AUDIENCE / PARLEY_JWT_ISSUER)."""
    now = int(time.time())
    extra = {k: v for k, v in (("aud", audience), ("iss", issuer)) if v}
    return [
        jwt.encode(
            {"sub": f"{prefix}{i}", "username": f"{prefix}{i}", "iat": now, "exp": now + ttl}
            | extra,
            secret,
            algorithm="HS256",
        )
        for i in range(count)
    ]


def register(count: int, host: str, prefix: str) -> list[str]:
    tokens = []
    with requests.Session() as http:
        for i in range(count):
            body = {"username": f"{prefix}{i}", "password": "lt-" + uuid.uuid4().hex}
            for path in ("/auth/register", "/auth/login"):
                while True:
                    r = http.post(host.rstrip("/") + path, json=body, timeout=30)
                    if r.status_code != 429:
                        break
                    wait = float(r.headers.get("Retry-After", "5"))
                    print(f"{path}: 429, waiting {wait:.0f}s", file=sys.stderr)
                    time.sleep(wait)
                if r.status_code not in (200, 201):
                    sys.exit(f"{path} for {body['username']}: {r.status_code} {r.text[:200]}")
            tokens.append(r.json()["token"])
    return tokens


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("how", choices=["mint", "register"])
    p.add_argument("count", type=int)
    p.add_argument("--secret", help="mint: the HS256 secret (PARLEY_JWT_SECRET)")
    p.add_argument("--ttl", type=int, default=86400, help="mint: lifetime in seconds")
    p.add_argument("--audience", default="", help="mint: aud claim (PARLEY_JWT_AUDIENCE)")
    p.add_argument("--issuer", default="", help="mint: iss claim (PARLEY_JWT_ISSUER)")
    p.add_argument("--host", help="register: the deployment's base URL")
    p.add_argument("--prefix", default="lt" + uuid.uuid4().hex[:6], help="user name prefix")
    args = p.parse_args(argv)
    if args.how == "mint":
        if not args.secret or len(args.secret.encode()) < 32:
            p.error("mint needs --secret of at least 32 bytes")
        tokens = mint(args.count, args.secret, args.prefix, args.ttl, args.audience, args.issuer)
    else:
        if not args.host:
            p.error("register needs --host")
        tokens = register(args.count, args.host, args.prefix)
    sys.stdout.write("".join(t + "\n" for t in tokens))


if __name__ == "__main__":
    main()
