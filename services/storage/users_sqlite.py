"""SQLite ``UserStore`` for the single-node mode.

It shares the database file with the message store (``PARLEY_SQLITE_PATH``) but has its own
connection, worker thread and ``users`` table. A ``UNIQUE`` index on the lower-cased name
makes ``create`` atomic; writes commit before returning (WAL, ``synchronous=NORMAL``).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from services.storage.sqlite_io import SqliteThread
from services.storage.users import User, UsernameTaken, username_key

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


def _user(row: tuple[Any, ...] | None) -> User | None:
    if row is None:
        return None
    return User(user_id=row[0], username=row[1], password_hash=row[2], created_ms=row[3])


class SqliteUserStore:
    def __init__(self, path: str) -> None:
        self._db = SqliteThread(path, SCHEMA, "users")
        self._run = self._db.run

    async def start(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    async def healthy(self) -> bool:
        return await self._db.healthy()

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
