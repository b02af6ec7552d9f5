"""Jobline supports PostgreSQL 14 through 18.

``make test`` runs this file (with the migration and core suites) on the embedded PostgreSQL 18
and on Debian's PostgreSQL 15 (``--pg-bin``, tests/conftest.py). There the prepare test checks
every SQL statement Jobline declares, including those no behaviour test happens to reach. No
PostgreSQL 14 is packaged for this machine, so the feature scan keeps out what 14 lacks.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

import asyncpg

import jobline
from jobline.shared.platform import migrate as migrate_mod

_SQL_START = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|WITH)\s")

#: Syntax and functions PostgreSQL 14 does not have, with the version that added them.
NEWER_THAN_14: dict[str, str] = {
    r"\buuidv[47]\s*\(": "18 (uuidv7/uuidv4; use jobline_uuid7() or ids.py)",
    r"\buuid_extract_(timestamp|version)\s*\(": "17",
    r"\bRETURNING\s+WITH\s*\(|\bRETURNING\b[^;]*?\b(old|new)\.\w": "18 (RETURNING old/new)",
    r"\bVIRTUAL\b": "18 (virtual generated columns)",
    r"\bWITHOUT\s+OVERLAPS\b": "18",
    r"\bJSON_(TABLE|EXISTS|QUERY|VALUE|SERIALIZE|SCALAR)\s*\(": "17",
    # JSON_OBJECT( is left out: json_object(text[]) has existed since 9.4
    r"\bJSON_(ARRAY|OBJECTAGG|ARRAYAGG)\s*\(": "16 (SQL/JSON constructors)",
    r"\bIS\s+(NOT\s+)?JSON\b": "16",
    r"\bany_value\s*\(": "16",
    r"\b(random_normal|array_sample|array_shuffle|date_add|date_subtract|pg_input_is_valid)\s*\(": "16",
    r"\bregexp_(count|instr|like|substr)\s*\(": "15",
    r"\bsecurity_invoker\b": "15",
    r"\bSYSTEM_USER\b": "16",
    r"\bMERGE\s+INTO\b": "15",
    r"\bNULLS\s+NOT\s+DISTINCT\b": "15",
    r"\bSTRATEGY\b": "15 (CREATE DATABASE ... STRATEGY)",
}


def _without_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


def declared_statements() -> dict[str, str]:
    """Every module-level SQL statement in the ``jobline`` package, by ``module.NAME``.

    Statements built inside functions (dynamic filters) are not here; the behaviour suites
    reach those.
    """
    found: dict[str, str] = {}
    seen: set[int] = set()
    for info in pkgutil.walk_packages(jobline.__path__, "jobline."):
        if info.name == "jobline.__main__":  # runs the CLI when imported
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, str) and _SQL_START.match(value) and id(value) not in seen:
                seen.add(id(value))  # imported names are the same object as the original
                found[f"{info.name}.{name}"] = value
    return found


def test_migrations_and_statements_use_nothing_newer_than_postgresql_14() -> None:
    texts = {m.name: m.sql for m in migrate_mod.available()} | declared_statements()
    hits = [
        f"{where}: {pattern!r} needs PostgreSQL {version}"
        for where, text in texts.items()
        for pattern, version in NEWER_THAN_14.items()
        if re.search(pattern, _without_comments(text), re.IGNORECASE)
    ]
    assert hits == []


def test_the_feature_scan_finds_what_it_looks_for() -> None:
    # Guards the scan itself: each pattern must match the feature it names.
    samples = [
        "INSERT INTO t DEFAULT VALUES RETURNING old.id, new.id",
        "CREATE TABLE t (a uuid DEFAULT uuidv7())",
        "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
        "CREATE UNIQUE INDEX i ON t (a) NULLS NOT DISTINCT",
        "SELECT any_value(a) FROM t",
        "CREATE DATABASE d TEMPLATE t STRATEGY wal_log",
    ]
    for sample in samples:
        assert any(re.search(p, sample, re.IGNORECASE) for p in NEWER_THAN_14), sample
    quiet = [
        "SELECT jobline_uuid7()",
        "UPDATE jobs SET x = 1 RETURNING id, queue_name",
        "-- MERGE INTO would need 15\nSELECT 1",
    ]
    for sample in quiet:
        assert not any(
            re.search(p, _without_comments(sample), re.IGNORECASE) for p in NEWER_THAN_14
        ), sample


async def test_every_declared_statement_prepares_on_this_server(database_url: str) -> None:
    """Parse and plan (PREPARE, nothing runs) every statement against the migrated schema of
    the server under test: a syntax or a function the server lacks fails here."""
    statements = declared_statements()
    # The scan must not quietly find nothing (a renamed package, a changed convention).
    assert len(statements) >= 50, sorted(statements)
    conn = await asyncpg.connect(database_url)
    failures: list[str] = []
    try:
        version = await conn.fetchval("SHOW server_version")
        for where, sql in statements.items():
            try:
                async with conn.transaction():
                    await conn.prepare(sql)
            except asyncpg.PostgresError as exc:
                failures.append(f"{where}: {type(exc).__name__}: {exc}")
    finally:
        await conn.close()
    assert failures == [], f"on PostgreSQL {version}:\n" + "\n".join(failures)
