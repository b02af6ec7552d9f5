"""Migrations: applying all of them yields exactly the declared schema (``schema.sql``), a second
run applies nothing, and an edited applied migration is refused, except a superseded text whose
database a later migration converges.

``make test`` runs this file on the embedded PostgreSQL 18 and on Debian's PostgreSQL 15
(``--pg-bin``, tests/conftest.py): Jobline supports PostgreSQL 14-18. ``schema.sql`` is the
PostgreSQL 18 dump; the comparison ignores the one spelling that differs between server versions.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from jobline.local import pg_bin_dir
from jobline.shared.platform import ids
from jobline.shared.platform import migrate as migrate_mod
from jobline.shared.platform.errors import ConfigError

SCHEMA = Path(__file__).parent.parent / "jobline" / "shared" / "platform" / "schema.sql"
# Monthly partitions depend on today's date; the declared schema covers everything else.
_PARTITION = re.compile(r"^((jobs|job_attempts)_p\d{6}|job_events_p\d{8})$")
#: The first text of 0006, which called PostgreSQL 18's built-in uuidv7() (see SUPERSEDED).
OLD_0006 = Path(__file__).parent / "data" / "0006_events_pg18_only.sql"


def dump_schema(dsn: str) -> str:
    u = urlsplit(dsn)
    out = subprocess.run(
        [str(pg_bin_dir() / "pg_dump"), "--schema-only", "--no-owner", "--no-privileges",
         "-h", u.hostname or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres",
         "-T", "jobs_p[0-9]*", "-T", "job_attempts_p[0-9]*",
         "-T", "job_events_p[0-9]*", "-T", "jobline_migrations",
         (u.path or "/postgres").lstrip("/")],
        check=True, capture_output=True, text=True).stdout
    keep = [line for line in out.splitlines()
            if line.strip() and not line.startswith(("--", "SET ", "SELECT pg_catalog.set_config",
                                                     "\\restrict", "\\unrestrict"))]
    return "\n".join(keep) + "\n"


#: ``ALTER TABLE ONLY t ALTER COLUMN c SET (options);`` as pg_dump writes a column's options.
_COLUMN_OPTIONS = re.compile(r"^(ALTER TABLE ONLY \S+ ALTER COLUMN \S+ SET )\((.*)\);$")


def version_neutral(dump: str) -> str:
    """``dump`` without what differs between PostgreSQL versions and not between schemas:
    - the names PostgreSQL 18 gives the NOT NULL constraints of partitioned tables and their
      partitions (``col type CONSTRAINT parent_col_not_null NOT NULL``); 14-17 dump a bare
      ``NOT NULL``. Only a default-style name (ending in ``_<column>_not_null``) is dropped,
      so a deliberately named constraint still counts.
    - the ``pg_attver=<n>`` column option that Debian's PostgreSQL 15.20 sets on every column
      by itself (a number per column and database, so no two dumps agree), which its pg_dump
      writes as ``ALTER COLUMN ... SET (pg_attver=<n>)`` for some columns. Other column
      options still count."""
    out: list[str] = []
    for line in dump.splitlines():
        if line.startswith("    ") and " NOT NULL" in line:
            column = re.escape(line.split()[0])
            line = re.sub(rf" CONSTRAINT \w+_{column}_not_null NOT NULL", " NOT NULL", line)
        if m := _COLUMN_OPTIONS.match(line):
            options = [o for o in m[2].split(", ") if not o.startswith("pg_attver=")]
            if not options:
                continue
            line = f"{m[1]}({', '.join(options)});"
        out.append(line)
    return "\n".join(out) + "\n"


def assert_declared_schema(dsn: str) -> None:
    actual = dump_schema(dsn)
    if os.environ.get("JOBLINE_UPDATE_SCHEMA") == "1":
        SCHEMA.write_text(actual)
    assert version_neutral(actual) == version_neutral(SCHEMA.read_text()), (
        "schema drifted from jobline/shared/platform/schema.sql; if intended, rerun "
        "tests/test_migrations.py with JOBLINE_UPDATE_SCHEMA=1 (on the embedded PostgreSQL 18, "
        "no --pg-bin) and commit the file")


def test_version_neutral_drops_only_the_automatic_column_option() -> None:
    dump = ("ALTER TABLE ONLY public.t ALTER COLUMN a SET (pg_attver=32431032);\n"
            "ALTER TABLE ONLY public.t ALTER COLUMN b SET (n_distinct=5, pg_attver=7);\n"
            "ALTER TABLE ONLY public.t ALTER COLUMN c SET (n_distinct=-1);\n")
    assert version_neutral(dump) == (
        "ALTER TABLE ONLY public.t ALTER COLUMN b SET (n_distinct=5);\n"
        "ALTER TABLE ONLY public.t ALTER COLUMN c SET (n_distinct=-1);\n")


async def test_migrations_yield_the_declared_schema(database_url: str) -> None:
    # database_url is cloned from a template that ran every migration
    assert_declared_schema(database_url)


async def test_superseded_0006_converges_to_the_declared_schema(
        empty_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PostgreSQL 18 database that applied the first 0006 (DEFAULT uuidv7()) keeps migrating
    and ends with the schema of a fresh install; on an older server a stand-in uuidv7() plays
    the built-in, and dropping it afterwards proves nothing depends on it any more."""
    current = migrate_mod.available()
    old = migrate_mod.Migration("0006", "0006_events.sql", OLD_0006.read_text())
    assert old.checksum in migrate_mod.SUPERSEDED["0006"]
    assert old.checksum != next(m for m in current if m.version == "0006").checksum
    conn = await asyncpg.connect(empty_database)
    try:
        before_18 = int(await conn.fetchval("SHOW server_version_num")) < 180000
        if before_18:
            await conn.execute(
                "CREATE FUNCTION uuidv7() RETURNS uuid LANGUAGE sql AS 'SELECT gen_random_uuid()'")
        # an install as of 0009 that applied the old 0006
        monkeypatch.setattr(migrate_mod, "available", lambda: [
            old if m.version == "0006" else m for m in current if m.version <= "0009"])
        await migrate_mod.migrate(empty_database)
        assert await conn.fetchval(
            "SELECT checksum FROM jobline_migrations WHERE version = '0006'") == old.checksum
        assert "uuidv7()" in await conn.fetchval(
            "SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN pg_attribute a "
            "ON a.attrelid = d.adrelid AND a.attnum = d.adnum "
            "WHERE d.adrelid = 'job_events'::regclass AND a.attname = 'event_id'")
        # upgrade to this release
        monkeypatch.setattr(migrate_mod, "available", lambda: current)
        assert [v for v in await migrate_mod.migrate(empty_database)] == [
            m.version for m in current if m.version > "0009"]
        if before_18:
            await conn.execute("DROP FUNCTION uuidv7()")  # fails if the default still uses it
        event_id = await conn.fetchval(
            "INSERT INTO job_events (type, occurred_at) VALUES ('t', now()) RETURNING event_id")
        assert event_id.version == 7
    finally:
        await conn.close()
    assert_declared_schema(empty_database)


async def test_fresh_migrate_on_an_empty_database_applies_every_migration(
        empty_database: str) -> None:
    # The template (and so every test database) went the same way; this one is observed directly.
    assert await migrate_mod.migrate(empty_database) == [m.version for m in migrate_mod.available()]
    assert_declared_schema(empty_database)


async def test_event_ids_are_uuid7s_in_the_layout_of_ids_py(database_url: str) -> None:
    """Time first (so ids sort by their millisecond), version 7, variant 10, random bits unique."""
    conn = await asyncpg.connect(database_url)
    try:
        before_ms = time.time_ns() // 1_000_000
        rows = await conn.fetch(
            "INSERT INTO job_events (type, occurred_at) SELECT 't', now() FROM generate_series(1, 500)"
            " RETURNING event_id")
        after_ms = time.time_ns() // 1_000_000
        generated: list[uuid.UUID] = [r["event_id"] for r in rows]
    finally:
        await conn.close()
    assert len(set(generated)) == len(generated)
    for value in generated:
        assert value.version == 7 and value.variant == uuid.RFC_4122
        # the server's clock and ours are the same machine's; allow for rounding at the edges
        assert before_ms - 1 <= ids.uuid7_ms(value) <= after_ms + 1
        assert ids.uuid7_floor(ids.uuid7_ms(value)) <= value


async def test_second_migrate_applies_nothing_and_checksums_are_enforced(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert await migrate_mod.migrate(database_url) == []
    conn = await asyncpg.connect(database_url)
    try:
        versions = [r["version"] for r in await conn.fetch(
            "SELECT version FROM jobline_migrations ORDER BY version")]
        assert versions == [m.version for m in migrate_mod.available()]
        parts = [r["relname"] for r in await conn.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'jobs'")]
        assert "jobs_default" in parts and sum(bool(_PARTITION.match(p)) for p in parts) >= 4
    finally:
        await conn.close()
    edited = [migrate_mod.Migration(m.version, m.name, m.sql + "\n-- edited\n")
              for m in migrate_mod.available()]
    monkeypatch.setattr(migrate_mod, "available", lambda: edited)
    with pytest.raises(ConfigError, match="changed after it was applied"):
        await migrate_mod.migrate(database_url)


async def test_0011_moves_the_outbox_and_audit_rows_and_keeps_what_was_published(
        empty_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An install as of 0010 with published and unpublished outbox rows, audit rows (one whose
    outbox row was already pruned) and receipts: after 0011 the outbox holds every event once,
    the relay's cursor stops before the first unpublished row, and the analytics group's
    watermark covers what it had receipts for."""
    current = migrate_mod.available()
    monkeypatch.setattr(migrate_mod, "available",
                        lambda: [m for m in current if m.version <= "0010"])
    await migrate_mod.migrate(empty_database)
    conn = await asyncpg.connect(empty_database)
    try:
        ids = [uuid.uuid4() for _ in range(4)]
        await conn.execute(
            """INSERT INTO job_events (seq, event_id, type, occurred_at, queue_name, published_at)
               OVERRIDING SYSTEM VALUE VALUES
                 (10, $1, 'jobs.submitted', now(), 'q', now()),
                 (11, $2, 'jobs.started', now(), 'q', now()),
                 (12, $3, 'jobs.completed', now(), 'q', NULL)""", *ids[:3])
        await conn.execute(
            """INSERT INTO audit_events (occurred_at, event_id, type, queue_name, envelope,
                                         recorded_at)
               VALUES (now() - interval '3 days', $1, 'jobs.failed', 'q',
                       jsonb_build_object('seq', 5, 'jobType', 't', 'attempt', 2,
                                          'error', 'boom', 'data', '{}'::jsonb), now()),
                      (now(), $2, 'jobs.submitted', 'q', '{"seq": 10}', now())""",
            ids[3], ids[0])
        await conn.execute(
            "INSERT INTO event_receipts VALUES ('analytics', $1, now()), ('analytics', $2, now()),"
            " ('audit', $3, now())", ids[0], ids[1], ids[2])
        monkeypatch.setattr(migrate_mod, "available", lambda: current)
        assert "0011" in await migrate_mod.migrate(empty_database)
        rows = await conn.fetch("SELECT seq, event_id, job_type, attempt, error FROM job_events "
                                "ORDER BY seq")
        assert [(r["seq"], r["event_id"]) for r in rows] == [
            (5, ids[3]), (10, ids[0]), (11, ids[1]), (12, ids[2])]
        assert (rows[0]["job_type"], rows[0]["attempt"], rows[0]["error"]) == ("t", 2, "boom")
        assert await conn.fetchval("SELECT published_through FROM event_relay_state") == 11
        assert await conn.fetchval(
            "SELECT seq FROM consumer_watermarks WHERE consumer = 'analytics' AND part = ''") == 11
        assert await conn.fetchval("SELECT nextval('job_events_seq')") == 13
    finally:
        await conn.close()
    assert_declared_schema(empty_database)


async def test_live_state_reads_still_use_the_queue_status_index(database_url: str) -> None:
    """0031 narrowed ``jobs_queue_status_sched`` to jobs not completed or cancelled. The reads it
    exists for name a live status, which implies that predicate: their plans must still probe it
    (with a seq scan ruled out, the other candidate is ``(status, id)``, which cannot seek the
    queue). And a finished job must have no entry in it."""
    from jobline.analytics.alerting.metrics import OLDEST_PENDING as ALERT_OLDEST
    from jobline.shared.core import sql
    from jobline.shared.fleet.scaler import OLDEST_READY
    from jobline.shared.observe.monitoring import OLDEST_PENDING

    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO jobs (id, queue_name, job_type, payload, status, scheduled_for,"
            "                  created_at, updated_at)"
            " SELECT jobline_uuid7(), 'q' || (g % 5), 't', '{}',"
            "  (ARRAY['pending','scheduled','waiting','completed','completed','completed',"
            "         'dead_letter','cancelled'])[1 + g % 8], now(), now(), now()"
            " FROM generate_series(1, 4000) g")
        await conn.execute("ANALYZE jobs")
        await conn.execute("SET enable_seqscan = off")
        reads: list[tuple[str, tuple[object, ...]]] = [
            (OLDEST_PENDING, (["q1", "q2"],)), (ALERT_OLDEST, (["q1"],)),
            (OLDEST_READY, (["q1", "q3"],)),
            (sql.PURGE_CANDIDATES, ("q1", uuid.UUID(int=(1 << 128) - 1), 100)),
            ("SELECT count(*) FROM jobs WHERE queue_name = $1 AND status = 'dead_letter'",
             ("q2",))]
        for query, args in reads:
            plan = await conn.fetchval("EXPLAIN (FORMAT JSON) " + query, *args)
            used = re.findall(r'"Index Name": "([^"]+)"', str(plan))
            assert any("queue_name_status_scheduled_for" in n for n in used), (query, used)
        # VACUUM counts each index's entries (reltuples): 4 of the 8 statuses are live
        await conn.execute("RESET enable_seqscan")
        await conn.execute("VACUUM jobs")
        counts = await conn.fetch(
            "SELECT c.relname, c.reltuples FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_class t ON t.oid = i.indrelid WHERE t.relname LIKE 'jobs%'"
            " AND c.relkind = 'i' AND c.reltuples > 0")
        by_kind = {k: sum(r["reltuples"] for r in counts if k in r["relname"])
                   for k in ("queue_name_status_scheduled_for", "status_id")}
        assert by_kind == {"queue_name_status_scheduled_for": 2000, "status_id": 4000}, counts
    finally:
        await conn.close()
