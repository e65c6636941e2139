"""One SQLite connection on one worker thread, shared plumbing of the single-node adapters.

SQLite is not async: every call runs on the adapter's own thread, in order. The database is
opened in WAL mode with ``synchronous=NORMAL``: a committed write is in the WAL file when
``commit`` returns, so it survives the process dying (SIGKILL, OOM); only an operating-system
crash or power loss can lose the last commits, in exchange for no fsync per message.
Driver errors become ``Unavailable``, except ``IntegrityError``, which callers use to detect a
unique-key clash.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from services.common.errors import Unavailable

T = TypeVar("T")


class SqliteThread:
    def __init__(self, path: str, schema: str, name: str) -> None:
        self._path = path
        self._schema = schema
        self._name = name
        self._db: sqlite3.Connection | None = None
        self._closed = False
        self._thread = self._new_thread()

    def _new_thread(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-{self._name}")

    async def open(self, upgrade: Callable[[sqlite3.Connection], None] | None = None) -> None:
        """Open the file, apply the schema, then ``upgrade`` (for older databases). After a
        ``close`` (a failed start that the caller retries) it opens again on a new thread."""
        if self._closed:
            self._thread, self._closed = self._new_thread(), False

        def open_db() -> sqlite3.Connection:
            if self._path != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(self._path)), exist_ok=True)
            # timeout: other adapters' connections to the same file may hold the write lock
            db = sqlite3.connect(self._path, check_same_thread=False, timeout=10)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(self._schema)
            if upgrade is not None:
                upgrade(db)
            return db

        self._db = await asyncio.get_running_loop().run_in_executor(self._thread, open_db)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._db is None:
                raise sqlite3.OperationalError(f"{self._name} store not started")
            return fn(self._db)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, call)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise Unavailable(f"sqlite {self._name}: {exc}") from exc

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.get_running_loop().run_in_executor(self._thread, db.close)
        self._thread.shutdown(wait=False)
        self._closed = True

    async def healthy(self) -> bool:
        try:
            await self.run(lambda db: db.execute("SELECT 1").fetchone())
            return True
        except Unavailable:
            return False
