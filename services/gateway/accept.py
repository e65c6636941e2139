"""The accept pipeline: how a chat message (``chat:message``, ``chat:file``'s announcement)
becomes ``ok``. The one invariant that matters most lives here.

1. A new time-sortable id; with a ``clientMsgId``, a claim (a retry of an accepted message
   returns the first id and is not delivered again; see ``dedupe.py``).
2. The sealed message goes to the recent log first (read-your-writes), then to the durable
   log (Kafka ``acks=all`` / SQLite commit), bounded by the send timeout.
3. If the append fails, everything is undone: the recent-log entry is withdrawn and the claim
   released (a retry starts over), and the error propagates — the caller acks ``unavailable``.
   **Never ``ok`` before the durable append.**
4. Durable: the claim is committed, then the message is delivered (best effort; a failed
   delivery is logged, clients resync) and only then does ``accept`` return the id.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from services.common.auth import Identity
from services.common.crypto import Cipher
from services.common.errors import Unavailable
from services.common.ids import IdGenerator
from services.common.model import Message
from services.storage.messages import MessageLog
from services.storage.recent import RecentLog

from . import metrics
from .dedupe import Deduper

log = logging.getLogger("parley.gateway.accept")
Deliver = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class Accepted:
    message_id: str
    delivered: bool  # False for a retry of an already accepted clientMsgId


class AcceptPipeline:
    def __init__(
        self,
        ids: IdGenerator,
        log_: MessageLog,
        recent: RecentLog,
        deduper: Deduper,
        cipher: Cipher,
        deliver: Deliver,
        send_timeout_s: float,
    ) -> None:
        self.ids = ids
        self.log = log_
        self.recent = recent
        self.deduper = deduper
        self.cipher = cipher
        self.deliver = deliver
        self.send_timeout_ms = int(send_timeout_s * 1000)

    async def accept(
        self,
        identity: Identity,
        room_id: str,
        text: str,
        reply_to: str | None = None,
        client_msg_id: str | None = None,
        attachment: dict[str, Any] | None = None,
    ) -> Accepted:
        message_id, created_ms = self.ids.new_id()
        if client_msg_id is not None:
            claim = await self.deduper.claim(identity.user_id, client_msg_id, message_id)
            if not claim.won:  # a retry of an accepted message: same id, not delivered again
                return Accepted(str(claim.message_id), False)
        message = Message(
            id=message_id,
            room_id=room_id,
            user_id=identity.user_id,
            username=identity.username,
            text=text,
            created_ms=created_ms,
            reply_to=reply_to,
            client_msg_id=client_msg_id,
            deadline_ms=created_ms + self.send_timeout_ms,
            attachment=attachment,
        )
        sealed = replace(message, text=self.cipher.seal_text(text, message_id))  # at rest
        try:
            await self.recent.add(sealed)  # visible to history first (read-your-writes) ...
            await self.log.append(sealed)  # ... then durable, before any ack or delivery
        except BaseException:
            with contextlib.suppress(Unavailable):
                await self.recent.remove(sealed)
            if client_msg_id is not None:
                with contextlib.suppress(Unavailable):
                    await self.deduper.release(identity.user_id, client_msg_id)
            raise
        if client_msg_id is not None:
            await self.deduper.commit(identity.user_id, client_msg_id, message_id)
        metrics.MESSAGES_ACCEPTED.inc()
        # Durable now. Deliver (best effort) before acking: the sender sees its message first,
        # and under overload the acks slow the senders down instead of a delivery backlog
        # growing (measured: backgrounding the fan-out multiplied delivery latency ~10x).
        try:
            await self.deliver(message)
        except Exception:
            log.exception("delivery of %s failed (it is stored; clients resync)", message_id)
        return Accepted(message_id, True)
