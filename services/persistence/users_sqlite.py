"""SQLite ``UserStore`` for the single-node mode.

It shares the database file with the message store (``PARLEY_SQLITE_PATH``) but has its own
connection, worker thread and ``users`` table. A ``UNIQUE`` index on the lower-cased name
makes ``create`` atomic; writes commit before returning (WAL, ``synchronous=FULL``).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from services.common.errors import Unavailable

from .users import User, UsernameTaken, username_key

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    username_key TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
"""
_COLUMNS = "user_id, username, password_hash, created_ms"


def _user(row: tuple | None) -> User | None:
    if row is None:
        return None
    return User(user_id=row[0], username=row[1], password_hash=row[2], created_ms=row[3])


class SqliteUserStore:
    def __init__(self, path: str) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-users")

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._db is None:
                raise sqlite3.OperationalError("user store not started")
            return fn(self._db)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, call)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise Unavailable(f"sqlite users: {exc}") from exc

    async def start(self) -> None:
        def open_db() -> sqlite3.Connection:
            if self._path != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(self._path)), exist_ok=True)
            # timeout: wait for the message store's connection to release the write lock
            db = sqlite3.connect(self._path, check_same_thread=False, timeout=10)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(SCHEMA)
            return db

        self._db = await asyncio.get_running_loop().run_in_executor(self._thread, open_db)

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.get_running_loop().run_in_executor(self._thread, db.close)
        self._thread.shutdown(wait=False)

    async def healthy(self) -> bool:
        try:
            await self._run(lambda db: db.execute("SELECT 1").fetchone())
            return True
        except Unavailable:
            return False

    async def create(self, user: User) -> None:
        row = (user.user_id, user.username, user.username_key, user.password_hash, user.created_ms)

        def insert(db: sqlite3.Connection) -> None:
            with db:
                db.execute(
                    "INSERT INTO users (user_id, username, username_key, password_hash, "
                    "created_ms) VALUES (?, ?, ?, ?, ?)",
                    row,
                )

        try:
            await self._run(insert)
        except sqlite3.IntegrityError:  # the unique name (a uuid4 id never collides)
            raise UsernameTaken(user.username) from None

    async def by_username(self, username: str) -> User | None:
        key = username_key(username)
        return _user(
            await self._run(
                lambda db: db.execute(
                    f"SELECT {_COLUMNS} FROM users WHERE username_key = ?", (key,)
                ).fetchone()
            )
        )

    async def by_id(self, user_id: str) -> User | None:
        return _user(
            await self._run(
                lambda db: db.execute(
                    f"SELECT {_COLUMNS} FROM users WHERE user_id = ?", (user_id,)
                ).fetchone()
            )
        )
