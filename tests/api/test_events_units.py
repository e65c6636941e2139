"""Pure and in-process parts of the presence/membership webhooks: the event records, the
presence store that records its transitions, the bounded Kafka event log (no broker: it must
never block nor raise), the worker's topic choice, and the stored memberships."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from services.common.settings import Settings
from services.common.webhook_endpoints import parse_endpoints
from services.storage.events import (
    MEMBER_JOINED,
    PRESENCE_OFFLINE,
    PRESENCE_ONLINE,
    MemoryEventLog,
    decode_event,
    events_topic,
    member_event,
    presence_event,
)
from services.storage.events_kafka import RECORDS, KafkaEventLog
from services.storage.memberships import MemoryMemberships
from services.storage.presence import MemoryPresenceStore, Session
from services.storage.presence_events import RecordingPresence
from services.webhooks.worker import EndpointWorker, delivery_id, recorded_event_of

SECRET = "s" * 20


def test_an_event_record_round_trips_and_junk_decodes_to_none():
    event = member_event(MEMBER_JOINED, "lobby", "u1", "Ann", "api", 1_700_000_000_000)
    back = decode_event(event.encode())
    assert back == event and back is not None and back.key == "lobby"
    assert presence_event(PRESENCE_ONLINE, "u1", "Ann", 5).key == "u1"
    assert event.id != member_event(MEMBER_JOINED, "lobby", "u1", "Ann", "api", 1).id
    for junk in (b"", b"{", b"[]", b'{"type":"chat.x","data":{},"at":1,"id":"a"}', None,
                 b'{"type":"presence.online","data":[],"at":1,"id":"a"}',
                 b'{"type":"presence.online","data":{},"at":"1","id":"a"}'):  # fmt: skip
        assert decode_event(junk) is None, junk


def test_a_redelivered_record_keeps_its_delivery_id():
    raw = presence_event(PRESENCE_OFFLINE, "u1", "Ann", 7).encode()
    once = recorded_event_of(SimpleNamespace(value=raw))
    again = recorded_event_of(SimpleNamespace(value=raw))
    assert once is not None and again is not None
    assert once[0] == PRESENCE_OFFLINE and once[2] == {"userId": "u1", "username": "Ann"}
    assert delivery_id("a", once[0], once[1]) == delivery_id("a", again[0], again[1])
    assert delivery_id("a", once[0], once[1]) != delivery_id("b", once[0], once[1])


async def test_only_the_winning_transition_is_recorded_once():
    events = MemoryEventLog()
    store = RecordingPresence(MemoryPresenceStore(grace_ms=0), events)
    phone, laptop = Session("u1", "Ann", "s1", "pod-a"), Session("u1", "Ann", "s2", "pod-b")
    assert await store.connect(phone, 1)
    assert not await store.connect(laptop, 2)  # second device: no transition
    assert not await store.disconnect(phone, 3)
    assert await store.disconnect(laptop, 4)
    await store.connect(phone, 5, quiet=True)  # a re-registration after a state loss
    assert [(e.type, e.key, e.at_ms) for e in events.events] == [
        (PRESENCE_ONLINE, "u1", 1),
        (PRESENCE_OFFLINE, "u1", 4),
    ]


async def test_a_reaped_pod_and_an_ended_grace_period_record_offline():
    events = MemoryEventLog()
    store = RecordingPresence(MemoryPresenceStore(grace_ms=10), events)
    await store.connect(Session("u1", "Ann", "s1", "pod-a"), 1)
    await store.connect(Session("u2", "Bob", "s2", "pod-b"), 1)
    await store.reap_pod("pod-a", 2)
    await store.disconnect(Session("u2", "Bob", "s2", "pod-b"), 3)  # pending: grace
    assert [e.type for e in events.events] == [PRESENCE_ONLINE, PRESENCE_ONLINE, PRESENCE_OFFLINE]
    await store.sweep_pending(100)
    assert [(e.type, e.key) for e in events.events[-1:]] == [(PRESENCE_OFFLINE, "u2")]


async def test_the_kafka_event_log_never_blocks_and_counts_what_it_drops():
    settings = Settings.from_env({"PARLEY_KAFKA_BOOTSTRAP": "127.0.0.1:1"})  # nobody there
    log = KafkaEventLog(settings, queue_max=2)
    await log.start()
    dropped = RECORDS.labels(PRESENCE_ONLINE, "dropped")
    before = dropped._value.get()
    started = time.perf_counter()
    for n in range(5):
        log.record(presence_event(PRESENCE_ONLINE, f"u{n}", "x", n))
    assert time.perf_counter() - started < 0.1  # never waits for Kafka
    assert dropped._value.get() - before == 3  # queue of 2: three dropped at once
    assert not await log.healthy()
    await asyncio.wait_for(log.close(), 10)  # not connected: gives up at once
    assert dropped._value.get() - before == 5  # what was queued is counted too


def test_the_worker_consumes_the_events_topic_only_for_the_endpoints_that_want_it():
    settings = Settings.from_env({"PARLEY_KAFKA_TOPIC": "t.messages"})
    spec = (
        f"m|http://x/|message.created|{SECRET},p|http://x/|presence.online+room.member_left|"
        f"{SECRET},all|http://x/|*|{SECRET}"
    )
    topics = {
        e.name: EndpointWorker(settings, e, None).topics()  # type: ignore[arg-type]
        for e in parse_endpoints(spec)
    }
    assert topics == {
        "m": ["t.messages"],
        "p": [events_topic("t.messages")],
        "all": ["t.messages", "t.messages.events"],
    }


async def test_stored_memberships_index_both_ways():
    m = MemoryMemberships()
    assert await m.add("u1", "Ann", "lobby")
    assert not await m.add("u1", "Ann", "lobby")
    await m.add("u1", "Ann", "game")
    await m.add("u2", "Bob", "lobby")
    assert await m.rooms("u1") == ["game", "lobby"]
    assert await m.members("lobby") == {"u1": "Ann", "u2": "Bob"}
    assert await m.remove("u1", "lobby") and not await m.remove("u1", "lobby")
    assert not await m.has("u1", "lobby") and await m.has("u1", "game")
    assert await m.members("lobby") == {"u2": "Bob"}
