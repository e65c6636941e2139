"""Registered users: the ``UserStore`` port, the pure registration rules, the memory adapter.

Rules (``parse_registration``): a username is 3–32 characters of ``[A-Za-z0-9_.-]``; a password
is 8–256 characters (any Unicode, no composition rules, never trimmed). Usernames are unique
case-insensitively (``Alice`` and ``alice`` are one name) but keep the spelling they were
registered with. User ids are ``uuid4().hex``: 32 lower-case hex characters, never a ``:``
(so ``user:{id}`` and ``dm:{a}:{b}`` room names stay unambiguous), unrelated to the username.

Adapters: ``users_sqlite`` (single-node mode), ``users_cassandra`` (cluster mode, a lightweight
transaction claims the name), ``MemoryUserStore`` here (unit tests).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Protocol

USERNAME_MIN, USERNAME_MAX = 3, 32
PASSWORD_MIN, PASSWORD_MAX = 8, 256
_USERNAME = re.compile(rf"[A-Za-z0-9_.\-]{{{USERNAME_MIN},{USERNAME_MAX}}}")

INVALID_REQUEST = "invalid_request"
INVALID_USERNAME = "invalid_username"
INVALID_PASSWORD = "invalid_password"
TEXTS = {
    INVALID_REQUEST: "Body must be a JSON object with string fields username and password",
    INVALID_USERNAME: (
        f"Username must be {USERNAME_MIN}-{USERNAME_MAX} characters: "
        "letters, digits, '_', '.' or '-'"
    ),
    INVALID_PASSWORD: f"Password must be {PASSWORD_MIN}-{PASSWORD_MAX} characters",
}


@dataclass(frozen=True)
class User:
    user_id: str
    username: str  # as registered (display spelling)
    password_hash: str = field(repr=False)
    created_ms: int = 0

    @property
    def username_key(self) -> str:
        return username_key(self.username)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


class InvalidCredentials(ValueError):
    """A request the rules refuse; ``code`` and ``text`` go to the client as they are."""

    def __init__(self, code: str) -> None:
        super().__init__(TEXTS[code])
        self.code = code
        self.text = TEXTS[code]


class UsernameTaken(Exception):
    """``create`` lost: another user already has this username (in any letter case)."""


def username_key(username: str) -> str:
    """The uniqueness key of a username (ASCII lower case)."""
    return username.lower()


def is_valid_username(value: object) -> bool:
    return isinstance(value, str) and _USERNAME.fullmatch(value) is not None


def is_valid_password(value: object) -> bool:
    if not isinstance(value, str) or not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        return False
    try:
        value.encode("utf-8")  # JSON may carry lone surrogates ("\ud800"), which cannot be hashed
    except UnicodeEncodeError:
        return False
    return True


def parse_credentials(body: object) -> Credentials:
    """The shape both endpoints need: an object with string ``username`` and ``password``."""
    if not isinstance(body, dict):
        raise InvalidCredentials(INVALID_REQUEST)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise InvalidCredentials(INVALID_REQUEST)
    return Credentials(username, password)


def parse_registration(body: object) -> Credentials:
    """``parse_credentials`` plus the username and password rules."""
    credentials = parse_credentials(body)
    if not is_valid_username(credentials.username):
        raise InvalidCredentials(INVALID_USERNAME)
    if not is_valid_password(credentials.password):
        raise InvalidCredentials(INVALID_PASSWORD)
    return credentials


def new_user_id() -> str:
    return uuid.uuid4().hex


class UserStore(Protocol):
    """Registered users, found by username (login) or by id.

    Guarantees: ``create`` is atomic for every process sharing the backend. Of concurrent
    creates with one username (compared case-insensitively), exactly one succeeds; the
    others raise ``UsernameTaken``. Once ``create`` returns, every gateway's ``by_username``
    finds the user (read-your-writes across pods). Users are never changed or deleted here.
    If the backend fails, the call raises ``Unavailable``, and a ``create`` that raised may
    or may not have claimed the name.
    """

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def healthy(self) -> bool: ...

    async def create(self, user: User) -> None: ...

    async def by_username(self, username: str) -> User | None:
        """The user whose name equals ``username`` ignoring case, or None."""
        ...

    async def by_id(self, user_id: str) -> User | None: ...


class MemoryUserStore:
    """One process, no durability: the unit-test fake (check and insert never yield)."""

    def __init__(self) -> None:
        self._by_key: dict[str, User] = {}
        self._by_id: dict[str, User] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def healthy(self) -> bool:
        return True

    async def create(self, user: User) -> None:
        if user.username_key in self._by_key:
            raise UsernameTaken(user.username)
        self._by_key[user.username_key] = user
        self._by_id[user.user_id] = user

    async def by_username(self, username: str) -> User | None:
        return self._by_key.get(username_key(username))

    async def by_id(self, user_id: str) -> User | None:
        return self._by_id.get(user_id)
