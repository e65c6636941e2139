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
