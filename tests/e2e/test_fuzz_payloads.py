"""Property-based end-to-end test: whatever a client sends, every event with an ack gets
exactly one ack of the documented shape, and the server keeps serving.

Hypothesis draws an event (``room:join``, ``room:leave``, ``chat:message``, ``chat:typing``,
``chat:read``, ``chat:history``) and its arguments: JSON-like values (null, booleans, ints of
up to 99 digits, floats incl. NaN/inf, unicode and very long strings, lone surrogates, bytes,
lists, nested and wide dicts), dicts with the protocol's keys holding wrong-typed or
near-miss values, and well-formed payloads so the accepting paths run too. Each example uses a
fresh user (so rate limits do not pile up) on one python-socketio client, joined to a seeded
room or not.

Hypothesis runs in a worker thread and drives the clients on the test's event loop, so one test
can check the gateway before and after the run (its handler-error counter, a fresh client).
``NASTY`` holds fixed payloads (found by the property, or on known edges) run as plain tests.
"""

from __future__ import annotations

import asyncio
import math
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import socketio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.errors import TEXTS
from tests.support.client import ChatClient

pytestmark = pytest.mark.e2e

EVENTS = ["room:join", "room:leave", "chat:message", "chat:typing", "chat:read", "chat:history"]
# PROTOCOL.md, "Errors": the only codes and texts an error ack may carry.
DOCUMENTED_ERRORS = {
    "invalid_message": "Invalid message",
    "rate_limited": "Rate limit exceeded",
    "forbidden": "Forbidden",
    "not_found": "Not found",
    "too_large": "File too large",
    "unavailable": "Temporarily unavailable, retry",
    "too_many_rooms": "Too many rooms",  # (ext) README: rooms per socket are capped
}
MAX_EXAMPLES = 200
CALL_TIMEOUT = 6.0  # acks take milliseconds; Kafka's send timeout is 5 s

# Placeholders bound per example (strategies are built before the fixtures exist).
ROOM, OWN_ROOM, DM_ROOM = "§room§", "§own-room§", "§dm-room§"
SEEDED_IDS = ("§id0§", "§id1§", "§id2§")

ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


# --- strategies ---------------------------------------------------------------------------

# Integers beyond 2**64 and JavaScript's safe range, up to 99 digits. Longer ones make the
# gateway drop the whole packet (no ack, see NASTY); each such shrink step would cost a full ack
# timeout, so they are checked as fixed cases instead of drawn here.
MAX_DIGITS = 99
huge_ints = st.one_of(
    st.sampled_from([0, -1, 2**31, 2**53 + 1, -(2**63) - 1, 2**64, 10**40, -(10**MAX_DIGITS - 1)]),
    st.integers(-(10**MAX_DIGITS - 1), 10**MAX_DIGITS - 1),
)
long_text = st.one_of(
    st.builds(lambda s, n: (s * n)[:n], st.text(min_size=1, max_size=3), st.integers(1, 60_000)),
    st.builds(
        lambda pad, n: pad + "x" * n + pad,
        st.sampled_from(["", " ", "\n\t "]),
        st.sampled_from([4999, 5000, 5001, 10_000]),
    ),
)
lone_surrogates = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3)
# Text with lone UTF-16 surrogates mixed in: valid JSON ("\\ud800"), and JavaScript strings
# can carry them; the server must accept or refuse them, never fail on them.
odd_text = st.text(st.characters(categories=["Cs", "Ll", "Zs", "So"]), min_size=1, max_size=8)
message_ids = st.one_of(
    st.sampled_from(SEEDED_IDS),
    st.text(ID_ALPHABET, min_size=26, max_size=26).filter(lambda s: s[0] in "01234567"),
    st.sampled_from(["0" * 26, "7" + "Z" * 25, "8" + "0" * 25, "0" * 25, "0" * 27, "a" * 26]),
)
room_names = st.one_of(
    st.sampled_from([ROOM, OWN_ROOM, DM_ROOM, "user:someone-else", "dm:a:b", "dm:zz:aa"]),
    st.sampled_from(["", " ", "\n", "x" * 200, "x" * 201, "lobby", "user:", "dm:"]),
    st.text(max_size=12),
    lone_surrogates,
)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    huge_ints,
    st.floats(),  # NaN and infinities included: python's json sends them
    st.text(),
    long_text,
    lone_surrogates,
    message_ids,
    room_names,
    st.binary(max_size=16),  # becomes a Socket.IO binary attachment
)
json_values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
big_values = st.one_of(
    st.builds(lambda n: list(range(n)), st.integers(1_000, 20_000)),
    st.builds(lambda n: {f"k{i}": i for i in range(n)}, st.integers(1_000, 5_000)),
    st.builds(lambda n: _nest(n), st.integers(50, 400)),
)


def _nest(depth: int) -> Any:
    value: Any = {"roomId": ROOM}
    for i in range(depth):
        value = [value] if i % 2 else {"roomId": value}
    return value


def either(right: st.SearchStrategy) -> st.SearchStrategy:
    """The right kind of value for a key most of the time, anything otherwise."""
    return st.one_of(right, right, json_values)


plausible_dicts = st.builds(
    lambda known, extra: {**extra, **known},
    st.fixed_dictionaries(
        {},
        optional={
            "roomId": either(room_names),
            "text": either(st.one_of(st.text(max_size=40), long_text, lone_surrogates)),
            "since": either(message_ids),
            "before": either(message_ids),
            "messageId": either(message_ids),
            "replyTo": either(message_ids),
            "limit": either(st.one_of(st.integers(-3, 150), huge_ints, st.floats(0, 200))),
            "isTyping": either(st.booleans()),
            "clientMsgId": either(st.text(max_size=120)),
            "userId": json_values,
        },
    ),
    st.dictionaries(st.text(max_size=8), json_values, max_size=2),
)
seeded_ids = st.sampled_from(SEEDED_IDS)
WELL_FORMED = {
    "room:join": st.one_of(
        st.just(ROOM),
        st.fixed_dictionaries({"roomId": st.just(ROOM)}, optional={"limit": st.integers(1, 100)}),
        st.fixed_dictionaries({"roomId": st.just(ROOM), "since": seeded_ids}),
    ),
    "room:leave": st.one_of(st.just(ROOM), st.fixed_dictionaries({"roomId": st.just(ROOM)})),
    "chat:message": st.fixed_dictionaries(
        {"roomId": st.just(ROOM), "text": st.one_of(st.text(min_size=1, max_size=50), odd_text)},
        optional={"replyTo": seeded_ids, "clientMsgId": st.uuids().map(str)},
    ),
    "chat:typing": st.fixed_dictionaries({"roomId": st.just(ROOM), "isTyping": st.booleans()}),
    "chat:read": st.fixed_dictionaries({"roomId": st.just(ROOM), "messageId": seeded_ids}),
    "chat:history": st.fixed_dictionaries(
        {"roomId": st.just(ROOM)}, optional={"before": seeded_ids, "limit": st.integers(1, 100)}
    ),
}
KEYS = ["roomId", "text", "since", "limit", "before", "messageId", "isTyping", "replyTo"]
odd_values = st.one_of(json_values, room_names, message_ids, long_text, lone_surrogates, huge_ints)


def near_misses(event: str) -> st.SearchStrategy:
    """A well-formed payload with one key set to an odd value, or one key dropped."""
    objects = WELL_FORMED[event].filter(lambda p: isinstance(p, dict))
    return st.one_of(
        st.builds(lambda p, k, v: {**p, k: v}, objects, st.sampled_from(KEYS), odd_values),
        st.builds(
            lambda p, k: {key: v for key, v in p.items() if key != k},
            objects,
            st.sampled_from(KEYS),
        ),
    )


def payloads(event: str) -> st.SearchStrategy:
    return st.one_of(
        WELL_FORMED[event],
        near_misses(event),
        near_misses(event),
        plausible_dicts,
        json_values,
        big_values,
    )


def arguments(event: str) -> st.SearchStrategy:
    """What ChatClient.call sends: a non-tuple is the single argument (None sends none); a
    tuple is the argument list, so () is no argument, (None,) an explicit null, (a, b) two."""
    one = payloads(event)
    return st.one_of(one, one, one, st.tuples(), st.tuples(one), st.tuples(one, json_values))


def binary_leaves(value: Any) -> int:
    if isinstance(value, bytes | bytearray):
        return 1
    if isinstance(value, dict):
        return sum(binary_leaves(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(binary_leaves(v) for v in value)
    return 0


# A packet may carry one binary attachment (what chat:file needs); more disconnect the socket
# (tests/e2e/test_security.py), so the property draws at most one.
cases = (
    st.sampled_from(EVENTS)
    .flatmap(lambda e: st.tuples(st.just(e), arguments(e)))
    .filter(lambda case: binary_leaves(case[1]) <= 1)
)


# --- the property -------------------------------------------------------------------------


@dataclass
class Target:
    url: str
    token: Any
    room: str
    ids: list[str]
    outcomes: Counter = field(default_factory=Counter)
    unavailable: list[tuple[str, Any]] = field(default_factory=list)


def bind(value: Any, user: str, target: Target) -> Any:
    """Replaces the placeholders (whole strings only) with this example's room and ids."""
    if isinstance(value, str):
        if value == ROOM:
            return target.room
        if value == OWN_ROOM:
            return f"user:{user}"
        if value == DM_ROOM:
            return "dm:" + ":".join(sorted([user, "other-user"]))
        if value in SEEDED_IDS:
            return target.ids[SEEDED_IDS.index(value)]
        return value
    if isinstance(value, list):
        return [bind(v, user, target) for v in value]
    if isinstance(value, tuple):
        return tuple(bind(v, user, target) for v in value)
    if isinstance(value, dict):
        return {k: bind(v, user, target) for k, v in value.items()}
    return value


def check_ack(event: str, ack: Any) -> str:
    """Asserts the documented shape; returns the outcome (``ok`` or the error code)."""
    assert isinstance(ack, dict), f"ack is not one object: {ack!r}"
    if ack.get("status") == "ok":
        if event == "room:join":
            assert isinstance(ack.get("roomId"), str), ack
        elif event == "chat:message":
            assert isinstance(ack.get("messageId"), str), ack
        elif event == "chat:history":
            assert isinstance(ack.get("messages"), list), ack
            assert isinstance(ack.get("hasMore"), bool), ack
        return "ok"
    code = ack.get("code")
    assert code in DOCUMENTED_ERRORS, f"undocumented ack: {ack!r}"
    assert ack == {"status": "error", "error": DOCUMENTED_ERRORS[code], "code": code}, ack
    return code


class AckCounter:
    """Counts acks per packet id on a client: python-socketio drops a second ack for an id
    silently, so its private ``_handle_ack`` is wrapped to notice one."""

    def __init__(self, client: ChatClient) -> None:
        self.seen: Counter = Counter()
        original = client.sio._handle_ack

        async def counting(namespace, id, data):
            self.seen[(namespace or "/", id)] += 1
            await original(namespace, id, data)

        client.sio._handle_ack = counting

    def duplicates(self) -> dict:
        return {k: n for k, n in self.seen.items() if n > 1}


async def one_example(target: Target, event: str, args: Any, joined: bool) -> str:
    """One client, one event: asserts one documented ack and a live socket; the outcome."""
    user = unique("fz")
    args = bind(args, user, target)
    client = ChatClient(target.url, target.token(user))
    acks = AckCounter(client)
    await client.connect()
    try:
        if joined:
            assert (await client.call("room:join", target.room))["status"] == "ok"
        try:
            ack = await client.call(event, args, timeout=CALL_TIMEOUT)
        except socketio.exceptions.TimeoutError:
            raise AssertionError(f"no ack for {event} within {CALL_TIMEOUT}s") from None
        outcome = check_ack(event, ack)
        target.outcomes[(event, outcome)] += 1
        if outcome == "unavailable":
            target.unavailable.append((event, args))
        # A round trip after the fuzzed event: a duplicate ack would arrive before this one,
        # and the socket must still be served.
        assert client.sio.connected, "the server closed the connection"
        probe = await client.call("room:leave", "fuzz-probe", timeout=CALL_TIMEOUT)
        assert probe == {"status": "ok", "roomId": "fuzz-probe"}, probe
        assert not acks.duplicates(), f"more than one ack: {acks.duplicates()}"
        assert acks.seen.total() >= 2, "the ack counter saw nothing (python-socketio changed?)"
        return outcome
    finally:
        await client.close()


def short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}...({len(text)} chars)"


async def handler_errors(url: str) -> float:
    """``parley_gateway_handler_errors_total`` of one gateway (unexpected exceptions)."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(url + "/metrics", timeout=5)).text
    found = re.search(r"^parley_gateway_handler_errors_total (\S+)$", text, re.M)
    return float(found.group(1)) if found else math.nan


@pytest.fixture
async def target(system) -> Target:
    """A room with three seeded messages, so ids and membership can be valid."""
    room = unique("fuzz")
    seeder = await system.client(unique("fz-seed"))
    assert (await seeder.call("room:join", room))["status"] == "ok"
    ids = []
    for i in range(3):
        ack = await seeder.call("chat:message", {"roomId": room, "text": f"seed {i}"})
        assert ack["status"] == "ok", ack
        ids.append(ack["messageId"])
    return Target(system.gateways[0].url, system.token, room, ids)


def test_documented_error_texts_match_the_code():
    assert {c.value: t for c, t in TEXTS.items()} == DOCUMENTED_ERRORS


async def test_every_event_acks_once_whatever_the_payload(system, target):
    loop = asyncio.get_running_loop()
    errors_before = await handler_errors(target.url)

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
    @given(case=cases, joined=st.booleans())
    def fuzz(case: tuple[str, Any], joined: bool) -> None:
        event, args = case
        work = asyncio.run_coroutine_threadsafe(one_example(target, event, args, joined), loop)
        work.result(timeout=3 * CALL_TIMEOUT + 15)

    await asyncio.to_thread(fuzz)

    table = ", ".join(f"{e} {o}: {n}" for (e, o), n in sorted(target.outcomes.items()))
    print(f"\nfuzz outcomes ({system.settings.mode}): {table}")

    # The server still serves: every process alive, a fresh client gets a valid message acked.
    for service in system.gateways + system.others:
        assert service.proc is not None and service.proc.poll() is None, (
            f"{service.name} exited; log {service.log_path}\n{service.tail()}"
        )
    room = unique("after-fuzz")
    fresh = await system.client(unique("fz-after"))
    assert (await fresh.call("room:join", room))["status"] == "ok"
    ack = await fresh.call("chat:message", {"roomId": room, "text": "still here"})
    assert ack["status"] == "ok" and isinstance(ack["messageId"], str), ack
    await fresh.wait_for("chat:message", lambda m: m["id"] == ack["messageId"])

    # With every engine up, `unavailable` (or an unexpected exception in a handler, which the
    # gateway turns into `unavailable`) means client input was treated as a backend failure.
    if target.unavailable:
        smallest = sorted(target.unavailable, key=lambda ea: len(repr(ea[1])))[:5]
        pytest.fail(
            f"{len(target.unavailable)} payload(s) got 'unavailable' with healthy engines, e.g.:\n"
            + "\n".join(f"  {e} {short(a)}" for e, a in smallest)
        )
    errors_after = await handler_errors(target.url)
    assert errors_after == errors_before, (
        f"handler errors went {errors_before} -> {errors_after}: see {system.gateways[0].log_path}"
    )


# Payloads the property found or that sit on known edges, run every time (fast, one failure
# per case). Expected: one documented ack that is not `unavailable` (the engines are up).
NASTY = {
    "int-over-100-digits": ("room:join", -(10**100), False),
    "int-over-100-digits-in-limit": ("chat:history", {"roomId": ROOM, "limit": 10**100}, True),
    "lone-surrogate-text": ("chat:message", {"roomId": ROOM, "text": "hi \ud800"}, True),
    "lone-surrogate-room": ("room:join", "lobby\udfff", False),
    "lone-surrogate-client-msg-id": (
        "chat:message",
        {"roomId": ROOM, "text": "ok", "clientMsgId": "\ud800"},
        True,
    ),
    "payload-over-1MB": ("chat:message", {"roomId": ROOM, "text": "x" * 1_100_000}, True),
    "nan-limit": ("room:join", {"roomId": ROOM, "limit": math.nan}, False),
    "text-5001-chars": ("chat:message", {"roomId": ROOM, "text": "x" * 5001}, True),
    "text-5000-chars-padded": ("chat:message", {"roomId": ROOM, "text": f" {'x' * 5000} "}, True),
    "read-unknown-message": ("chat:read", {"roomId": ROOM, "messageId": "0" * 26}, True),
    "two-arguments": ("chat:typing", ({"roomId": ROOM, "isTyping": True}, [1, 2]), True),
    "deep-nesting": ("chat:message", _nest(400), True),
    "wide-object": ("chat:history", {f"k{i}": i for i in range(5000)}, True),
}


@pytest.mark.parametrize("case", NASTY.values(), ids=NASTY.keys())
async def test_nasty_payload(target, case):
    event, args, joined = case
    outcome = await one_example(target, event, args, joined)
    sent = short(target.unavailable[-1][1]) if target.unavailable else ""
    assert outcome != "unavailable", f"{event} {sent}: 'unavailable' with healthy engines"
