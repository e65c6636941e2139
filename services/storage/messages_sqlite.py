"""SQLite message store for the single-node mode; it is also that mode's durable log.

One connection on one worker thread (SQLite is not async); WAL journal, ``synchronous=NORMAL``
so a committed append survives a crash of the process. ``append`` commits before returning,
so an ``ok`` ack means the message is in the WAL file and history survives a restart.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from services.common.model import Message, Receipt, Record
from services.storage.sqlite_io import SqliteThread

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    room_id TEXT NOT NULL,
    id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    username TEXT NOT NULL,
    body TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    reply_to TEXT,
    client_msg_id TEXT,
    attachment TEXT,
    PRIMARY KEY (room_id, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS read_receipts (
    room_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    read_ms INTEGER NOT NULL,
    PRIMARY KEY (room_id, message_id, user_id)
) WITHOUT ROWID;
"""
_COLUMNS = "id, room_id, user_id, username, body, created_ms, reply_to, client_msg_id, attachment"


def _row(r: tuple[Any, ...]) -> Message:
    return Message(
        id=r[0],
        room_id=r[1],
        user_id=r[2],
        username=r[3],
        text=r[4],
        created_ms=r[5],
        reply_to=r[6],
        client_msg_id=r[7],
        attachment=json.loads(r[8]) if r[8] else None,
    )


class SqliteMessageStore:
    def __init__(self, path: str) -> None:
        self._db = SqliteThread(path, SCHEMA, "messages")
        self._run = self._db.run

    async def start(self) -> None:
        def upgrade(db: sqlite3.Connection) -> None:
            columns = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
            if "attachment" not in columns:  # databases made before attachments existed
                db.execute("ALTER TABLE messages ADD COLUMN attachment TEXT")

        await self._db.open(upgrade)

    async def close(self) -> None:
        await self._db.close()

    async def healthy(self) -> bool:
        return await self._db.healthy()

    async def write(self, messages: Sequence[Message]) -> None:
        rows = [
            (
                m.id,
                m.room_id,
                m.user_id,
                m.username,
                m.text,
                m.created_ms,
                m.reply_to,
                m.client_msg_id,
                json.dumps(m.attachment) if m.attachment else None,
            )
            for m in messages
        ]

        def insert(db: sqlite3.Connection) -> None:
            with db:
                db.executemany(
                    f"INSERT OR IGNORE INTO messages ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)", rows
                )

        await self._run(insert)

    async def write_receipts(self, receipts: Sequence[Receipt]) -> None:
        rows = [(r.room_id, r.message_id, r.user_id, r.read_ms) for r in receipts]

        def insert(db: sqlite3.Connection) -> None:
            with db:
                db.executemany("INSERT OR IGNORE INTO read_receipts VALUES (?,?,?,?)", rows)

        await self._run(insert)

    async def append(self, record: Record) -> None:
        if isinstance(record, Receipt):
            await self.write_receipts([record])
        else:
            await self.write([record])

    async def _select(self, sql: str, params: tuple[Any, ...]) -> list[Message]:
        """Run a message query and attach each message's readers (one more query)."""

        def query(db: sqlite3.Connection) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
            rows = db.execute(sql, params).fetchall()
            if not rows:
                return rows, []
            ids = [r[0] for r in rows]
            marks = ",".join("?" * len(ids))
            readers = db.execute(
                f"SELECT message_id, user_id FROM read_receipts WHERE room_id=? "
                f"AND message_id IN ({marks}) ORDER BY read_ms",
                (rows[0][1], *ids),
            ).fetchall()
            return rows, readers

        rows, readers = await self._run(query)
        by_message: dict[str, list[str]] = {}
        for message_id, user_id in readers:
            by_message.setdefault(message_id, []).append(user_id)
        return [_row(r).with_readers(by_message.get(r[0], [])) for r in rows]

    async def recent(self, room_id: str, limit: int) -> list[Message]:
        rows = await self._select(
            f"SELECT {_COLUMNS} FROM messages WHERE room_id=? ORDER BY id DESC LIMIT ?",
            (room_id, limit),
        )
        return rows[::-1]

    async def contains(self, room_id: str, message_id: str) -> bool:
        row = await self._run(
            lambda db: db.execute(
                "SELECT 1 FROM messages WHERE room_id=? AND id=?", (room_id, message_id)
            ).fetchone()
        )
        return row is not None

    async def after(self, room_id: str, since_id: str, cap: int) -> tuple[list[Message], bool]:
        rows = await self._select(
            f"SELECT {_COLUMNS} FROM messages WHERE room_id=? AND id>? ORDER BY id LIMIT ?",
            (room_id, since_id, cap + 1),
        )
        return rows[:cap], len(rows) > cap

    async def before(
        self, room_id: str, before_id: str | None, limit: int
    ) -> tuple[list[Message], bool]:
        bound = before_id if before_id is not None else "\U0010ffff"
        rows = await self._select(
            f"SELECT {_COLUMNS} FROM messages WHERE room_id=? AND id<? ORDER BY id DESC LIMIT ?",
            (room_id, bound, limit + 1),
        )
        return rows[:limit][::-1], len(rows) > limit
