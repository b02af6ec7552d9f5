"""Analytics at scale (issue 16): the seed's time and disk, and the baseline to beat.

- Seed: ``jobline.analytics.seed.seed`` of ``--jobs`` jobs over ``--days`` days into a fresh
  embedded store (/dev/shm, removed afterwards): wall time per step, jobs/s and rows/s, and
  ``pg_total_relation_size`` per table (heap + indexes + TOAST, partitions summed).
- Endpoints: :func:`measure_endpoints`, the analytics API's p50/p95 per endpoint on the seeded
  store (30-day and 24-hour ranges, with and without filters), timed before the baseline.
- Baseline (``--no-matview`` skips it): the seed document's own ``analytics_daily_jobs``
  materialized view (docs/analytics.md): time of ``CREATE MATERIALIZED VIEW``, of its unique
  index and of ``REFRESH MATERIALIZED VIEW CONCURRENTLY``, and its size.

    python bench/analytics.py --jobs 1M           # writes bench/results/analytics.{json,md}
    python bench/analytics.py --jobs 10k --out D  # smoke

The seed includes its rollups step (the rebuild from the raw rows), timed in ``steps_s``.
The other measurements of issue 16: ``bench/analytics_accuracy.py`` (percentile error against
exact values from the raw rows), ``bench/rollup_fold.py`` (the live fold at 10,000 events/s),
``bench/analytics_api.py`` (endpoint latency on a 100M-shaped rollup store).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import asyncpg
import stores

from jobline.analytics.seed import parse_count, seed
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect

RESULTS = Path(__file__).parent / "results"

#: The seed document's view (shared/mission/seed.md, "Materialized views for fast analytics"),
#: with the unique index REFRESH ... CONCURRENTLY requires.
MATVIEW = """
CREATE MATERIALIZED VIEW analytics_daily_jobs AS
SELECT
  DATE(created_at) as date,
  queue_name,
  job_type,
  status,
  COUNT(*) as count,
  AVG(EXTRACT(EPOCH FROM (completed_at - started_at))) as avg_duration,
  PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM (completed_at - started_at))) as p95_duration
FROM jobs
WHERE created_at > NOW() - INTERVAL '90 days'
GROUP BY DATE(created_at), queue_name, job_type, status
"""
MATVIEW_INDEX = ("CREATE UNIQUE INDEX analytics_daily_jobs_key ON analytics_daily_jobs "
                 "(date, queue_name, job_type, status)")
MATVIEW_REFRESH = "REFRESH MATERIALIZED VIEW CONCURRENTLY analytics_daily_jobs"

TABLES = ("jobs", "job_attempts", "job_dependencies", "job_batches", "analytics_samples",
          "analytics_samples_hour", "labelled_incidents")


async def table_bytes(conn: asyncpg.Connection) -> dict[str, int]:
    """Total size (heap, indexes, TOAST) per table, a partitioned table's partitions summed."""
    out = {}
    for t in TABLES:
        out[t] = int(await conn.fetchval("""
            SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)
              FROM pg_class c
             WHERE c.oid = $1::regclass
                OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = $1::regclass)""",
            t))
    return out


async def measure_matview(conn: asyncpg.Connection) -> dict[str, float]:
    """The baseline: create, index and refresh (concurrently) the seed's view."""
    await conn.execute("DROP MATERIALIZED VIEW IF EXISTS analytics_daily_jobs")
    await conn.execute("SET max_parallel_workers_per_gather = 2")
    t = time.perf_counter()
    await conn.execute(MATVIEW)
    create = time.perf_counter() - t
    t = time.perf_counter()
    await conn.execute(MATVIEW_INDEX)
    index = time.perf_counter() - t
    t = time.perf_counter()
    await conn.execute(MATVIEW_REFRESH)
    refresh = time.perf_counter() - t
    rows = await conn.fetchval("SELECT count(*) FROM analytics_daily_jobs")
    size = await conn.fetchval("SELECT pg_total_relation_size('analytics_daily_jobs')")
    await conn.execute("DROP MATERIALIZED VIEW analytics_daily_jobs")
    return {"create_s": create, "index_s": index, "refresh_concurrently_s": refresh,
            "rows": float(rows), "bytes": float(size)}


async def measure_endpoints(deps: Deps, from_ms: int, to_ms: int,
                            calls: int = 10) -> list[dict[str, Any]]:
    """p50/p95 of every analytics endpoint on the seeded store, in-process (the REST app over
    httpx's ASGI transport: routing, auth, validation, SQL and JSON, no network hop), for a
    30-day and a 24-hour range, unfiltered, by queue and by queue + job type
    (``analytics_api.time_all``, the same cells as ``bench/analytics_api.py``)."""
    import analytics_api

    from jobline.api.app import create_app
    from jobline.testing import serve_app

    dag = await deps.pool.fetchval("SELECT job_id FROM job_dependencies LIMIT 1")
    out: list[dict[str, Any]] = []
    async for client in serve_app(create_app(deps.settings, deps=deps), role="admin"):
        out = await analytics_api.time_all(client, to_ms, calls,
                                           str(dag) if dag is not None else None)
    return out


#: The seeded partitions: what autovacuum takes on after the seed.
_PARTITIONS = r"^(jobs|job_attempts)_p\d{6}$"


async def settled(conn: asyncpg.Connection, deadline_s: float = 5_400.0,
                  poll_s: float = 10.0) -> float:
    """Wait until no jobs/job_attempts partition is due for autovacuum's insert-triggered
    vacuum (more rows inserted since its last vacuum than the threshold) and none is being
    vacuumed; return the seconds waited (the deadline's if it passed)."""
    t = time.perf_counter()
    while time.perf_counter() - t < deadline_s:
        pending = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
            "WHERE s.relname ~ $1 AND (s.n_ins_since_vacuum > "
            "current_setting('autovacuum_vacuum_insert_threshold')::float8 "
            "+ current_setting('autovacuum_vacuum_insert_scale_factor')::float8 "
            "* greatest(c.reltuples, 0) "
            "OR EXISTS (SELECT 1 FROM pg_stat_progress_vacuum v WHERE v.relid = s.relid))",
            _PARTITIONS)
        if not pending:
            break
        await asyncio.sleep(poll_s)  # a bench waiting on the server's background work
    return time.perf_counter() - t


def _say(msg: str) -> None:
    """Progress on stderr as it happens: a 100M run takes over an hour, and its steps were
    otherwise known only at the end (or read off ``pg_stat_activity``)."""
    import sys
    print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


async def run(jobs: int, days: int, seed_value: int, base_dir: str | None,
              forecasts: bool = False, checkpoint: Path | None = None,
              matview: bool = True, settle: bool = True) -> dict[str, Any]:
    """Seed, then measure; with ``checkpoint``, the results so far are written there after
    every phase, so a phase that fails (or a run stopped for time) keeps the earlier ones."""
    r: dict[str, Any] = {"days": days, "seed": seed_value, "matview": None, "endpoints": [],
                         "forecasts": None,
                         "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}

    def save() -> None:
        if checkpoint is not None:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            checkpoint.write_text(json.dumps(r, indent=2, default=str) + "\n")

    async with stores.local("analytics", external=False, base_dir=base_dir) as svc:
        settings = Settings().with_(database_url=svc.database_url, redis_url=svc.redis_url,
                                    redis_prefix="bench")
        deps = await connect(settings)
        try:
            t = time.perf_counter()
            rep = await seed(deps, jobs=jobs, days=days, seed_value=seed_value, progress=_say)
            wall = time.perf_counter() - t
            r.update({"jobs": rep.jobs, "attempts": rep.attempts, "seed_s": wall,
                      "steps_s": rep.seconds, "jobs_per_s": rep.jobs / wall,
                      "rows_per_s": (rep.jobs + rep.attempts) / wall,
                      "rollups": rep.rollups})
            _say(f"seeded in {wall:.0f} s: {rep.seconds}")
            conn = await asyncpg.connect(svc.database_url)
            try:
                r["table_bytes"] = await table_bytes(conn)
                r["database_bytes"] = int(
                    await conn.fetchval("SELECT pg_database_size(current_database())"))
                r["bytes_per_job"] = sum(r["table_bytes"].values()) / max(1, rep.jobs)
                save()
                # the endpoints first: the baseline's scans of every job evict the rollups
                # from the cache and start autovacuum on the jobs partitions
                _say("endpoints")
                r["endpoints"] = await measure_endpoints(deps, rep.from_ms, rep.to_ms)
                save()
                if settle:
                    # Again once autovacuum is done with the new partitions: attached, they
                    # get their first vacuum (visibility map, page flags: every heap page
                    # written once more, ~60 GB at 100M), whose I/O the first timing shares.
                    # Behind a rollups step of ~40 minutes it used to be done by then.
                    _say("waiting for autovacuum on the new partitions")
                    r["settle_s"] = await settled(conn)
                    r["endpoints_first"] = r["endpoints"]
                    _say(f"settled in {r['settle_s']:.0f} s; endpoints again")
                    r["endpoints"] = await measure_endpoints(deps, rep.from_ms, rep.to_ms)
                    save()
                if matview:
                    _say("materialized-view baseline")
                    r["matview"] = await measure_matview(conn)
                    save()
            finally:
                await conn.close()
            if forecasts:
                # issue 17's forecast backtest on the same store (the largest seed is too
                # costly to fill twice): Prophet vs seasonal naive per queue
                import ai_eval
                _say("forecast backtest")
                t = time.perf_counter()
                fc = await ai_eval.eval_forecasts(deps)
                fc["seconds"] = time.perf_counter() - t
                r["forecasts"] = fc
                save()
            _say("done")
        finally:
            await deps.close()
    return r


def markdown(r: dict[str, Any]) -> str:
    mb = 1024 * 1024
    lines = [
        f"# Analytics bench: seed of {r['jobs']:,} jobs over {r['days']} days",
        "",
        f"Seed: **{r['seed_s']:.1f} s** ({r['jobs_per_s']:,.0f} jobs/s, "
        f"{r['rows_per_s']:,.0f} job + attempt rows/s), {r['attempts']:,} attempt rows, "
        f"database {r['database_bytes'] / mb:,.0f} MiB ({r['bytes_per_job']:.0f} bytes per job "
        "in the tables below). Load average (1 min) before/after: "
        f"{r.get('load_avg_1m_before', 0):.1f} / {r.get('load_avg_1m_after', 0):.1f} on "
        f"{r['machine']['cpus']} cores (a shared machine).",
        "",
        "| step | s |", "|---|---|",
        *[f"| {k} | {v:.1f} |" for k, v in r["steps_s"].items()],
        "",
        *(["Rollups step (the rebuild) by phase, s: "
           + ", ".join(f"{k} {v:.1f}" for k, v in r["rollups"].get("phases", {}).items()), ""]
          if r.get("rollups") else []),
        "| table | MiB |", "|---|---|",
        *[f"| {k} | {v / mb:,.1f} |" for k, v in r["table_bytes"].items()],
        "",
    ]
    if r["matview"]:
        m = r["matview"]
        lines += ["Baseline, the seed document's `analytics_daily_jobs` materialized view:", "",
                  "| create | unique index | refresh concurrently | rows | MiB |",
                  "|---|---|---|---|---|",
                  f"| {m['create_s']:.1f} s | {m['index_s']:.2f} s | "
                  f"{m['refresh_concurrently_s']:.1f} s | {m['rows']:,.0f} | "
                  f"{m['bytes'] / mb:.1f} |", ""]
    else:
        lines += ["(The materialized-view baseline was not measured in this run: --no-matview.)",
                  ""]
    if r.get("endpoints_first"):
        first = r["endpoints_first"]
        w1 = max(first, key=lambda e: e["p95_ms"])
        lines += [f"Right after the seed, while autovacuum took its first pass over the new "
                  f"partitions: {sum(e['p95_ms'] <= 300 for e in first)} of {len(first)} cells "
                  f"within 300 ms p95, the worst {w1['p95_ms']:.1f} ms ({w1['endpoint']}, "
                  f"{w1['range']}, {w1['filter']}). That pass took {r['settle_s']:.0f} s more; "
                  "the table below is timed after it.", ""]
    if r["endpoints"]:
        worst = max(r["endpoints"], key=lambda e: e["p95_ms"])
        lines += [f"Every analytics endpoint on this store, in-process, {worst['calls']} calls per "
                  f"cell; the worst p95 is {worst['p95_ms']:.1f} ms ({worst['endpoint']}, "
                  f"{worst['range']}, {worst['filter']}):", "",
                  "| endpoint | range | filter | p50 ms | p95 ms |", "|---|---|---|---|---|",
                  *[f"| {e['endpoint']} | {e['range']} | {e['filter']} | {e['p50_ms']:.1f} | "
                    f"{e['p95_ms']:.1f} |" for e in r["endpoints"]], ""]
    if r.get("forecasts"):
        f = r["forecasts"]

        def g(v: Any) -> str:
            return "" if v is None else f"{v:.3f}"
        lines += [f"Forecast backtest on this store (7 days held out, MASE, lower is better; "
                  f"{f['seconds']:.0f} s for all queues): median Prophet "
                  f"{g(f['medianMaseProphet'])}, seasonal naive {g(f['medianMaseSeasonalNaive'])}; "
                  f"Prophet better on {f['prophetBetter']} of {len(f['queues'])} queues.", "",
                  "| queue | Prophet | seasonal naive | capacity model |", "|---|---:|---:|---|",
                  *[f"| {q} | {g(v.get('maseProphet'))} | {g(v.get('maseSeasonalNaive'))} | "
                    f"{v.get('capacityModel', v.get('error', ''))} |"
                    for q, v in f["queues"].items()], ""]
    return "\n".join(lines)


def main() -> None:
    import asyncio

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", default="1M")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--data-dir", default=None,
                    help="where the store lives (default /dev/shm; use a disk for 10M+)")
    ap.add_argument("--forecasts", action="store_true",
                    help="also backtest the forecasts (issue 17) on the seeded store")
    ap.add_argument("--no-matview", action="store_true",
                    help="skip the materialized-view baseline (~8 min at 100M)")
    ap.add_argument("--no-settle", action="store_true",
                    help="time the endpoints once, right after the seed, not again after "
                         "autovacuum's first pass over the new partitions")
    a = ap.parse_args()
    load = os.getloadavg()[0]
    out = Path(a.out)
    r = asyncio.run(run(parse_count(a.jobs), a.days, a.seed, a.data_dir, a.forecasts,
                        checkpoint=out / "analytics.partial.json", matview=not a.no_matview,
                        settle=not a.no_settle))
    r["load_avg_1m_before"] = load
    r["load_avg_1m_after"] = os.getloadavg()[0]
    out.mkdir(parents=True, exist_ok=True)
    (out / "analytics.partial.json").unlink(missing_ok=True)
    (out / "analytics.json").write_text(json.dumps(r, indent=2) + "\n")
    (out / "analytics.md").write_text(markdown(r))
    print(markdown(r))


if __name__ == "__main__":
    main()
