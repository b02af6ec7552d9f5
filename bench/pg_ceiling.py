"""How fast can PostgreSQL alone store jobs on this machine? The ceiling under bulk submit.

Bulk submit's target is 100,000 durable jobs/s. This measures the floor of the work that cannot
leave PostgreSQL: rows of the real ``jobs`` table written by binary ``COPY`` (the cheapest way
in; no validation, no Valkey, no results), committed every ``--batch`` rows, with

  * ``shipped``: the schema as migrated (secondary indexes + the outbox trigger's event row);
  * ``no_outbox``: the same without the outbox trigger (what the event row costs);
  * ``pkey_only``: primary key only, no trigger (what the secondary indexes cost).

Each variant gets a freshly migrated database. Reported: rows/s (median of ``--runs``) and the
PostgreSQL CPU per row, read from ``/proc`` for the embedded server's processes (omitted when
``DATABASE_URL`` points elsewhere). Results: ``bench/results/pg_ceiling.{json,md}``.

    python bench/pg_ceiling.py                      # 100,000 rows x 3 runs per variant
    python bench/pg_ceiling.py --rows 2000 --runs 1 --out /tmp/x   # smoke (make test)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import uvloop

sys.path.insert(0, str(Path(__file__).parent))
import report
import stores

from jobline.shared.platform.ids import uuid7_many
from jobline.shared.platform.migrate import migrate

RESULTS = report.RESULTS
COLUMNS = ["id", "seq", "queue_name", "job_type", "payload", "status", "priority", "max_attempts",
           "created_at", "scheduled_for", "updated_at"]
VARIANTS: dict[str, list[str]] = {
    "shipped": [],
    "no_outbox": ["ALTER TABLE jobs DISABLE TRIGGER jobs_inserted_events"],
    "pkey_only": ["ALTER TABLE jobs DISABLE TRIGGER jobs_inserted_events",
                  "DROP TRIGGER jobs_counts_inserted ON jobs",
                  "DROP INDEX jobs_type_id", "DROP INDEX jobs_queue_status_sched",
                  "DROP INDEX jobs_status_id", "DROP INDEX jobs_lease_expiry",
                  "DROP INDEX jobs_batch_status"],
}
_HZ = os.sysconf("SC_CLK_TCK")


def postgres_cpu_s(postmaster: int | None) -> float | None:
    """CPU seconds used so far by one PostgreSQL server: the postmaster, the backends it already
    reaped (the kernel adds them to its cutime/cstime) and its live children.

    Only this server's tree, and reaped backends included: summing every process named
    postgres counted other servers on a shared machine, and lost the time of a backend that
    exited inside the window (the figure could come out negative).
    """
    if postmaster is None:
        return None
    try:
        with open(f"/proc/{postmaster}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total = sum(int(x) for x in fields[11:15]) / _HZ  # utime stime cutime cstime
        for child in psutil.Process(postmaster).children():
            with contextlib.suppress(psutil.NoSuchProcess):
                t = child.cpu_times()
                total += t.user + t.system
    except (OSError, psutil.NoSuchProcess):
        return None
    return total


async def fresh_schema(url: str, ddl: list[str]) -> None:
    c = await asyncpg.connect(url)
    try:
        await c.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    finally:
        await c.close()
    await migrate(url)
    c = await asyncpg.connect(url)
    try:
        for stmt in ddl:
            await c.execute(stmt)
    finally:
        await c.close()


async def copy_rows(url: str, rows: int, batch: int,
                    postmaster: int | None) -> tuple[float, float | None]:
    c = await asyncpg.connect(url)
    # Binary COPY needs a binary jsonb encoder: format version 1, then the JSON text.
    await c.set_type_codec("jsonb", schema="pg_catalog", format="binary",
                           encoder=lambda v: b"\x01" + v.encode(),
                           decoder=lambda b: b[1:].decode())
    try:
        now = datetime.now(UTC)
        cpu0 = postgres_cpu_s(postmaster)
        t0 = time.perf_counter()
        for start in range(0, rows, batch):
            n = min(batch, rows - start)
            ids = uuid7_many(int(now.timestamp() * 1000), n)
            async with c.transaction():
                seqs = await c.fetchval(
                    "SELECT array(SELECT nextval('jobs_seq') FROM generate_series(1, $1))", n)
                await c.copy_records_to_table("jobs", columns=COLUMNS, records=[
                    (ids[k], seqs[k], "bench", "demo.noop", f'{{"i": {start + k}}}', "pending",
                     5, 3, now, now, now) for k in range(n)])
        elapsed = time.perf_counter() - t0
        cpu1 = postgres_cpu_s(postmaster)
        cpu = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) / rows * 1e6
        return rows / elapsed, cpu
    finally:
        await c.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    local = not os.environ.get("DATABASE_URL")
    async with stores.local("jobline-pgceil-", migrated=False) as services:
        url = services.database_url
        postmaster = services.postgres.pid if services.postgres is not None else None
        out: dict[str, Any] = {}
        for name, ddl in VARIANTS.items():
            rates, cpus = [], []
            for _ in range(args.runs):
                await fresh_schema(url, ddl)
                rate, cpu = await copy_rows(url, args.rows, args.batch, postmaster)
                rates.append(rate)
                if cpu is not None and local:
                    cpus.append(cpu)
            out[name] = {"rows_per_s": {"median": statistics.median(rates), "min": min(rates),
                                        "max": max(rates), "runs": rates},
                         "pg_cpu_us_per_row": statistics.median(cpus) if cpus else None}
        c = await asyncpg.connect(url)
        try:
            version = await c.fetchval("SHOW server_version")
        finally:
            await c.close()
        return {"results": out, "settings": {"rows": args.rows, "batch": args.batch,
                                             "runs": args.runs, "durable": True},
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                "versions": {"postgresql": version, "asyncpg": asyncpg.__version__}}


def markdown(report: dict[str, Any], name: str) -> str:
    lines = [f"# {name}", "", f"machine: {report['machine']}", "",
             f"versions: {report['versions']}", "", f"settings: {report['settings']}", "",
             "| variant | rows/s (median) | min | max | PostgreSQL CPU µs/row |",
             "|---|---:|---:|---:|---:|"]
    for variant, r in report["results"].items():
        rate = r["rows_per_s"]
        cpu = r["pg_cpu_us_per_row"]
        lines.append(f"| {variant} | {rate['median']:,.0f} | {rate['min']:,.0f} | "
                     f"{rate['max']:,.0f} | {'' if cpu is None else f'{cpu:.1f}'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=5000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    report.write(uvloop.run(run(args)), "pg_ceiling", args.out, markdown)


if __name__ == "__main__":
    main()
