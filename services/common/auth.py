"""JWT verification (the handshake) and development token issuing.

Algorithms are pinned by settings (HS256 with a shared secret, or RS256 with a public key);
``none`` and every other algorithm are refused. ``exp`` is required and enforced with a small
leeway. The user id is ``sub``, or the classic ``userId`` claim when ``sub`` is absent.

Issuing (``POST /auth/login``, ``make token``, tests) signs with the same algorithm: HS256 with
the secret, or RS256 with ``PARLEY_JWT_PRIVATE_KEY``. A process configured for RS256 without
a private key can verify tokens but not issue them (``SigningUnavailable``).
"""

from __future__ import annotations

import functools
import time
import uuid
from dataclasses import dataclass
from typing import TypeGuard

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from .model import is_text
from .settings import Settings

AUTH_REQUIRED = "Authentication required"
INVALID_TOKEN = "Invalid token"


@dataclass(frozen=True)
class Identity:
    user_id: str
    username: str
    role: str = "user"
    jti: str | None = None  # the token's id, when it has one (revocable by admin:kick)
    exp: int = 0  # the token's expiry, epoch seconds

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class AuthError(Exception):
    """A refused handshake: ``message`` is sent to the client verbatim, ``code`` as data."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class SigningUnavailable(Exception):
    """This process cannot sign tokens: RS256 without a usable ``PARLEY_JWT_PRIVATE_KEY``."""


def extract_token(auth: object) -> str | None:
    """The token from a Socket.IO handshake ``auth`` object (``{token}``), if any."""
    if isinstance(auth, dict):
        token = auth.get("token")
        if isinstance(token, str) and token.strip():
            return token.strip()
    return None


def verify_token(token: str | None, settings: Settings) -> Identity:
    if not token:
        raise AuthError(AUTH_REQUIRED, "auth_required")
    key = settings.jwt_public_key if settings.jwt_algorithm == "RS256" else settings.jwt_secret
    required = ["exp"]
    if settings.jwt_audience:
        required.append("aud")
    if settings.jwt_issuer:
        required.append("iss")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[settings.jwt_algorithm],
            leeway=settings.jwt_leeway_seconds,
            audience=settings.jwt_audience or None,
            issuer=settings.jwt_issuer or None,
            options={"require": required, "verify_aud": bool(settings.jwt_audience)},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError(INVALID_TOKEN, "token_expired") from None
    except jwt.InvalidTokenError:
        raise AuthError(INVALID_TOKEN, "invalid_token") from None
    user_id = claims.get("sub")
    if user_id is None:
        user_id = claims.get("userId")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    if not is_valid_subject(user_id):
        raise AuthError(INVALID_TOKEN, "invalid_subject")
    username = claims.get("username")
    if not is_text(username) or not username:
        username = user_id
    role = str(claims["role"]) if isinstance(claims.get("role"), str) else "user"
    jti = claims.get("jti") if is_text(claims.get("jti")) and claims.get("jti") else None
    exp = claims["exp"] if isinstance(claims.get("exp"), int) else 0
    return Identity(user_id=user_id, username=username, role=role, jti=jti, exp=exp)


def is_valid_subject(user_id: object) -> TypeGuard[str]:
    """A user id: 1..200 chars of text, without ``:`` (room names use it as a separator)
    or ``#`` (reserved for names the server derives, never joinable)."""
    return (
        is_text(user_id) and 0 < len(user_id) <= 200 and ":" not in user_id and "#" not in user_id
    )


def issue_token(
    settings: Settings,
    user_id: str,
    username: str | None = None,
    role: str | None = None,
    ttl_seconds: int | None = None,
    now: float | None = None,
) -> str:
    """A token for ``user_id`` signed with the configured algorithm and key.

    Raises ``SigningUnavailable`` under RS256 without a usable private key.
    """
    key = signing_key(settings)
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {
        "sub": user_id,
        "username": username or user_id,
        "iat": issued,
        "exp": issued + (ttl_seconds or settings.dev_token_ttl_seconds),
        "jti": uuid.uuid4().hex,
    }
    if role:
        claims["role"] = role
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    return jwt.encode(claims, key, algorithm=settings.jwt_algorithm)


def signing_key(settings: Settings) -> str | RSAPrivateKey:
    """The key ``issue_token`` signs with (the HS256 secret or the loaded RSA private key)."""
    if settings.jwt_algorithm != "RS256":
        return settings.jwt_secret
    if not settings.jwt_private_key:
        raise SigningUnavailable("PARLEY_JWT_PRIVATE_KEY is not set (RS256)")
    return _load_private_key(settings.jwt_private_key)


@functools.lru_cache(maxsize=4)
def _load_private_key(pem: str) -> RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SigningUnavailable(
            "PARLEY_JWT_PRIVATE_KEY: not an unencrypted PEM private key"
        ) from None
    if not isinstance(key, RSAPrivateKey):
        raise SigningUnavailable("PARLEY_JWT_PRIVATE_KEY: not an RSA key (RS256)")
    return key
