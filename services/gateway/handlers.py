"""What every namespace shares: the handshake check and the event guard.

``authenticate`` turns a handshake ``auth`` into an ``Identity`` or refuses the connection
with the exact PROTOCOL.md message (``connect_error``). ``guard`` wraps an event handler so
that whatever the payload, an event with an ack callback gets exactly one ack:
``{status: "ok", ...}`` from the handler, the documented ``{status: "error", error, code}``
for a refusal, and ``unavailable`` for an unexpected exception (logged and counted, never
sent to the client as a trace).
"""

from __future__ import annotations

import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import socketio

from services.common.auth import INVALID_TOKEN, AuthError, Identity, extract_token, verify_token
from services.common.errors import TEXTS, ChatError, Code, Unavailable, error_ack
from services.common.settings import Settings
from services.storage.revocations import Revocations

from . import metrics
from .wire_json import TOO_DEEP

log = logging.getLogger("parley.gateway")
Handler = Callable[[str, Identity, Any], Awaitable[Any]]
_warned_deep: OrderedDict[str, None] = OrderedDict()  # sids already logged, most recent last
_WARNED_MAX = 10_000


def _warn_deep_once(event: str, sid: str) -> None:
    """One log line per socket for payloads nested too deeply, however many it sends."""
    if sid in _warned_deep:
        return
    _warned_deep[sid] = None
    if len(_warned_deep) > _WARNED_MAX:
        _warned_deep.popitem(last=False)
    log.warning("%s from sid=%s nested too deeply; refused (logged once per socket)", event, sid)


def refuse(message: str, code: str) -> socketio.exceptions.ConnectionRefusedError:
    metrics.HANDSHAKES_REFUSED.labels(code).inc()
    return socketio.exceptions.ConnectionRefusedError(message, {"code": code})


async def authenticate(
    auth: object, settings: Settings, revocations: Revocations, admin_only: bool = False
) -> Identity:
    try:
        identity = verify_token(extract_token(auth), settings)
    except AuthError as exc:
        raise refuse(exc.message, exc.code) from None
    try:
        if identity.jti is not None and await revocations.revoked(identity.jti):
            raise refuse(INVALID_TOKEN, "token_revoked")
    except Unavailable:
        raise refuse(TEXTS[Code.UNAVAILABLE], Code.UNAVAILABLE.value) from None
    if admin_only and not identity.is_admin:
        raise refuse(TEXTS[Code.FORBIDDEN], Code.FORBIDDEN.value)
    return identity


def guard(
    event: str, handler: Handler, identities: Mapping[str, Identity]
) -> Callable[..., Awaitable[Any]]:
    """The Socket.IO handler for ``event``: ``handler(sid, identity, payload)`` guarded."""
    metrics.track_event(event)  # every ack outcome of the event exported from zero

    @functools.wraps(handler)
    async def guarded(sid: str, *args: Any) -> Any:
        started = time.perf_counter()
        payload = args[0] if args else None
        identity = identities.get(sid)
        try:
            if identity is None:
                raise ChatError(Code.FORBIDDEN, "no identity for this socket")
            if any(arg is TOO_DEEP for arg in args):
                _warn_deep_once(event, sid)
                raise ChatError(Code.INVALID_MESSAGE, "payload nested too deeply")
            result = await handler(sid, identity, payload)
            outcome = "ok"
        except ChatError as exc:
            outcome = exc.code.value
            log.debug("%s refused for sid=%s: %s", event, sid, exc.detail or exc.code)
            result = exc.ack()
        except Exception:
            metrics.HANDLER_ERRORS.inc()
            log.exception("%s failed for sid=%s", event, sid)
            outcome = "error"
            result = error_ack(Code.UNAVAILABLE)
        metrics.EVENTS.labels(event, outcome).inc()
        metrics.EVENT_SECONDS.labels(event).observe(time.perf_counter() - started)
        return result

    return guarded
