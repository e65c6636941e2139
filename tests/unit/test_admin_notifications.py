"""Pure rules of /notifications and /admin, and the in-process control bus and stats board."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from services.common.errors import ChatError
from services.common.model import Message
from services.common.settings import Settings, SettingsError
from services.gateway.admin import parse_broadcast, parse_kick, parse_stats
from services.gateway.admin_ui import credentials_check
from services.gateway.notifications import (
    NotificationsNamespace,
    dm_recipient,
    excerpt,
    mention_room,
    mentioned_names,
    message_notification,
)
from services.storage.control import KICK, Command, MemoryControlBus
from services.storage.presence import MemoryPresenceStore, Session
from services.storage.stats import MemoryStatsBoard, PodReport, aggregate, chat_rooms
from tests.contracts.admin_contract import ControlBusContract, StatsBoardContract

# --- mentions and DMs --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("hi @bob", ["bob"]),
        ("@Alice and @bob-1a2b, then @ALICE again", ["alice", "bob-1a2b"]),
        ("thanks @carol.", ["carol"]),
        ("@dave: look", ["dave"]),
        ("(@erin) @frank!", ["erin", "frank"]),
        ("mail me at bob@example.com", []),
        ("@@bob and a lone @ sign", []),
        ("no mentions here", []),
        ("@jo.ann and @ünïcödé", ["jo.ann", "ünïcödé"]),
    ],
)
def test_mentioned_names(text, names):
    assert mentioned_names(text) == names


def test_mentions_are_capped_and_overlong_names_ignored():
    text = " ".join(f"@user{i}" for i in range(50)) + " @" + "x" * 101
    assert mentioned_names(text) == [f"user{i}" for i in range(20)]


def test_mention_room_is_case_insensitive():
    assert mention_room("Bob") == mention_room("bob") == "mention:bob"


@pytest.mark.parametrize(
    ("room", "sender", "recipient"),
    [
        ("dm:alice:bob", "alice", "bob"),
        ("dm:alice:bob", "bob", "alice"),
        ("dm:alice:alice", "alice", None),
        ("dm:alice:bob", "carol", None),
        ("lobby", "alice", None),
        ("dm:alice", "alice", None),
        ("user:alice", "alice", None),
    ],
)
def test_dm_recipient(room, sender, recipient):
    assert dm_recipient(room, sender) == recipient


def test_excerpt_and_notification_shape():
    assert excerpt("short") == "short"
    long = excerpt("word " * 100, 20)
    assert len(long) <= 20 and long.endswith("…")
    message = Message("01J0000000000000000000000A", "lobby", "u1", "Alice", "hi @bob", 0)
    assert message_notification("mention", message) == {
        "type": "mention",
        "roomId": "lobby",
        "messageId": "01J0000000000000000000000A",
        "from": {"userId": "u1", "username": "Alice"},
        "text": "hi @bob",
        "timestamp": "1970-01-01T00:00:00.000Z",
    }


# --- admin payloads -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        "bob",
        42,
        None,
        [],
        {},
        {"userId": ""},
        {"userId": True},
        {"userId": "a:b"},
        {"userId": 1.5},
        {"userId": "x" * 201},
        {"userId": ["bob"]},
    ],
)
def test_kick_refuses_garbage(payload):
    with pytest.raises(ChatError) as err:
        parse_kick(payload)
    assert err.value.ack()["code"] == "invalid_message"


def test_kick_accepts_string_and_integer_ids_and_an_optional_revoke():
    assert parse_kick({"userId": "bob"}) == ("bob", False)
    assert parse_kick({"userId": 42, "extra": 1}) == ("42", False)
    assert parse_kick({"userId": "bob", "revoke": True}) == ("bob", True)
    for bad in ({"userId": "bob", "revoke": "yes"}, {"userId": "a#b"}):
        with pytest.raises(ChatError):
            parse_kick(bad)


@pytest.mark.parametrize(
    "payload",
    ["hi", 1, None, [], {}, {"text": ""}, {"text": "   "}, {"text": 5}, {"text": "x" * 5001}],
)
def test_broadcast_refuses_garbage(payload):
    with pytest.raises(ChatError):
        parse_broadcast(payload, 5000)


def test_broadcast_trims():
    assert parse_broadcast({"text": "  maintenance at 5  "}, 5000) == "maintenance at 5"


def test_stats_takes_nothing_or_an_object():
    parse_stats(None)
    parse_stats({})
    for bad in ("x", 3, [1]):
        with pytest.raises(ChatError):
            parse_stats(bad)


# --- stats --------------------------------------------------------------------------------


def test_chat_rooms_skips_sid_personal_and_namespace_rooms():
    rooms = [None, "sidA", "sidB", "user:alice", "lobby", "dm:alice:bob"]
    assert chat_rooms(rooms, ["sidA", "sidB"]) == {"lobby", "dm:alice:bob"}
    internal = rooms + ["lobby#live", "lobby#batch", "solo#live"]
    derived = (lambda r: r + "#live", lambda r: r + "#batch")
    assert chat_rooms(internal, ["sidA"], derived) == {"sidB", "lobby", "dm:alice:bob", "solo#live"}


def test_aggregate_unions_rooms_and_keeps_the_newest_report_per_pod():
    reports = [
        PodReport("a", {"/chat": 3, "/notifications": 1}, frozenset({"lobby", "x"}), 10),
        PodReport("b", {"/chat": 2}, frozenset({"lobby", "y"}), 10),
        PodReport("a", {"/chat": 1}, frozenset({"old"}), 5),  # stale copy of pod a
    ]
    totals = aggregate(reports)
    assert totals.connections == 6
    assert totals.namespaces == {"/chat": 5, "/notifications": 1}
    assert totals.rooms == 3  # lobby counted once
    assert totals.gateways == 2
    assert aggregate([]).gateways == 0


def test_report_round_trips_and_garbage_is_refused():
    report = PodReport("pod", {"/chat": 2}, frozenset({"r1", "r2"}), 123)
    assert PodReport.decode(report.encode()) == report
    for raw in ("", "[]", '{"pod": "p"}', '{"pod":"p","connections":[],"rooms":[],"at":1}'):
        with pytest.raises(ValueError):
            PodReport.decode(raw)


def test_command_round_trips_and_garbage_is_refused():
    command = Command(KICK, "bob", "pod-a")
    assert Command.decode(command.encode()) == command
    for raw in ("nope", "{}", '{"op":"reboot","userId":"x"}', '{"op":"kick","userId":""}'):
        with pytest.raises(ValueError):
            Command.decode(raw)


# --- Admin UI credentials and settings ---------------------------------------------------------


def test_admin_ui_credentials():
    check = credentials_check("admin", "s3cret")
    assert check({"username": "admin", "password": "s3cret"})
    for bad in (
        None,
        "admin",
        {},
        {"username": "admin"},
        {"username": "admin", "password": "x"},
        {"username": "root", "password": "s3cret"},
        {"username": 1, "password": 2},
    ):
        assert not check(bad)


def test_admin_settings_defaults_and_validation():
    s = Settings.from_env({})
    assert s.admin_ui_password == "" and s.admin_ui_namespace == "/socketio-admin"
    assert "admin_ui_password" not in repr(Settings.from_env({"PARLEY_ADMIN_UI_PASSWORD": "pw"}))
    for ns in ("/admin", "/chat", "nope"):
        with pytest.raises(SettingsError, match="PARLEY_ADMIN_UI_NAMESPACE"):
            Settings.from_env({"PARLEY_ADMIN_UI_NAMESPACE": ns})
    with pytest.raises(SettingsError, match="PARLEY_ADMIN_STATS_SECONDS"):
        Settings.from_env({"PARLEY_ADMIN_STATS_SECONDS": "0"})


# --- the in-process adapters ----------------------------------------------------------------


class TestMemoryControlBus(ControlBusContract):
    @pytest.fixture
    async def bus(self):
        return MemoryControlBus()


class TestMemoryStatsBoard(StatsBoardContract):
    @pytest.fixture
    async def board(self):
        return MemoryStatsBoard()


# --- routing of message notifications (fake Socket.IO server, memory presence) -------------


class FakeSio:
    def __init__(self) -> None:
        self.emitted: list[tuple[str, dict, str | None, str]] = []

    def on(self, *_args, **_kw) -> None:
        return None

    async def emit(self, event, data, room=None, namespace=None, **_kw) -> None:
        self.emitted.append((event, data, room, namespace))


def notifications_with(presence):
    sio = FakeSio()
    return sio, NotificationsNamespace(
        sio, Settings.from_env({}), SimpleNamespace(presence=presence)
    )


def msg(room: str, text: str, user: str = "alice", username: str = "Alice") -> Message:
    return Message("01J0000000000000000000000A", room, user, username, text, 0)


async def test_mentions_go_to_mention_rooms_except_the_senders_own():
    sio, ns = notifications_with(MemoryPresenceStore())
    await ns.message_accepted(msg("lobby", "@bob @ALICE @Carol"))
    assert [(room, body["type"]) for _, body, room, _ in sio.emitted] == [
        ("mention:bob", "mention"),
        ("mention:carol", "mention"),
    ]
    assert all(ev == "notification" and n == "/notifications" for ev, _, _, n in sio.emitted)


async def test_dm_goes_to_the_absent_recipient_only_and_never_as_mentions():
    presence = MemoryPresenceStore()
    sio, ns = notifications_with(presence)
    await ns.message_accepted(msg("dm:alice:bob", "hi @carol"))
    assert [(room, body["type"]) for _, body, room, _ in sio.emitted] == [("user:bob", "dm")]

    bob = Session("bob", "Bob", "sid-b", "pod")
    await presence.connect(bob, 1)
    await presence.join_room(bob, "dm:alice:bob")
    sio.emitted.clear()
    await ns.message_accepted(msg("dm:alice:bob", "still there?"))
    await ns.message_accepted(msg("user:alice", "@bob note to self"))
    assert sio.emitted == []


async def test_a_failing_backend_never_raises_into_chat():
    class Down:
        async def is_member(self, *_):
            raise RuntimeError("redis down")

    sio, ns = notifications_with(Down())
    await ns.message_accepted(msg("dm:alice:bob", "hello"))  # logged and counted, not raised
    assert sio.emitted == []
