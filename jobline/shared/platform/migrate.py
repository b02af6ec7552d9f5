"""Versioned SQL migrations: ``migrations/NNNN_name.sql`` applied in order, once each.

Invariant: a migration is applied in one transaction together with its row in
``jobline_migrations``; an applied file whose checksum changed is refused, because the schema in
the database would silently differ from the one in the repository.
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


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


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
                if done[mig.version] != mig.checksum:
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
