"""``GET /files/{id}``: download an attachment with ``Authorization: Bearer <token>`` of a
member of the file's room (a user with a socket joined to it, on any pod).

401 without a valid token, 403 for non-members, 404 for unknown ids, 503 when storage is down.
The membership check reads the file's metadata only; the bytes are read after it passed.
Responses are ``attachment`` downloads with ``nosniff`` and ``Content-Security-Policy:
default-src 'none'; sandbox`` (nothing in a file can run, even if a browser renders it), and
active types (SVG, HTML, ...) are served as ``application/octet-stream``.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.common.auth import INVALID_TOKEN, AuthError, verify_token
from services.common.crypto import Cipher
from services.common.errors import TEXTS, Code, Unavailable
from services.common.settings import Settings
from services.storage.files import FileStore, served_type
from services.storage.presence import PresenceLookup
from services.storage.revocations import Revocations


def _error(status: int, code: Code, text: str | None = None) -> JSONResponse:
    return JSONResponse({"error": text or TEXTS[code], "code": code.value}, status_code=status)


def file_routes(
    settings: Settings,
    files: FileStore,
    presence: PresenceLookup,
    cipher: Cipher,
    revocations: Revocations,
) -> list[Route]:
    async def download(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        try:
            identity = verify_token(token.strip() if scheme.lower() == "bearer" else None, settings)
        except AuthError as exc:
            return JSONResponse({"error": exc.message, "code": exc.code}, status_code=401)
        file_id = request.path_params["file_id"]
        try:
            if identity.jti is not None and await revocations.revoked(identity.jti):
                return JSONResponse(
                    {"error": INVALID_TOKEN, "code": "token_revoked"}, status_code=401
                )
            meta = await files.meta(file_id)
            if meta is None:
                return _error(404, Code.NOT_FOUND)
            if not await presence.is_member(identity.user_id, meta.room_id):
                return _error(403, Code.FORBIDDEN)
            found = await files.get(file_id)
        except Unavailable:
            return _error(503, Code.UNAVAILABLE)
        if found is None:
            return _error(404, Code.NOT_FOUND)
        stored, sealed = found
        try:
            data = cipher.open_bytes(sealed, stored.id)
        except ValueError:
            return _error(503, Code.UNAVAILABLE)
        return Response(
            data,
            media_type=served_type(stored.mime_type),
            headers={
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(stored.name)}",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; sandbox",
                "Cache-Control": "private, max-age=3600",
            },
        )

    return [Route("/files/{file_id}", download)]
