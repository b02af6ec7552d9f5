"""The test fixtures really provide isolated PostgreSQL databases and a usable Valkey."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import asyncpg
import psutil
import pytest
import redis
import redis.asyncio as aioredis

from jobline.local import EmbeddedKafka, EmbeddedPostgres, EmbeddedValkey
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


def test_valkey_left_running_is_adopted_and_stopped_by_a_new_owner(tmp_path: Path) -> None:
    # What a crashed `make run` leaves: a live server, its pid file and its port file.
    first = EmbeddedValkey(tmp_path / "vk", persist=False)
    url = first.start()
    pid = first.pid
    second = EmbeddedValkey(tmp_path / "vk", persist=False)
    try:
        assert second.start() == url
        assert second.pid == pid
    finally:
        second.stop()
    assert second.pid is None
    # The server is this process's child (first launched it): stop() only waits until it is no
    # longer a live valkey, so reap it here, within a deadline, before first's handle is checked.
    assert first._proc is not None
    first._proc.wait(timeout=30)
    assert first.pid is None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_valkey_stale_pid_file_is_not_adopted(tmp_path: Path) -> None:
    data = tmp_path / "vk"
    data.mkdir()
    (data / "valkey.pid").write_text(f"{os.getpid()}\n")  # alive, but not a valkey
    with EmbeddedValkey(data, persist=False) as valkey:
        assert valkey.pid not in (None, os.getpid())
        client = redis.Redis.from_url(valkey.url)
        try:
            assert client.ping()
        finally:
            client.close()


def test_kafka_broker_starts_answers_and_stops(tmp_path: Path) -> None:
    with EmbeddedKafka(tmp_path / "tansu.log") as broker:
        host, port = broker.start().split(":")  # already running: the same address
        with socket.create_connection((host, int(port)), timeout=5):
            pass
        pid = broker.pid
        assert pid is not None
    assert broker.pid is None
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
