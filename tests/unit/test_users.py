"""Accounts: registration rules, password hashing, login settings and token signing, and the
``UserStore`` contract on the memory and SQLite adapters."""

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from services.common.auth import SigningUnavailable, issue_token, verify_token
from services.common.limits import Limit
from services.common.settings import Settings, SettingsError
from services.gateway.passwords import Hasher, check_password, dummy_hash, hash_password
from services.storage.messages_sqlite import SqliteMessageStore
from services.storage.users import (
    InvalidCredentials,
    MemoryUserStore,
    new_user_id,
    parse_credentials,
    parse_registration,
)
from services.storage.users_sqlite import SqliteUserStore
from tests.contracts.store_contract import make_messages
from tests.contracts.users_contract import UserStoreContract, make_user, name
from tests.support.keys import rsa_pems

# --- registration rules ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "username", ["abc", "a" * 32, "Alice_1", "x.y-z", "___", "0123456789", "A-B.C_D"]
)
def test_valid_usernames(username):
    assert parse_registration({"username": username, "password": "p" * 8}).username == username


@pytest.mark.parametrize(
    "username",
    [
        "",
        "ab",
        "a" * 33,
        "al ice",
        " alice",
        "alice\n",
        "al:ice",
        "élise",
        "a/b",
        "a@b",
        "名前です",
    ],
)
def test_invalid_usernames(username):
    with pytest.raises(InvalidCredentials) as err:
        parse_registration({"username": username, "password": "password1"})
    assert err.value.code == "invalid_username" and "3-32" in err.value.text


@pytest.mark.parametrize(
    "password", ["p" * 8, "p" * 256, " spaces are kept ", "日本語のパスワード", "🔑" * 8]
)
def test_valid_passwords(password):
    assert parse_registration({"username": "alice", "password": password}).password == password


@pytest.mark.parametrize("password", ["", "p" * 7, "p" * 257, "bad\ud800surrogate"])
def test_invalid_passwords(password):
    with pytest.raises(InvalidCredentials) as err:
        parse_registration({"username": "alice", "password": password})
    assert err.value.code == "invalid_password"


@pytest.mark.parametrize(
    "body",
    [
        None,
        "alice",
        42,
        ["alice", "password1"],
        {},
        {"username": "alice"},
        {"password": "password1"},
        {"username": 1234, "password": "password1"},
        {"username": "alice", "password": 12345678},
        {"username": None, "password": None},
        {"username": ["alice"], "password": {"p": 1}},
    ],
)
def test_malformed_bodies_are_invalid_request(body):
    for parse in (parse_registration, parse_credentials):
        with pytest.raises(InvalidCredentials) as err:
            parse(body)
        assert err.value.code == "invalid_request"


def test_credentials_never_show_the_password():
    assert "hunter22" not in repr(parse_credentials({"username": "a", "password": "hunter22"}))
    assert "secret-hash" not in repr(make_user("alice", "secret-hash"))


def test_user_ids_are_uuid_hex_without_colons():
    ids = {new_user_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 32 and ":" not in i and int(i, 16) >= 0 for i in ids)


# --- passwords ------------------------------------------------------------------------------


def test_hash_round_trip_and_wrong_password():
    stored = hash_password("correct horse", rounds=4)
    assert stored.startswith("bcrypt-sha256$$2b$04$")
    assert check_password("correct horse", stored)
    assert not check_password("correct horsE", stored)
    assert hash_password("correct horse", rounds=4) != stored  # salted


def test_long_passwords_are_not_truncated_at_72_bytes():
    base = "ü" * 100  # 200 bytes of UTF-8: bcrypt alone would refuse or truncate
    stored = hash_password(base + "A", rounds=4)
    assert check_password(base + "A", stored)
    assert not check_password(base + "B", stored)
    assert not check_password(base[:36], stored)


def test_unicode_normalization_forms_match():
    composed, decomposed = "caf\u00e9-password", "cafe\u0301-password"
    assert check_password(decomposed, hash_password(composed, rounds=4))


@pytest.mark.parametrize("stored", ["", "garbage", "$2b$04$short", "bcrypt-sha256$nonsense"])
def test_malformed_stored_hashes_never_match_and_never_raise(stored):
    assert not check_password("password1", stored)


async def test_dummy_check_costs_a_full_hash_and_never_matches():
    hasher = Hasher(rounds=4)
    assert not await hasher.check("anything", None)
    assert not check_password("", dummy_hash(4))
    stored = await hasher.hash("password1")
    assert await hasher.check("password1", stored)
    slow = Hasher(rounds=10)
    started = time.perf_counter()
    await slow.check("x", None)
    dummy_s = time.perf_counter() - started
    real = hash_password("x", rounds=10)
    started = time.perf_counter()
    await slow.check("y", real)
    wrong_s = time.perf_counter() - started
    assert dummy_s > wrong_s / 3  # same cost order: no cheap path for unknown users


# --- settings and signing -------------------------------------------------------------------


def test_login_settings_parse_and_fail_fast_naming_the_key():
    s = Settings.from_env(
        {"PARLEY_LOGIN_RATE_LIMIT": "3/10", "PARLEY_LOGIN_IP_RATE_LIMIT": "9/1.5"}
    )
    assert (s.login_rate_limit, s.login_ip_rate_limit) == ("3/10", "9/1.5")
    for key, bad in [
        ("PARLEY_LOGIN_RATE_LIMIT", "five"),
        ("PARLEY_LOGIN_RATE_LIMIT", "0/60"),
        ("PARLEY_LOGIN_IP_RATE_LIMIT", "5/0"),
        ("PARLEY_PASSWORD_BCRYPT_ROUNDS", "3"),
        ("PARLEY_LOGIN_TOKEN_TTL_SECONDS", "0"),
    ]:
        with pytest.raises(SettingsError, match=key):
            Settings.from_env({key: bad})


def test_parse_limit_gives_a_limit():
    from services.common.limits import parse_limit

    assert parse_limit("5/60", "K") == Limit(5, 60_000)


@pytest.fixture(scope="module")
def rsa_pair():
    return rsa_pems()


def test_rs256_tokens_are_signed_with_the_private_key(rsa_pair):
    private, public = rsa_pair
    settings = Settings.from_env(
        {
            "PARLEY_JWT_ALGORITHM": "RS256",
            "PARLEY_JWT_PUBLIC_KEY": public,
            "PARLEY_JWT_PRIVATE_KEY": private,
        }
    )
    assert private not in repr(settings)
    token = issue_token(settings, "u1", "Alice", ttl_seconds=60)
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    identity = verify_token(token, settings)
    assert (identity.user_id, identity.username) == ("u1", "Alice")


def test_rs256_without_a_usable_private_key_cannot_sign(rsa_pair):
    _, public = rsa_pair
    env = {"PARLEY_JWT_ALGORITHM": "RS256", "PARLEY_JWT_PUBLIC_KEY": public}
    with pytest.raises(SigningUnavailable):
        issue_token(Settings.from_env(env), "u1")
    with pytest.raises(SigningUnavailable, match="PARLEY_JWT_PRIVATE_KEY"):
        issue_token(Settings.from_env({**env, "PARLEY_JWT_PRIVATE_KEY": "not a pem"}), "u1")
    ec_key = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(SigningUnavailable, match="RSA"):
        issue_token(Settings.from_env({**env, "PARLEY_JWT_PRIVATE_KEY": ec_key}), "u1")


def test_hs256_signing_is_unchanged():
    settings = Settings.from_env({})
    token = issue_token(settings, "u1")
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert verify_token(token, settings).user_id == "u1"


# --- the UserStore contract on the in-process adapters --------------------------------------


class TestMemoryUsers(UserStoreContract):
    @pytest.fixture
    async def users(self):
        return MemoryUserStore()


class TestSqliteUsers(UserStoreContract):
    @pytest.fixture
    async def users(self, tmp_path):
        s = SqliteUserStore(str(tmp_path / "db" / "parley.db"))
        await s.start()
        yield s
        await s.close()


async def test_sqlite_users_survive_a_restart_and_share_the_message_file(tmp_path):
    path = str(tmp_path / "parley.db")
    messages = SqliteMessageStore(path)
    await messages.start()
    users = SqliteUserStore(path)
    await users.start()
    user = make_user(name("carol"))
    await users.create(user)
    await messages.write(make_messages("lobby", 2))
    await users.close()
    await messages.close()
    again = SqliteUserStore(path)
    await again.start()
    try:
        assert await again.by_username(user.username.upper()) == user
        assert await again.by_id(user.user_id) == user
    finally:
        await again.close()


async def test_sqlite_users_not_started_is_unavailable(tmp_path):
    from services.common.errors import Unavailable

    users = SqliteUserStore(str(tmp_path / "x.db"))
    with pytest.raises(Unavailable):
        await users.by_username("alice")
    assert not await users.healthy()
