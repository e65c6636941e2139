import pytest

from services.common.errors import ChatError, Code
from services.common.ids import IdGenerator
from services.common.model import Message, iso_ms, parse_join, parse_new_message

VALID_ID = IdGenerator().new_id()[0]


def test_iso_timestamp_has_milliseconds_and_z():
    assert iso_ms(1_795_708_249_281) == "2026-11-26T15:50:49.281Z"
    assert iso_ms(0) == "1970-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    "payload",
    [
        None,
        "hi",
        5,
        [],
        {},
        {"roomId": "r"},
        {"roomId": "r", "text": "   "},
        {"roomId": "r", "text": 7},
        {"roomId": "", "text": "hi"},
        {"roomId": 3, "text": "hi"},
        {"roomId": "r", "text": "x" * 5001},
        {"roomId": "r", "text": "hi", "replyTo": "nope"},
        {"roomId": "r", "text": "hi", "clientMsgId": 5},
    ],
)
def test_invalid_messages_are_refused_with_invalid_message(payload):
    with pytest.raises(ChatError) as err:
        parse_new_message(payload, 5000)
    assert err.value.code is Code.INVALID_MESSAGE
    assert err.value.ack() == {
        "status": "error",
        "error": "Invalid message",
        "code": "invalid_message",
    }


def test_text_is_trimmed_and_limit_counts_after_trimming():
    parsed = parse_new_message({"roomId": "r", "text": "  " + "x" * 5000 + "  "}, 5000)
    assert parsed.text == "x" * 5000
    assert (
        parse_new_message(
            {"roomId": "r", "text": "hi", "replyTo": VALID_ID, "userId": "mallory"}, 5000
        ).reply_to
        == VALID_ID
    )


def test_join_accepts_string_or_object_and_caps_limit():
    assert parse_join("lobby", 50, 100).room_id == "lobby"
    request = parse_join({"roomId": "lobby", "since": VALID_ID, "limit": 1000}, 50, 100)
    assert (request.since, request.limit) == (VALID_ID, 100)
    for bad in (
        None,
        1,
        {"roomId": "r", "since": "x"},
        {"roomId": "r", "limit": 0},
        {"roomId": "r", "limit": True},
        {"roomId": "r", "limit": "5"},
    ):
        with pytest.raises(ChatError):
            parse_join(bad, 50, 100)


def test_record_round_trip_and_poison_detection():
    m = Message(
        id=VALID_ID,
        room_id="r",
        user_id="u",
        username="U",
        text="héllo",
        created_ms=1,
        reply_to=None,
        client_msg_id="c1",
    )
    assert Message.from_record(m.to_record()) == m
    wire = m.to_wire()
    assert wire["readBy"] == ["u"] and wire["id"] == VALID_ID and "replyTo" not in wire
    for poison in (
        b"\xff\xfe",
        b"[]",
        b'{"v": 2}',
        b'{"v": 1, "id": "x"}',
        m.to_record().replace(VALID_ID.encode(), b"not-an-id-not-an-id-000000"),
    ):
        with pytest.raises(ValueError):
            Message.from_record(poison)
