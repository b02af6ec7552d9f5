"""Migrations: applying all of them yields exactly the declared schema (``schema.sql``), a second
run applies nothing, and an edited applied migration is refused."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from jobline.embedded import pg_bin_dir
from jobline.shared.platform import migrate as migrate_mod
from jobline.shared.platform.errors import ConfigError

SCHEMA = Path(__file__).parent.parent / "jobline" / "shared" / "platform" / "schema.sql"
# Monthly partitions depend on today's date; the declared schema covers everything else.
_PARTITION = re.compile(r"^(jobs|job_attempts)_p\d{6}$")


def dump_schema(dsn: str) -> str:
    u = urlsplit(dsn)
    out = subprocess.run(
        [str(pg_bin_dir() / "pg_dump"), "--schema-only", "--no-owner", "--no-privileges",
         "-h", u.hostname or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres",
         "-T", "jobs_p[0-9]*", "-T", "job_attempts_p[0-9]*", "-T", "jobline_migrations",
         (u.path or "/postgres").lstrip("/")],
        check=True, capture_output=True, text=True).stdout
    keep = [line for line in out.splitlines()
            if line.strip() and not line.startswith(("--", "SET ", "SELECT pg_catalog.set_config",
                                                     "\\restrict", "\\unrestrict"))]
    return "\n".join(keep) + "\n"


async def test_migrations_yield_the_declared_schema(database_url: str) -> None:
    # database_url is cloned from a template that ran every migration
    actual = dump_schema(database_url)
    if os.environ.get("JOBLINE_UPDATE_SCHEMA") == "1":
        SCHEMA.write_text(actual)
    assert actual == SCHEMA.read_text(), (
        "schema drifted from jobline/shared/platform/schema.sql; if intended, rerun this test with "
        "JOBLINE_UPDATE_SCHEMA=1 and commit the file")


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
