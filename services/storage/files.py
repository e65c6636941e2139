"""Attachments: the ``FileStore`` port, the pure upload rules, and the memory adapter.

Bytes go to the file store (Cassandra chunks in cluster mode, SQLite in single-node mode), never
through Kafka; the message that announces a file travels the normal message path and carries
``attachment {id, url, fileName, mimeType, size}``. Downloads are authorized per room.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Protocol

from services.common.errors import ChatError, Code
from services.common.model import is_text, parse_room_id

MAX_NAME_CHARS = 255
# RFC 6838 §4.2: type "/" subtype, each a restricted-name (lowercased here).
_RESTRICTED_NAME = r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
MIME_TYPE = re.compile(rf"{_RESTRICTED_NAME}/{_RESTRICTED_NAME}")
# Types a browser runs or renders as a document: never matched by a wildcard (``image/*``
# does not allow SVG), and served as ``application/octet-stream`` even when listed exactly.
ACTIVE_TYPES = frozenset(
    {
        "image/svg+xml",
        "text/html",
        "application/xhtml+xml",
        "text/xml",
        "application/xml",
        "text/javascript",
        "application/javascript",
        "application/ecmascript",
        "text/css",
        "application/x-shockwave-flash",
    }
)
SAFE_FALLBACK_TYPE = "application/octet-stream"


def is_mime_type(value: object) -> bool:
    return isinstance(value, str) and MIME_TYPE.fullmatch(value) is not None


def mime_allowed(mime: str, allowed_types: str) -> bool:
    """``mime`` (already valid) against the allowlist: exact entries, or ``type/*`` / ``*/*``
    wildcards, which never match an active type."""
    for pattern in (p.strip().lower() for p in allowed_types.split(",") if p.strip()):
        if pattern == mime:
            return True
        if mime in ACTIVE_TYPES:
            continue
        if pattern == "*/*" or (pattern.endswith("/*") and mime.split("/")[0] == pattern[:-2]):
            return True
    return False


def served_type(mime: str) -> str:
    """The Content-Type a download is served with: the stored type unless it is active
    content or malformed (stored before these rules), then ``application/octet-stream``."""
    return mime if is_mime_type(mime) and mime not in ACTIVE_TYPES else SAFE_FALLBACK_TYPE


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
    if not is_text(mime) or not is_mime_type(mime.lower()):
        raise ChatError(Code.INVALID_MESSAGE, "mimeType must be an RFC 6838 type/subtype")
    mime = mime.lower()
    if not mime_allowed(mime, allowed_types):
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
