"""Engine trust settings (Redis, Kafka, Cassandra credentials and TLS): parsing, fail-fast
validation naming the key, secrets kept out of ``repr``, the client options built from them,
and that every engine client of the services is built through those builders."""

from __future__ import annotations

import ast
import ssl
from pathlib import Path

import certifi
import pytest
from aiokafka import AIOKafkaProducer
from cassandra.auth import PlainTextAuthProvider
from redis.asyncio.connection import Connection, SSLConnection

from services.common.kafka_io import kafka_options
from services.common.redis_io import redis_client, redis_options
from services.common.settings import Settings, SettingsError
from services.storage.cassandra_io import cassandra_trust_options, make_cluster
from tests.support.procs import ROOT

CA = certifi.where()  # any real PEM bundle


def settings(**env: str) -> Settings:
    # single-node mode: these checks apply in every mode, and it needs no JWT secret
    return Settings.from_env(
        {"PARLEY_MODE": "single", **{f"PARLEY_{k.upper()}": v for k, v in env.items()}}
    )


def test_defaults_are_plaintext_without_credentials():
    s = settings()
    assert (s.redis_username, s.redis_password, s.redis_tls, s.redis_tls_ca_file) == (
        "",
        "",
        False,
        "",
    )
    assert (s.kafka_security_protocol, s.kafka_sasl_mechanism) == ("PLAINTEXT", "SCRAM-SHA-512")
    assert (s.cassandra_username, s.cassandra_tls) == ("", False)
    assert redis_options(s) == {}
    assert kafka_options(s) == {
        "bootstrap_servers": s.kafka_bootstrap,
        "security_protocol": "PLAINTEXT",
    }
    assert cassandra_trust_options(s) == {}


def test_every_setting_is_read_and_secrets_stay_out_of_repr():
    s = settings(
        redis_username="gw",
        redis_password="redis-s3cret",
        redis_tls="true",
        redis_tls_ca_file=CA,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_username="gw",
        kafka_password="kafka-s3cret",
        kafka_tls_ca_file=CA,
        cassandra_username="gw",
        cassandra_password="cassandra-s3cret",
        cassandra_tls="yes",
        cassandra_tls_ca_file=CA,
    )
    assert s.redis_tls and s.redis_tls_enabled and s.cassandra_tls
    assert s.kafka_sasl_mechanism == "SCRAM-SHA-256"
    text = repr(s)
    assert "gw" in text
    for secret in ("redis-s3cret", "kafka-s3cret", "cassandra-s3cret"):
        assert secret not in text


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"kafka_security_protocol": "SASL_SSL", "kafka_password": "p"}, "PARLEY_KAFKA_USERNAME"),
        ({"kafka_security_protocol": "SASL_SSL", "kafka_username": "u"}, "PARLEY_KAFKA_PASSWORD"),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_username": "u"},
            "PARLEY_KAFKA_PASSWORD",
        ),
        ({"kafka_security_protocol": "TLS"}, "PARLEY_KAFKA_SECURITY_PROTOCOL"),
        ({"kafka_sasl_mechanism": "GSSAPI"}, "PARLEY_KAFKA_SASL_MECHANISM"),
        ({"kafka_username": "u", "kafka_password": "p"}, "PARLEY_KAFKA_USERNAME"),
        ({"kafka_tls_ca_file": CA}, "PARLEY_KAFKA_TLS_CA_FILE"),
        (
            {"kafka_security_protocol": "SSL", "kafka_tls_ca_file": "/nonexistent/ca.pem"},
            "PARLEY_KAFKA_TLS_CA_FILE",
        ),
        ({"redis_username": "u"}, "PARLEY_REDIS_PASSWORD"),
        ({"redis_tls_ca_file": CA}, "PARLEY_REDIS_TLS_CA_FILE"),
        ({"redis_tls": "true", "redis_tls_ca_file": "/nonexistent"}, "PARLEY_REDIS_TLS_CA_FILE"),
        ({"redis_tls": "true", "redis_url": "unix:///tmp/redis.sock"}, "PARLEY_REDIS_TLS"),
        ({"redis_url": "http://127.0.0.1:6379"}, "PARLEY_REDIS_URL"),
        ({"redis_tls": "maybe"}, "PARLEY_REDIS_TLS"),
        ({"cassandra_username": "u"}, "PARLEY_CASSANDRA_PASSWORD"),
        ({"cassandra_password": "p"}, "PARLEY_CASSANDRA_USERNAME"),
        ({"cassandra_tls_ca_file": CA}, "PARLEY_CASSANDRA_TLS_CA_FILE"),
        (
            {"cassandra_tls": "true", "cassandra_tls_ca_file": "/nonexistent"},
            "PARLEY_CASSANDRA_TLS_CA_FILE",
        ),
    ],
)
def test_incomplete_or_contradictory_trust_settings_fail_naming_the_key(env, key):
    with pytest.raises(SettingsError) as error:
        settings(**env)
    assert str(error.value).startswith(key)


def test_redis_options_carry_the_acl_user_and_verified_tls():
    s = settings(redis_username="gw", redis_password="pw", redis_tls="true", redis_tls_ca_file=CA)
    client = redis_client(s.redis_url, options=redis_options(s))
    pool = client.connection_pool
    assert pool.connection_class is SSLConnection  # redis:// URL, TLS from the setting
    kwargs = pool.connection_kwargs
    assert (kwargs["username"], kwargs["password"]) == ("gw", "pw")
    assert kwargs["ssl_ca_certs"] == CA
    assert kwargs["ssl_cert_reqs"] == "required" and kwargs["ssl_check_hostname"] is True


def test_a_rediss_url_alone_turns_tls_on_and_redis_url_stays_plain():
    tls = settings(redis_url="rediss://127.0.0.1:6380/0")
    assert tls.redis_tls_enabled
    assert (
        redis_client(tls.redis_url, options=redis_options(tls)).connection_pool.connection_class
        is SSLConnection
    )
    plain = settings(redis_password="pw")  # AUTH of the default user, no TLS
    pool = redis_client(plain.redis_url, options=redis_options(plain)).connection_pool
    assert pool.connection_class is Connection and pool.connection_kwargs["password"] == "pw"


async def test_kafka_options_give_sasl_and_a_verifying_tls_context():
    s = settings(
        kafka_security_protocol="SASL_SSL",
        kafka_username="gw",
        kafka_password="pw",
        kafka_tls_ca_file=CA,
    )
    options = kafka_options(s)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("gw", "pw")
    context = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    producer = AIOKafkaProducer(**options)  # aiokafka accepts them as they are
    assert producer.client._security_protocol == "SASL_SSL"
    ssl_only = kafka_options(settings(kafka_security_protocol="SSL"))
    assert "ssl_context" in ssl_only and "sasl_mechanism" not in ssl_only


def test_cassandra_cluster_gets_password_auth_and_verified_tls():
    s = settings(
        cassandra_username="gw",
        cassandra_password="pw",
        cassandra_tls="true",
        cassandra_tls_ca_file=CA,
    )
    cluster = make_cluster(s)
    try:
        assert isinstance(cluster.auth_provider, PlainTextAuthProvider)
        assert cluster.auth_provider.new_authenticator("h").initial_response() == b"\x00gw\x00pw"
        assert cluster.ssl_context.verify_mode == ssl.CERT_REQUIRED
        assert cluster.ssl_context.check_hostname
    finally:
        cluster.shutdown()


# --- every engine client of the services goes through the one builder ------------------

SERVICES = ROOT / "services"
KAFKA_CLIENTS = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient"}


def _calls(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            yield name, node


def _splats(call: ast.Call) -> set[str]:
    return {
        ast.unparse(k.value.func)
        for k in call.keywords
        if k.arg is None and isinstance(k.value, ast.Call)
    }


def test_engine_clients_are_built_only_through_the_trust_builders():
    stray = []
    for path in sorted(SERVICES.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for name, call in _calls(path):
            where = f"{rel}:{call.lineno}"
            if (
                name in ("from_url", "Redis", "StrictRedis")
                and rel != "services/common/redis_io.py"
            ):
                stray.append(f"{where}: Redis client outside redis_io.redis_client")
            if name in KAFKA_CLIENTS and "kafka_options" not in _splats(call):
                stray.append(f"{where}: {name} without **kafka_options(settings)")
            if name == "Cluster" and rel != "services/storage/cassandra_io.py":
                stray.append(f"{where}: Cassandra Cluster outside cassandra_io.make_cluster")
            if (
                name == "redis_client"
                and rel not in ("services/common/redis_io.py",)
                and not any(k.arg == "options" for k in call.keywords)
            ):
                stray.append(f"{where}: redis_client without options=redis_options(...)")
    assert stray == []
