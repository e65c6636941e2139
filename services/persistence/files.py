"""Attachments: the ``FileStore`` port, the pure upload rules, and the memory adapter.

Bytes go to the file store (Cassandra chunks in cluster mode, SQLite in single-node mode), never
through Kafka; the message that announces a file travels the normal message path and carries
``attachment {id, url, fileName, mimeType, size}``. Downloads are authorized per room.
"""

from __future__ import annotations

import fnmatch
import uuid
from dataclasses import dataclass
from typing import Protocol

from services.common.errors import ChatError, Code
from services.common.model import is_text, parse_room_id

MAX_NAME_CHARS = 255


@dataclass(frozen=True)
class StoredFile:
    id: str
    room_id: str
    owner_id: str
    name: str
    mime_type: str
    size: int

    def attachment(self) -> dict[str, object]:
        return {
            "id": self.id,
            "url": f"/files/{self.id}",
            "fileName": self.name,
            "mimeType": self.mime_type,
            "size": self.size,
        }


@dataclass(frozen=True)
class Upload:
    room_id: str
    data: bytes
    name: str
    mime_type: str


def new_file_id() -> str:
    return uuid.uuid4().hex


def parse_upload(payload: object, max_bytes: int, allowed_types: str) -> Upload:
    """Validate ``chat:file``: bytes within the cap, a file name, an allowed MIME type."""
    if not isinstance(payload, dict):
        raise ChatError(Code.INVALID_MESSAGE, "chat:file takes an object")
    room_id = parse_room_id(payload.get("roomId"))
    data = payload.get("file")
    if isinstance(data, bytearray | memoryview):
        data = bytes(data)
    if not isinstance(data, bytes) or not data:
        raise ChatError(Code.INVALID_MESSAGE, "file must be non-empty binary data")
    if len(data) > max_bytes:
        raise ChatError(Code.TOO_LARGE, f"{len(data)} bytes > {max_bytes}")
    name = payload.get("fileName")
    if not is_text(name) or not name.strip() or len(name) > MAX_NAME_CHARS:
        raise ChatError(Code.INVALID_MESSAGE, "fileName must be a short non-empty string")
    name = name.strip().replace("/", "_").replace("\\", "_")
    mime = payload.get("mimeType")
    if not is_text(mime) or "/" not in mime or len(mime) > 100:
        raise ChatError(Code.INVALID_MESSAGE, "mimeType must look like type/subtype")
    mime = mime.strip().lower()
    patterns = [p.strip().lower() for p in allowed_types.split(",") if p.strip()]
    if not any(fnmatch.fnmatchcase(mime, p) for p in patterns):
        raise ChatError(Code.INVALID_MESSAGE, f"mimeType {mime} not allowed")
    return Upload(room_id, data, name, mime)


class FileStore(Protocol):
    """Guarantee: when ``put`` returns the bytes are durable and ``get`` returns them whole;
    ``get`` of an unknown id returns None. Files are immutable."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def put(self, meta: StoredFile, data: bytes) -> None: ...

    async def meta(self, file_id: str) -> StoredFile | None: ...

    async def get(self, file_id: str) -> tuple[StoredFile, bytes] | None: ...


class MemoryFileStore:
    def __init__(self) -> None:
        self._files: dict[str, tuple[StoredFile, bytes]] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def put(self, meta: StoredFile, data: bytes) -> None:
        self._files[meta.id] = (meta, data)

    async def meta(self, file_id: str) -> StoredFile | None:
        found = self._files.get(file_id)
        return found[0] if found else None

    async def get(self, file_id: str) -> tuple[StoredFile, bytes] | None:
        return self._files.get(file_id)
