"""``PARLEY_REDIS_CLUSTER``: validated like the other Redis settings, and turned by
``redis_io`` into a ``RedisCluster`` with the same ACL/TLS options (no server needed)."""

from __future__ import annotations

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import SSLConnection

from services.common.redis_io import node_client, redis_client, redis_options
from services.common.settings import Settings, SettingsError
from services.storage.presence_redis import CLUSTER_SHARDS, RedisPresenceStore, shard_of


def settings(**env: str) -> Settings:
    return Settings.from_env({"PARLEY_MODE": "cluster", **env})


def test_off_by_default_and_a_plain_client():
    s = settings()
    assert s.redis_cluster is False and "cluster" not in redis_options(s)
    assert not isinstance(redis_client(s.redis_url, options=redis_options(s)), RedisCluster)


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("unix:///run/redis.sock", "PARLEY_REDIS_CLUSTER"),
        ("redis://127.0.0.1:7000/2", "PARLEY_REDIS_URL"),
        ("rediss://127.0.0.1:7000/1?x=1", "PARLEY_REDIS_URL"),
    ],
)
def test_a_url_a_cluster_cannot_serve_fails_naming_the_key(url, key):
    with pytest.raises(SettingsError) as error:
        settings(PARLEY_REDIS_CLUSTER="true", PARLEY_REDIS_URL=url)
    assert str(error.value).startswith(key)


def test_a_seed_url_gives_a_cluster_client_with_the_acl_user_and_verified_tls(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not parsed here")
    s = settings(
        PARLEY_REDIS_CLUSTER="true",
        PARLEY_REDIS_URL="rediss://10.0.0.5:7000/0",
        PARLEY_REDIS_USERNAME="parley",
        PARLEY_REDIS_PASSWORD="s3cret",
        PARLEY_REDIS_TLS_CA_FILE=str(ca),
    )
    client = redis_client(s.redis_url, options=redis_options(s))
    assert isinstance(client, RedisCluster)
    kwargs = client.connection_kwargs
    assert kwargs["connection_class"] is SSLConnection
    assert kwargs["username"] == "parley" and kwargs["password"] == "s3cret"
    assert kwargs["ssl_cert_reqs"] == "required" and kwargs["ssl_check_hostname"] is True
    assert kwargs["ssl_ca_certs"] == str(ca)
    assert "s3cret" not in repr(s)
    # the per-node pub/sub connections of the fan-out get the same options
    node = node_client("10.0.0.6", 7001, options=redis_options(s))
    pool = node.connection_pool
    assert pool.connection_kwargs["username"] == "parley"
    assert pool.connection_kwargs["ssl_ca_certs"] == str(ca)
    assert pool.connection_class is SSLConnection


def test_presence_is_one_shard_on_a_single_redis_and_sharded_by_user_on_a_cluster():
    single = RedisPresenceStore("redis://x", "p:", "p:socketio")
    assert single.shards == 1 and single.prefix_of("alice") == "p:{presence}:"  # unchanged
    sharded = RedisPresenceStore("redis://x", "p:", "p:socketio", redis_options={"cluster": True})
    assert sharded.shards == CLUSTER_SHARDS
    users = [f"user{n}" for n in range(500)]
    used = {shard_of(u, CLUSTER_SHARDS) for u in users}
    assert len(used) == CLUSTER_SHARDS  # every shard gets users
    assert sharded.prefix_of("alice") == f"p:{{presence:{shard_of('alice', CLUSTER_SHARDS)}}}:"
    assert shard_of("alice", CLUSTER_SHARDS) == shard_of("alice", CLUSTER_SHARDS)
