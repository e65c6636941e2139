"""Server-side join, leave and disconnect: what the Server API's control-bus commands do on
each pod (``join``/``leave``/``disconnect``; ``api_http.py`` publishes them).

Only the pod that holds a socket can move it, so every pod runs the command for its own
sockets of the user. A join does what ``room:join`` does for the socket: ``enter_room`` first
(on a cluster pod that subscribes the room's Redis channel and returns once Redis confirmed
it, so this pod delivers the room's next message), then the membership record (the room's ACL
on every pod: ``require_member``), then ``room:history`` to the socket. A leave undoes both.

A server-side join is also stored (``memberships.py``, written by ``api_http.py``): every
socket the user connects later, on any pod, is joined to the stored rooms right after its
connect (``rejoin_stored``, in the background), as a Centrifugo server-side subscription is.
"""

from __future__ import annotations

import logging

import socketio

from services.common.auth import Identity
from services.common.errors import Unavailable
from services.common.settings import Settings
from services.storage.control import DISCONNECT, JOIN, LEAVE, Command, CommandHandler

from .admin import AdminNamespace
from .batching import batch_room
from .chat import NAMESPACE, ChatNamespace

log = logging.getLogger("parley.gateway.server_side")


class ServerSide:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        settings: Settings,
        chat: ChatNamespace,
        admin: AdminNamespace,
    ) -> None:
        self.sio = sio
        self.settings = settings
        self.chat = chat
        self.admin = admin
        chat.connected_hooks.append(self.rejoin_stored)

    def handlers(self) -> dict[str, CommandHandler]:
        return {JOIN: self.on_join, LEAVE: self.on_leave, DISCONNECT: self.on_disconnect}

    def local_sockets(self, user_id: str) -> list[tuple[str, Identity]]:
        """This pod's ``/chat`` sockets of ``user_id``."""
        return [(sid, i) for sid, i in list(self.chat.identities.items()) if i.user_id == user_id]

    async def on_join(self, command: Command) -> None:
        joined = 0
        for sid, identity in self.local_sockets(command.user_id):
            try:
                joined += await self.join_socket(sid, identity, command.room_id)
            except Exception:  # one socket's failure must not stop the others
                log.exception("server-side join of sid=%s to %s failed", sid, command.room_id)
        if joined:
            log.info("joined %d sockets of %s to %s", joined, command.user_id, command.room_id)

    async def join_socket(self, sid: str, identity: Identity, room_id: str) -> int:
        chat = self.chat
        if chat.in_room(sid, room_id):
            return 0
        if chat.joined_count(sid) >= self.settings.max_rooms_per_socket:
            log.warning("sid=%s is in too many rooms; not joined to %s", sid, room_id)
            return 0
        await self.sio.enter_room(sid, room_id, namespace=NAMESPACE)
        if sid in chat.batching:
            await self.sio.enter_room(sid, batch_room(room_id), namespace=NAMESPACE)
        await chat.parts.presence.join_room(chat.session(sid, identity), room_id)
        try:
            messages = await chat.parts.store.recent(room_id, self.settings.history_default_limit)
            history = {"roomId": room_id, "messages": chat._readable(messages)}
        except Exception as exc:  # joined all the same: the client pages with chat:history
            log.warning("no history for the server-side join of %s: %s", room_id, exc)
            history = {"roomId": room_id, "messages": []}
        await self.sio.emit("room:history", history, to=sid, namespace=NAMESPACE)
        if self.settings.presence_scope == "rooms":
            online = await chat.parts.presence.scoped_online(identity.user_id)
            await self.sio.emit(
                "presence:list", [u.to_wire() for u in online], to=sid, namespace=NAMESPACE
            )
        return 1

    async def rejoin_stored(self, sid: str, identity: Identity) -> None:
        """Join a newly connected socket to the user's stored server-side memberships."""
        try:
            rooms = await self.chat.parts.memberships.rooms(identity.user_id)
        except Unavailable as exc:  # the ACL still honours them; the client can room:join
            log.warning("stored memberships of %s unavailable: %s", identity.user_id, exc)
            return
        for room_id in rooms:
            if sid not in self.chat.identities:  # gone meanwhile
                return
            try:
                await self.join_socket(sid, identity, room_id)
            except Exception:
                log.exception("rejoin of sid=%s to stored room %s failed", sid, room_id)

    async def on_leave(self, command: Command) -> None:
        chat = self.chat
        for sid, identity in self.local_sockets(command.user_id):
            if not chat.in_room(sid, command.room_id):
                continue
            try:
                await chat.parts.presence.leave_room(chat.session(sid, identity), command.room_id)
            except Exception:
                log.exception("server-side leave of sid=%s from %s", sid, command.room_id)
            for room in (command.room_id, batch_room(command.room_id)):
                await self.sio.leave_room(sid, room, namespace=NAMESPACE)

    async def on_disconnect(self, command: Command) -> None:
        closed = await self.admin.disconnect_local(command.user_id)
        if closed:
            log.info("closed %d sockets of %s (server API)", closed, command.user_id)
