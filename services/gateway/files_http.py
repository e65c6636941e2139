"""``GET /files/{id}``: download an attachment with ``Authorization: Bearer <token>`` of a
member of the file's room (a user with a socket joined to it, on any pod).

401 without a valid token, 403 for non-members, 404 for unknown ids, 503 when storage is down.
Responses are ``attachment`` downloads with ``nosniff``, never rendered inline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.common.auth import AuthError, verify_token
from services.common.errors import TEXTS, Code, Unavailable

if TYPE_CHECKING:
    from .app import Gateway


def _error(status: int, code: Code, text: str | None = None) -> JSONResponse:
    return JSONResponse({"error": text or TEXTS[code], "code": code.value}, status_code=status)


def file_routes(gateway: Gateway) -> list[Route]:
    async def download(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        try:
            identity = verify_token(
                token.strip() if scheme.lower() == "bearer" else None, gateway.settings
            )
        except AuthError as exc:
            return JSONResponse({"error": exc.message, "code": exc.code}, status_code=401)
        file_id = request.path_params["file_id"]
        try:
            meta = await gateway.parts.files.meta(file_id)
            if meta is None:
                return _error(404, Code.NOT_FOUND)
            if not await gateway.parts.presence.is_member(identity.user_id, meta.room_id):
                return _error(403, Code.FORBIDDEN)
            found = await gateway.parts.files.get(file_id)
        except Unavailable:
            return _error(503, Code.UNAVAILABLE)
        if found is None:
            return _error(404, Code.NOT_FOUND)
        stored, sealed = found
        try:
            data = gateway.chat.cipher.open_bytes(sealed, stored.id)
        except ValueError:
            return _error(503, Code.UNAVAILABLE)
        return Response(
            data,
            media_type=stored.mime_type,
            headers={
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(stored.name)}",
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, max-age=3600",
            },
        )

    return [Route("/files/{file_id}", download)]
