import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.common.auth import AuthError, issue_token, verify_token
from services.common.settings import Settings, SettingsError

SETTINGS = Settings.from_env({})


def test_valid_token_gives_identity_from_sub_or_classic_user_id():
    assert verify_token(issue_token(SETTINGS, "alice", "Alice"), SETTINGS).username == "Alice"
    classic = jwt.encode(
        {"userId": "bob", "username": "Bob", "exp": time.time() + 60},
        SETTINGS.jwt_secret,
        algorithm="HS256",
    )
    assert verify_token(classic, SETTINGS).user_id == "bob"
    both = jwt.encode(
        {"sub": "s", "userId": "u", "exp": time.time() + 60}, SETTINGS.jwt_secret, algorithm="HS256"
    )
    assert verify_token(both, SETTINGS).user_id == "s"


def test_missing_token_is_authentication_required():
    with pytest.raises(AuthError) as err:
        verify_token(None, SETTINGS)
    assert err.value.message == "Authentication required"


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        jwt.encode(
            {"sub": "a", "exp": time.time() + 60},
            "wrong-secret-wrong-secret-wrong-!",
            algorithm="HS256",
        ),
        jwt.encode({"sub": "a", "exp": time.time() + 60}, None, algorithm="none"),
        jwt.encode({"sub": "a"}, SETTINGS.jwt_secret, algorithm="HS256"),  # no exp
        jwt.encode(
            {"sub": "a", "exp": time.time() + 60}, SETTINGS.jwt_secret * 2, algorithm="HS512"
        ),  # wrong algorithm (and key)
        jwt.encode({"sub": "a:b", "exp": time.time() + 60}, SETTINGS.jwt_secret, algorithm="HS256"),
    ],
)
def test_bad_tokens_are_invalid_token(token):
    with pytest.raises(AuthError) as err:
        verify_token(token, SETTINGS)
    assert err.value.message == "Invalid token"


def test_expired_token_carries_token_expired_code_after_leeway():
    old = issue_token(SETTINGS, "a", ttl_seconds=1, now=time.time() - 100)
    with pytest.raises(AuthError) as err:
        verify_token(old, SETTINGS)
    assert err.value.code == "token_expired"
    recent = issue_token(SETTINGS, "a", ttl_seconds=1, now=time.time() - 10)
    assert verify_token(recent, SETTINGS).user_id == "a"  # within the 30 s leeway


def test_rs256_by_configuration():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    settings = Settings.from_env({"PARLEY_JWT_ALGORITHM": "RS256", "PARLEY_JWT_PUBLIC_KEY": public})
    token = jwt.encode(
        {"sub": "r", "exp": time.time() + 60, "role": "admin"}, key, algorithm="RS256"
    )
    identity = verify_token(token, settings)
    assert identity.user_id == "r" and identity.is_admin
    with pytest.raises(AuthError):  # an HS256 token signed with the public key text
        verify_token(
            jwt.encode({"sub": "r", "exp": time.time() + 60}, "x" * 32, algorithm="HS256"), settings
        )


def test_settings_fail_fast_naming_the_key_and_hide_secrets():
    with pytest.raises(SettingsError, match="PARLEY_PORT"):
        Settings.from_env({"PARLEY_PORT": "eighty"})
    with pytest.raises(SettingsError, match="PARLEY_MODE"):
        Settings.from_env({"PARLEY_MODE": "both"})
    with pytest.raises(SettingsError, match="PARLEY_JWT_PUBLIC_KEY"):
        Settings.from_env({"PARLEY_JWT_ALGORITHM": "RS256"})
    settings = Settings.from_env({"PARLEY_JWT_SECRET": "s3cr3t-value", "PARLEY_PORT": "9000"})
    assert settings.port == 9000 and "s3cr3t-value" not in repr(settings)
    assert settings.pod_id  # generated


def test_audience_and_issuer_are_checked_when_configured():
    strict = Settings.from_env({"PARLEY_JWT_AUDIENCE": "parley", "PARLEY_JWT_ISSUER": "auth.ex"})
    good = issue_token(strict, "alice")
    claims = jwt.decode(good, options={"verify_signature": False})
    assert (claims["aud"], claims["iss"]) == ("parley", "auth.ex") and claims["jti"]
    assert verify_token(good, strict).user_id == "alice"
    plain = issue_token(SETTINGS, "alice")  # no aud / iss
    for other in ({"PARLEY_JWT_AUDIENCE": "other"}, {"PARLEY_JWT_ISSUER": "evil"}):
        wrong = Settings.from_env({"PARLEY_JWT_AUDIENCE": "parley", **other})
        for tok in (plain, issue_token(wrong, "alice")):
            with pytest.raises(AuthError) as err:
                verify_token(tok, strict)
            assert err.value.message == "Invalid token"


def test_subjects_with_reserved_characters_are_refused():
    for sub in ("a#live", "a:b", ""):
        tok = jwt.encode({"sub": sub, "exp": time.time() + 60}, SETTINGS.jwt_secret, "HS256")
        with pytest.raises(AuthError):
            verify_token(tok, SETTINGS)


def test_weak_secrets_are_refused_outside_single_node_mode():
    for secret in ("parley-dev-secret-change-me-in-production", "short", "x" * 31):
        settings = Settings.from_env({"PARLEY_MODE": "cluster", "PARLEY_JWT_SECRET": secret})
        with pytest.raises(SettingsError, match="PARLEY_JWT_SECRET"):
            settings.require_strong_secret()
    Settings.from_env(
        {"PARLEY_MODE": "cluster", "PARLEY_JWT_SECRET": "y" * 32}
    ).require_strong_secret()
    Settings.from_env({"PARLEY_MODE": "single"}).require_strong_secret()  # the laptop default


@pytest.mark.parametrize(
    "env",
    [
        {"PARLEY_TRUSTED_PROXIES": "10.0.0.0/33"},
        {"PARLEY_TRUSTED_PROXIES": "nginx"},
        {"PARLEY_METRICS_PORT": "8000"},
        {"PARLEY_RATE_LIMITS": "room:join=x/1"},
        {"PARLEY_REGISTER_IP_RATE_LIMIT": "0/60"},
        {"PARLEY_MAX_ROOMS_PER_SOCKET": "0"},
        {"PARLEY_HASH_MAX_PENDING": "0"},
        {"PARLEY_CORS_CREDENTIALS": "maybe"},
    ],
)
def test_new_settings_fail_fast_naming_the_key(env):
    key = next(iter(env))
    with pytest.raises(SettingsError, match=key):
        Settings.from_env(env)
