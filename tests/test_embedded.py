"""The test fixtures really provide isolated PostgreSQL databases and a usable Valkey."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
import redis
import redis.asyncio as aioredis

from jobline.embedded import EmbeddedPostgres, EmbeddedValkey
from jobline.shared.platform.config import Settings

_seen_databases: list[str] = []


async def _marker_test(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT 1") == 1
        name = await conn.fetchval("SELECT current_database()")
        # Cloned from the migrated template, and no other test's leftovers.
        assert await conn.fetchval("SELECT count(*) FROM jobline_migrations") >= 1
        assert await conn.fetchval("SELECT to_regclass('isolation_marker')") is None
        await conn.execute("CREATE TABLE isolation_marker (x int)")
    finally:
        await conn.close()
    assert name not in _seen_databases
    _seen_databases.append(name)


async def test_first_database_is_usable(database_url: str) -> None:
    await _marker_test(database_url)


async def test_second_database_is_distinct(database_url: str) -> None:
    await _marker_test(database_url)


async def test_valkey_set_get_noeviction(redis_url: str, redis_prefix: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.set(f"{redis_prefix}:k", "v")
        assert await client.get(f"{redis_prefix}:k") == b"v"
        policy = await client.config_get("maxmemory-policy")
        assert policy["maxmemory-policy"] == "noeviction"
    finally:
        await client.aclose()


def test_settings_fixture(settings: Settings, tmp_path: Path) -> None:
    assert settings.database_url is not None and "/t_" in settings.database_url
    assert settings.redis_prefix.startswith("t")
    assert settings.home == tmp_path


def test_valkey_restart_wipe_loses_data(tmp_path: Path) -> None:
    with EmbeddedValkey(tmp_path / "vk", persist=True) as valkey:
        url = valkey.url
        client = redis.Redis.from_url(url)
        try:
            client.set("durable", "1")
            valkey.restart()
            assert valkey.url == url
            assert client.get("durable") == b"1", "AOF should survive a clean restart"
            valkey.restart(wipe=True)
            assert valkey.url == url
            assert client.get("durable") is None, "wipe must simulate total Redis data loss"
        finally:
            client.close()
    assert valkey.pid is None


def test_session_valkey_is_in_memory(services: object) -> None:
    valkey = getattr(services, "valkey", None)
    if valkey is None:
        pytest.skip("external REDIS_URL")
    assert isinstance(valkey, EmbeddedValkey) and not valkey.persist
    assert valkey.pid is not None


def test_session_postgres_is_fast_mode(services: object) -> None:
    postgres = getattr(services, "postgres", None)
    if postgres is None:
        pytest.skip("external DATABASE_URL")
    assert isinstance(postgres, EmbeddedPostgres)
    assert postgres.psql("SHOW fsync") == "off"
    assert postgres.psql("SHOW max_connections") == "300"
