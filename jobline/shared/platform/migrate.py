"""Versioned SQL migrations: ``migrations/NNNN_name.sql`` applied in order, once each.

Invariant: a migration is applied in one transaction together with its row in
``jobline_migrations``; an applied file whose checksum changed is refused, because the schema in
the database would silently differ from the one in the repository. The one exception is a text
listed in :data:`SUPERSEDED`: an earlier text of a migration that a later migration brings to the
same schema, so a database that applied it ends where a fresh one does.

Supported servers: PostgreSQL 14 through 18 (no migration may use a feature newer than 14).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from jobline.shared.platform.errors import ConfigError

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
#: Months of partitions created ahead of "now" at every migrate (the scheduler keeps extending).
PARTITION_MONTHS_AHEAD = 3
#: Days of job_events partitions created ahead (the relay keeps extending, migration 0011).
EVENT_PARTITION_DAYS_AHEAD = 3

#: version -> sha256 of earlier texts of that migration that are still accepted as applied.
#: Add an entry only together with a later migration that converges such databases, and a test
#: that applies the old text and compares the result with ``schema.sql``
#: (tests/test_migrations.py, test_superseded_0006_converges_to_the_declared_schema).
SUPERSEDED: dict[str, frozenset[str]] = {
    # 0006 as first released set job_events.event_id DEFAULT uuidv7(), a PostgreSQL 18 built-in,
    # so it failed on 14-17; only PostgreSQL 18 databases can have applied it. 0010 converges them.
    "0006": frozenset({"db73fbf36e65b195abc283efefc1babac3db53d97fc593732f25e69c5249f9aa"}),
}


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def accepts(self, applied_checksum: str) -> bool:
        """Whether a database that recorded ``applied_checksum`` for this version may carry on:
        it applied this text, or a superseded one that a later migration converges."""
        return applied_checksum == self.checksum or applied_checksum in SUPERSEDED.get(
            self.version, frozenset())


def available() -> list[Migration]:
    out = []
    for entry in resources.files("jobline.shared.platform.migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            out.append(Migration(m.group(1), entry.name, entry.read_text()))
    return sorted(out, key=lambda mig: mig.version)


async def migrate_conn(conn: asyncpg.Connection) -> list[str]:
    # An advisory lock serialises concurrent migrators (several processes starting at once).
    await conn.execute("SELECT pg_advisory_lock(7261530)")
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS jobline_migrations (
                   version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["version"]: r["checksum"] for r in await conn.fetch(
            "SELECT version, checksum FROM jobline_migrations")}
        applied: list[str] = []
        for mig in available():
            if mig.version in done:
                if not mig.accepts(done[mig.version]):
                    raise ConfigError(f"migration {mig.name} changed after it was applied")
                continue
            async with conn.transaction():
                await conn.execute(mig.sql)
                await conn.execute(
                    "INSERT INTO jobline_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    mig.version, mig.name, mig.checksum)
            applied.append(mig.version)
        await conn.execute(
            "SELECT jobline_ensure_partitions(now() - interval '1 month', $1)",
            PARTITION_MONTHS_AHEAD + 1)
        if await conn.fetchval("SELECT to_regproc('jobline_ensure_event_partitions') IS NOT NULL"):
            await conn.execute(
                "SELECT jobline_ensure_event_partitions(now() - interval '1 day', $1)",
                EVENT_PARTITION_DAYS_AHEAD + 2)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock(7261530)")


async def migrate(dsn: str) -> list[str]:
    """Apply every pending migration to the database at ``dsn``; returns the versions applied."""
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate_conn(conn)
    finally:
        await conn.close()
