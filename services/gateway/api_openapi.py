"""The OpenAPI 3.1 document of the Server API (``api_http.py``), served at
``/api/v1/openapi.json`` without a key. Pure data: tests validate it with a real validator and
exercise every operation in it."""

from __future__ import annotations

from typing import Any

ERROR_CODES = {
    "400": "Malformed request: not JSON, bad room or user id, bad query",
    "401": "Missing or invalid API key",
    "403": "The key lacks the route's scope",
    "413": "Request body too large",
    "422": "The body breaks the schema (unknown fields included)",
    "429": "The key's rate limit is exhausted (see Retry-After)",
    "503": "A backend (Kafka, Redis, Cassandra, SQLite) is unavailable; retry",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: str) -> dict[str, Any]:
    wanted = ("400", "401", "403", "429", "503", *statuses)
    return {s: {"$ref": f"#/components/responses/E{s}"} for s in sorted(set(wanted))}


def _op(
    op_id: str,
    summary: str,
    scope: str,
    ok: tuple[str, dict[str, Any], str],
    body: dict[str, Any] | None = None,
    extra_errors: tuple[str, ...] = (),
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    status, schema, description = ok
    op: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "description": f"Scope: `{scope}` (or `admin`).",
        "security": [{"apiKey": [scope]}],
        "responses": {status: _json(schema, description), **_errors(*extra_errors)},
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        extra_errors = (*extra_errors, "413", "422")
        op["responses"] = {status: _json(schema, description), **_errors(*extra_errors)}
    if parameters:
        op["parameters"] = parameters
    return op


ROOM = {
    "name": "roomId",
    "in": "path",
    "required": True,
    "description": "Room id (1-200 characters, no '#'); URL-encode it",
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
}
USER = {
    "name": "userId",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 200},
}
APP_NAME = "^app:[A-Za-z0-9_.:\\-]{1,100}$"


def document() -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["error", "message"],
            "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
        },
        "NewMessage": {
            "type": "object",
            "additionalProperties": False,
            "required": ["text"],
            "properties": {
                "text": {"type": "string", "minLength": 1, "maxLength": 5000},
                "userId": {"type": "string", "description": "post as this user (admin)"},
                "clientMsgId": {
                    "type": "string",
                    "description": "idempotency key: a retry returns the first messageId",
                },
                "replyTo": {"type": "string", "description": "a message id"},
            },
        },
        "Accepted": {
            "type": "object",
            "required": ["messageId"],
            "properties": {"messageId": {"type": "string"}},
        },
        "Event": {
            "type": "object",
            "additionalProperties": False,
            "required": ["event"],
            "properties": {
                "event": {"type": "string", "pattern": APP_NAME},
                "data": {"description": "any JSON value, sent as the event's payload"},
            },
        },
        "Notification": {
            "type": "object",
            "required": ["type"],
            "additionalProperties": True,
            "properties": {"type": {"type": "string", "pattern": APP_NAME}},
        },
        "Message": {
            "type": "object",
            "required": ["id", "roomId", "userId", "username", "text", "timestamp"],
            "properties": {
                "id": {"type": "string"},
                "roomId": {"type": "string"},
                "userId": {"type": "string"},
                "username": {"type": "string"},
                "text": {"type": "string"},
                "timestamp": {"type": "string", "format": "date-time"},
            },
        },
        "History": {
            "type": "object",
            "required": ["messages", "hasMore"],
            "properties": {
                "roomId": {"type": "string"},
                "messages": {"type": "array", "items": _ref("Message")},
                "hasMore": {"type": "boolean"},
            },
        },
        "Membership": {
            "type": "object",
            "required": ["roomId", "userId", "sockets"],
            "properties": {
                "roomId": {"type": "string"},
                "userId": {"type": "string"},
                "sockets": {"type": "integer", "minimum": 0},
            },
        },
        "Members": {
            "type": "object",
            "required": ["members"],
            "properties": {
                "roomId": {"type": "string"},
                "members": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["userId", "username", "online", "sockets"],
                        "properties": {
                            "userId": {"type": "string"},
                            "username": {"type": "string"},
                            "online": {"type": "boolean"},
                            "sockets": {
                                "type": "integer",
                                "minimum": 0,
                                "description": "the user's sockets in the room (0: a stored "
                                "server-side member with none in it)",
                            },
                        },
                    },
                },
            },
        },
        "Presence": {
            "type": "object",
            "required": ["userId", "online", "sockets"],
            "properties": {
                "userId": {"type": "string"},
                "online": {"type": "boolean"},
                "since": {
                    "type": "string",
                    "format": "date-time",
                    "description": "offline since (absent while online or never seen)",
                },
                "sockets": {"type": "integer", "minimum": 0},
            },
        },
        "Sent": {"type": "object", "description": "what was sent (echo of its target)"},
        "Disconnected": {
            "type": "object",
            "required": ["userId", "sockets"],
            "properties": {"userId": {"type": "string"}, "sockets": {"type": "integer"}},
        },
    }
    responses = {f"E{status}": _json(_ref("Error"), text) for status, text in ERROR_CODES.items()}
    responses["E404"] = _json(_ref("Error"), "No such route")
    before = {
        "name": "before",
        "in": "query",
        "required": False,
        "description": "a message id: the page ends before it",
        "schema": {"type": "string"},
    }
    limit = {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 100},
    }
    paths: dict[str, Any] = {
        "/rooms/{roomId}/messages": {
            "parameters": [ROOM],
            "post": _op(
                "postMessage",
                "A chat message, through the accept path of chat:message",
                "publish",
                ("201", _ref("Accepted"), "Durable in the log, delivered to the room"),
                body=_ref("NewMessage"),
            ),
            "get": _op(
                "getMessages",
                "A history page, oldest first, as chat:history",
                "read",
                ("200", _ref("History"), "The page"),
                parameters=[before, limit],
            ),
        },
        "/rooms/{roomId}/events": {
            "parameters": [ROOM],
            "post": _op(
                "postEvent",
                "An ephemeral app: event to the room's sockets (not stored)",
                "publish",
                ("202", _ref("Sent"), "Emitted to the room on every pod"),
                body=_ref("Event"),
            ),
        },
        "/rooms/{roomId}/members": {
            "parameters": [ROOM],
            "get": _op(
                "getMembers",
                "The room's members across every pod",
                "read",
                ("200", _ref("Members"), "Users with a socket in it, and stored members"),
            ),
        },
        "/rooms/{roomId}/members/{userId}": {
            "parameters": [ROOM, USER],
            "put": _op(
                "joinMember",
                "Server-side join, stored (offline users too): every live socket of the user "
                "joins the room now, every later one on connect",
                "rooms",
                ("200", _ref("Membership"), "Stored and joined (sockets: how many are in it)"),
            ),
            "delete": _op(
                "leaveMember",
                "Server-side leave: the stored membership ends, every socket leaves the room",
                "rooms",
                ("200", _ref("Membership"), "Left (sockets: how many remain)"),
            ),
        },
        "/users/{userId}/notifications": {
            "parameters": [USER],
            "post": _op(
                "postNotification",
                "A notification to every /notifications socket of the user",
                "publish",
                ("202", _ref("Sent"), "Emitted on every pod"),
                body=_ref("Notification"),
            ),
        },
        "/users/{userId}/presence": {
            "parameters": [USER],
            "get": _op(
                "getPresence",
                "Online or not, since when, on how many sockets",
                "read",
                ("200", _ref("Presence"), "The user's presence"),
            ),
        },
        "/users/{userId}/disconnect": {
            "parameters": [USER],
            "post": _op(
                "disconnectUser",
                "Closes every socket of the user on every pod",
                "admin",
                ("200", _ref("Disconnected"), "Closed (sockets: how many were live)"),
            ),
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Parley Server API",
            "version": "1.0.0",
            "description": "For backend services, not browsers. Errors are {error, message}.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"apiKey": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": responses,
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "PARLEY_API_KEYS: name:key:scope+scope entries",
                }
            },
        },
    }
