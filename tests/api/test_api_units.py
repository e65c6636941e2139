"""Pure parts of the Server API: PARLEY_API_KEYS parsing and lookup, the control-bus
commands it adds."""

from __future__ import annotations

import pytest

from services.common.apikeys import find, parse_api_keys
from services.common.errors import SettingsError
from services.common.settings import Settings
from services.storage.control import DISCONNECT, JOIN, LEAVE, Command

KEY = "k" * 24


def test_keys_parse_with_names_and_scopes():
    keys = parse_api_keys(f"billing:{KEY}:publish+read, ops:{'o' * 30}:admin")
    assert [k.name for k in keys] == ["billing", "ops"]
    assert keys[0].allows("publish") and keys[0].allows("read") and not keys[0].allows("rooms")
    assert all(keys[1].allows(s) for s in ("publish", "rooms", "read", "admin"))
    assert find(keys, KEY) is keys[0] and find(keys, "o" * 30) is keys[1]
    assert find(keys, "k" * 23) is None and find(keys, "") is None


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        (f"a:{KEY}", "name:key:scope"),
        (f"a b:{KEY}:read", "bad name"),
        ("a:short:read", "shorter than"),
        (f"a:{KEY}:write", "scopes must be"),
        (f"a:{KEY}:", "scopes must be"),
        (f"a:{KEY}:read,a:{'x' * 24}:read", "given twice"),
        (f"a:{KEY}:read,b:{KEY}:read", "the same"),
    ],
)
def test_bad_keys_are_refused_naming_the_variable_never_the_key(spec, names):
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"PARLEY_API_KEYS": spec})
    text = str(refused.value)
    assert text.startswith("PARLEY_API_KEYS") and names in text and KEY not in text


def test_keys_never_appear_in_the_settings_repr():
    settings = Settings.from_env({"PARLEY_API_KEYS": f"svc:{KEY}:read"})
    assert KEY not in repr(settings) and KEY not in repr(settings.api_key_list)
    assert settings.api_key_list[0].name == "svc"


def test_room_commands_round_trip_and_need_their_room():
    for op in (JOIN, LEAVE):
        command = Command(op, "u1", "pod-a", room_id="lobby")
        assert Command.decode(command.encode()) == command
        with pytest.raises(ValueError):
            Command.decode(Command(op, "u1", "pod-a").encode())
    gone = Command(DISCONNECT, "u1", "pod-a")
    assert Command.decode(gone.encode()) == gone
    with pytest.raises(ValueError):
        Command.decode(Command(DISCONNECT, "u1", room_id="lobby").encode())


def test_webhook_signatures_verify_and_refuse_tampering_and_replays():
    from services.webhooks.signing import sign, verify

    body, secret = b'{"id":"d1"}', "s" * 20
    header = sign(secret, 1_000_000, body)
    assert verify(secret, header, body, now=1_000_100)
    assert not verify("t" * 20, header, body, now=1_000_100)  # wrong secret
    assert not verify(secret, header, body + b" ", now=1_000_100)  # body changed
    assert not verify(secret, header, body, now=1_000_301)  # outside the tolerance
    assert not verify(secret, header.replace("t=1000000", "t=1000200"), body, now=1_000_200)
    assert not verify(secret, "garbage", body, now=1_000_000)


def test_webhook_endpoints_parse_and_refuse_naming_the_variable():
    from services.common.webhook_endpoints import EVENTS, parse_endpoints

    secret = "x" * 16
    a, b = parse_endpoints(f"crm|https://crm/hook|*|{secret},bi|http://bi/h|message.read|{secret}")
    assert a.events == frozenset(EVENTS) and b.wants("message.read")
    assert not b.wants("message.created") and secret not in repr(a)
    for spec in (
        f"crm|ftp://x|*|{secret}",
        f"crm|https://x|message.sent|{secret}",
        "crm|https://x|*|short",
        f"crm|https://x|*|{secret},crm|https://y|*|{secret}",
    ):
        with pytest.raises(SettingsError) as refused:
            Settings.from_env({"PARLEY_WEBHOOKS": spec})
        assert str(refused.value).startswith("PARLEY_WEBHOOKS") and secret not in str(refused.value)
