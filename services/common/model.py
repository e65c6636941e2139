"""The message model and the pure validation rules of client payloads.

Everything here is I/O free: handlers call these functions and turn ``ChatError`` into acks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeGuard

from .errors import ChatError, Code
from .ids import is_valid_id

MAX_ROOM_ID_CHARS = 200
RESERVED_ROOM_CHAR = "#"  # never in a client's room id or user id: derived names only
MAX_CLIENT_MSG_ID_CHARS = 100


@dataclass(frozen=True)
class Message:
    id: str
    room_id: str
    user_id: str
    username: str
    text: str
    created_ms: int
    reply_to: str | None = None
    client_msg_id: str | None = None
    read_by: tuple[str, ...] = field(default=())
    deadline_ms: int | None = None  # the gateway gives up (acks unavailable) after this
    attachment: dict[str, Any] | None = None  # {id, url, fileName, mimeType, size}

    def with_readers(self, readers: list[str]) -> Message:
        """This message with ``readBy`` = the sender, then ``readers`` in order, once each."""
        seen = dict.fromkeys([self.user_id, *readers])
        return replace(self, read_by=tuple(seen))

    def to_wire(self) -> dict[str, Any]:
        """The message object of PROTOCOL.md, as clients receive it."""
        out: dict[str, Any] = {
            "id": self.id,
            "roomId": self.room_id,
            "userId": self.user_id,
            "username": self.username,
            "text": self.text,
            "timestamp": iso_ms(self.created_ms),
            "readBy": list(self.read_by or (self.user_id,)),
        }
        if self.reply_to is not None:
            out["replyTo"] = self.reply_to
        if self.attachment is not None:
            out["attachment"] = self.attachment
        return out

    def to_record(self) -> bytes:
        """The Kafka record value (JSON, versioned)."""
        body = {
            "v": 1,
            "type": "message",
            "id": self.id,
            "roomId": self.room_id,
            "userId": self.user_id,
            "username": self.username,
            "text": self.text,
            "createdMs": self.created_ms,
            "replyTo": self.reply_to,
            "clientMsgId": self.client_msg_id,
            "deadlineMs": self.deadline_ms,
            "attachment": self.attachment,
        }
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_record(cls, raw: bytes) -> Message:
        """Parse a Kafka record value; raises ``ValueError`` on anything malformed."""
        record = decode_record(raw)
        if not isinstance(record, Message):
            raise ValueError("not a message record")
        return record

    @classmethod
    def _from_body(cls, body: dict[str, Any]) -> Message:
        try:
            msg = cls(
                id=body["id"],
                room_id=body["roomId"],
                user_id=body["userId"],
                username=body["username"],
                text=body["text"],
                created_ms=int(body["createdMs"]),
                reply_to=body.get("replyTo"),
                client_msg_id=body.get("clientMsgId"),
                deadline_ms=body.get("deadlineMs"),
                attachment=body.get("attachment"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"missing or bad field: {exc}") from None
        if not is_valid_id(msg.id) or not all(
            isinstance(v, str) for v in (msg.room_id, msg.user_id, msg.username, msg.text)
        ):
            raise ValueError("bad field types")
        return msg


@dataclass(frozen=True)
class Receipt:
    """``user_id`` has read ``message_id`` in ``room_id`` (persisted into ``readBy``)."""

    room_id: str
    message_id: str
    user_id: str
    read_ms: int

    def to_record(self) -> bytes:
        body = {
            "v": 1,
            "type": "receipt",
            "roomId": self.room_id,
            "messageId": self.message_id,
            "userId": self.user_id,
            "readMs": self.read_ms,
        }
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def _from_body(cls, body: dict[str, Any]) -> Receipt:
        try:
            receipt = cls(body["roomId"], body["messageId"], body["userId"], int(body["readMs"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"missing or bad field: {exc}") from None
        if not is_valid_id(receipt.message_id) or not all(
            isinstance(v, str) for v in (receipt.room_id, receipt.user_id)
        ):
            raise ValueError("bad field types")
        return receipt


Record = Message | Receipt


def decode_record(raw: bytes) -> Record:
    """Parse a Kafka record value (a message or a receipt); ``ValueError`` if malformed."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(body, dict) or body.get("v") != 1:
        raise ValueError("unknown record version")
    kind = body.get("type", "message")
    if kind == "message":
        return Message._from_body(body)
    if kind == "receipt":
        return Receipt._from_body(body)
    raise ValueError(f"unknown record type {kind!r}")


def iso_ms(ms: int) -> str:
    """ISO 8601 UTC with milliseconds: ``2026-11-26T15:04:05.123Z``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class NewMessage:
    """A validated ``chat:message`` payload."""

    room_id: str
    text: str
    reply_to: str | None
    client_msg_id: str | None


@dataclass(frozen=True)
class JoinRequest:
    room_id: str
    since: str | None
    limit: int


def is_text(value: object) -> TypeGuard[str]:
    """A string that can be stored and sent on: valid Unicode (no lone surrogates, which
    JSON allows as escapes but UTF-8 cannot encode)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_room_id(value: object) -> str:
    if not is_text(value) or not value.strip() or len(value) > MAX_ROOM_ID_CHARS:
        raise ChatError(Code.INVALID_MESSAGE, "roomId must be a non-empty string")
    if RESERVED_ROOM_CHAR in value:  # the server's derived rooms (<room>#batch) use it
        raise ChatError(Code.INVALID_MESSAGE, f"roomId must not contain {RESERVED_ROOM_CHAR!r}")
    return value


def parse_new_message(payload: object, max_chars: int) -> NewMessage:
    if not isinstance(payload, dict):
        raise ChatError(Code.INVALID_MESSAGE, "payload must be an object")
    room_id = parse_room_id(payload.get("roomId"))
    text = payload.get("text")
    if not is_text(text):
        raise ChatError(Code.INVALID_MESSAGE, "text must be a string")
    text = text.strip()
    if not text or len(text) > max_chars:
        raise ChatError(Code.INVALID_MESSAGE, "text must be 1..max chars after trimming")
    reply_to = payload.get("replyTo")
    if reply_to is not None and not is_valid_id(reply_to):
        raise ChatError(Code.INVALID_MESSAGE, "replyTo must be a message id")
    client_msg_id = payload.get("clientMsgId")
    if client_msg_id is not None and (
        not is_text(client_msg_id)
        or not client_msg_id
        or len(client_msg_id) > MAX_CLIENT_MSG_ID_CHARS
    ):
        raise ChatError(Code.INVALID_MESSAGE, "clientMsgId must be a short string")
    return NewMessage(room_id, text, reply_to, client_msg_id)


def parse_read(payload: object) -> tuple[str, str]:
    """``chat:read {roomId, messageId}`` → ``(room_id, message_id)``."""
    if not isinstance(payload, dict):
        raise ChatError(Code.INVALID_MESSAGE, "chat:read takes an object")
    room_id = parse_room_id(payload.get("roomId"))
    message_id = payload.get("messageId")
    if not is_valid_id(message_id):
        raise ChatError(Code.INVALID_MESSAGE, "messageId must be a message id")
    return room_id, message_id


def parse_join(payload: object, default_limit: int, max_limit: int) -> JoinRequest:
    """``room:join`` takes a room id string or ``{roomId, since?, limit?}``."""
    if isinstance(payload, str):
        return JoinRequest(parse_room_id(payload), None, default_limit)
    if not isinstance(payload, dict):
        raise ChatError(Code.INVALID_MESSAGE, "room:join takes a roomId or an object")
    room_id = parse_room_id(payload.get("roomId"))
    since = payload.get("since")
    if since is not None and not is_valid_id(since):
        raise ChatError(Code.INVALID_MESSAGE, "since must be a message id")
    limit = payload.get("limit", default_limit)
    if limit is None:
        limit = default_limit
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ChatError(Code.INVALID_MESSAGE, "limit must be a positive integer")
    return JoinRequest(room_id, since, min(limit, max_limit))
