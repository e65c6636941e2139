"""JWT verification (the handshake) and development token issuing.

Algorithms are pinned by settings (HS256 with a shared secret, or RS256 with a public key);
``none`` and every other algorithm are refused. ``exp`` is required and enforced with a small
leeway. The user id is ``sub``, or the classic ``userId`` claim when ``sub`` is absent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from .settings import Settings

AUTH_REQUIRED = "Authentication required"
INVALID_TOKEN = "Invalid token"


@dataclass(frozen=True)
class Identity:
    user_id: str
    username: str
    role: str = "user"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class AuthError(Exception):
    """A refused handshake: ``message`` is sent to the client verbatim, ``code`` as data."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


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
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[settings.jwt_algorithm],
            leeway=settings.jwt_leeway_seconds,
            options={"require": ["exp"]},
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
    if not isinstance(user_id, str) or not user_id or len(user_id) > 200 or ":" in user_id:
        raise AuthError(INVALID_TOKEN, "invalid_subject")
    username = claims.get("username")
    if not isinstance(username, str) or not username:
        username = user_id
    role = claims.get("role") if isinstance(claims.get("role"), str) else "user"
    return Identity(user_id=user_id, username=username, role=role)


def issue_token(
    settings: Settings,
    user_id: str,
    username: str | None = None,
    role: str | None = None,
    ttl_seconds: int | None = None,
    now: float | None = None,
) -> str:
    """An HS256 token signed with the configured secret (development and tests)."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {
        "sub": user_id,
        "username": username or user_id,
        "iat": issued,
        "exp": issued + (ttl_seconds or settings.dev_token_ttl_seconds),
    }
    if role:
        claims["role"] = role
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")
