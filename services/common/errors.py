"""Error codes of the wire contract and the ack payloads that carry them."""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    INVALID_MESSAGE = "invalid_message"
    RATE_LIMITED = "rate_limited"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    TOO_LARGE = "too_large"
    UNAVAILABLE = "unavailable"
    TOO_MANY_ROOMS = "too_many_rooms"


TEXTS: dict[Code, str] = {
    Code.INVALID_MESSAGE: "Invalid message",
    Code.RATE_LIMITED: "Rate limit exceeded",
    Code.FORBIDDEN: "Forbidden",
    Code.NOT_FOUND: "Not found",
    Code.TOO_LARGE: "File too large",
    Code.UNAVAILABLE: "Temporarily unavailable, retry",
    Code.TOO_MANY_ROOMS: "Too many rooms",
}


class ChatError(Exception):
    """A refusal that becomes an error ack; ``detail`` is logged, never sent."""

    def __init__(self, code: Code, detail: str = "") -> None:
        super().__init__(detail or TEXTS[code])
        self.code = code
        self.detail = detail

    def ack(self) -> dict[str, str]:
        return error_ack(self.code)


class Unavailable(ChatError):
    """A backing service (Kafka, Redis, Cassandra) did not accept the request."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(Code.UNAVAILABLE, detail)


def error_ack(code: Code) -> dict[str, str]:
    return {"status": "error", "error": TEXTS[code], "code": code.value}


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the environment variable."""
