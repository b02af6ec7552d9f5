"""Latency of every analytics endpoint (issue 16): p50/p95 over ``--calls`` calls, for a 30-day
and a 24-hour range, unfiltered, filtered by queue, and by queue + job type.

Against a running API (``--url`` + ``--key``, an admin key), or in-process (the REST app over
``httpx``'s ASGI transport, so the figures include routing, auth, validation, SQL and JSON but
not a network hop) over a store this script fills: ``--store DIR`` keeps an embedded
PostgreSQL there (filled on first use, reused after; ``--fill`` refills it).

The fill is SQL only (``generate_series``), the shape a 100M-job / 30-day seed leaves in the
rollups: 10 queues x 3 job types, ~4,600 jobs per type-hour on average (peak hours 9-17 UTC
carry most), 30 days of hour and day rows, the last 7 days at minute grain too (the minute
retention), histograms with ~240 buckets per hour row and ~90 per minute row over the four
metrics, an hour of samples per metric for 30 days and minute samples for 7. The raw ``jobs``
table holds only a 20-job DAG for the critical-path endpoint: no endpoint reads ``jobs``
otherwise, so 100M raw rows would not change the figures.

    python bench/analytics_api.py --store /tmp/jl-analytics-bench        # fill once, then time
    python bench/analytics_api.py --url http://127.0.0.1:8000 --key $KEY  # a live stack
Writes bench/results/analytics_api.{json,md} (``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = Path(__file__).parent / "results"

QUEUES = {  # queue -> (job type, median run ms) x 3
    "email": [("send_welcome", 120), ("send_digest", 900), ("bounce_check", 60)],
    "sms": [("send_otp", 80), ("send_alert", 150), ("delivery_report", 400)],
    "image-processing": [("thumbnail", 1500), ("resize", 2500), ("watermark", 4000)],
    "video-encoding": [("transcode_720p", 45_000), ("transcode_1080p", 90_000),
                       ("extract_audio", 12_000)],
    "reports": [("daily_report", 20_000), ("export_csv", 8000), ("aggregate", 30_000)],
    "webhooks": [("deliver", 250), ("retry_deliver", 400), ("verify", 90)],
    "data-processing": [("etl_batch", 15_000), ("dedupe", 6000), ("enrich", 3000)],
    "ml-inference": [("classify", 700), ("embed", 350), ("score", 1200)],
    "notifications": [("push", 100), ("in_app", 50), ("digest", 2000)],
    "cleanup": [("purge_temp", 5000), ("vacuum_files", 9000), ("expire_sessions", 300)],
}
ENDPOINTS = ["summary", "throughput", "durations", "failures", "retries", "queues/health",
             "resources", "cost", "sla", "availability", "slow-jobs", "top-issues"]

FILL = """
SET synchronous_commit = off;
SET maintenance_work_mem = '512MB';
CREATE TEMP TABLE bt AS SELECT * FROM unnest($types::text[], $jts::text[], $meds::int[])
    AS t(q, t, med);
-- per type-hour job counts: 100M / 30 days / 30 types = 4,630 on average; 9-17 UTC carry ~70%
CREATE TEMP TABLE bh AS
SELECT h AS at, q, t, med,
       greatest(1, (4630 * (CASE WHEN extract(hour FROM h AT TIME ZONE 'UTC') BETWEEN 9 AND 16
                                 THEN 2.1 ELSE 0.45 END)
                   * (CASE WHEN extract(isodow FROM h AT TIME ZONE 'UTC') >= 6 THEN 0.5 ELSE 1.1 END)
                   * (0.8 + random() * 0.4))::bigint) AS n
  FROM generate_series($start::timestamptz, $end::timestamptz - interval '1 hour',
                       interval '1 hour') h, bt;
INSERT INTO job_rollups_hour
SELECT at, q, t, n, n, (n * 0.95)::bigint, (n * 0.16)::bigint, (n * 0.11)::bigint,
       (n * 0.05)::bigint, 0, (n * 0.95 * med)::bigint, (n * 400)::bigint,
       (n * 0.95 * (med + 500))::bigint, (n * 0.16 * med * 0.6)::bigint
  FROM bh;
INSERT INTO job_rollups_day
SELECT date_trunc('day', at, 'UTC'), queue_name, job_type, sum(submitted), sum(started),
       sum(completed), sum(failed), sum(retries), sum(dead_letter), sum(cancelled),
       sum(duration_sum_ms), sum(wait_sum_ms), sum(e2e_sum_ms), sum(failed_ms)
  FROM job_rollups_hour GROUP BY 1, 2, 3;
INSERT INTO job_rollups
SELECT m, q, t, x, x, (x * 0.95)::bigint, (x * 0.16)::bigint, (x * 0.11)::bigint,
       (x * 0.05)::bigint, 0, (x * 0.95 * med)::bigint, (x * 400)::bigint,
       (x * 0.95 * (med + 500))::bigint, (x * 0.16 * med * 0.6)::bigint
  FROM bh, generate_series(bh.at, bh.at + interval '59 minutes', interval '1 minute') m,
       LATERAL (SELECT greatest(1, (bh.n / 60.0 * (0.7 + random() * 0.6))::bigint) AS x) v
 WHERE bh.at >= $end::timestamptz - interval '7 days';
-- histograms: a bell of buckets around each metric's typical value
CREATE TEMP TABLE shape(metric text, centre_of text, half int, minute_half int);
INSERT INTO shape VALUES ('duration', 'med', 40, 15), ('wait', 'wait', 30, 10),
                         ('e2e', 'e2e', 40, 15), ('failed', 'failed', 10, 2);
INSERT INTO job_rollup_histograms_hour
SELECT bh.at, bh.q, bh.t, s.metric, c.b + k,
       greatest(1, (bh.n * 0.06 * exp(-(k * k)::float8 / (s.half * s.half / 5.0))
                    * CASE s.metric WHEN 'failed' THEN 0.16 ELSE 1 END)::bigint)
  FROM bh, shape s,
       LATERAL (SELECT jobline_bucket(CASE s.centre_of WHEN 'med' THEN bh.med
                                      WHEN 'wait' THEN 400 WHEN 'e2e' THEN bh.med + 500
                                      ELSE bh.med / 2 END) AS b) c,
       generate_series(-s.half, s.half) k;
INSERT INTO job_rollup_histograms_day
SELECT date_trunc('day', at, 'UTC'), queue_name, job_type, metric, bucket, sum(n)
  FROM job_rollup_histograms_hour GROUP BY 1, 2, 3, 4, 5;
ALTER TABLE job_rollup_histograms DROP CONSTRAINT job_rollup_histograms_pkey;
INSERT INTO job_rollup_histograms
SELECT r.minute, r.queue_name, r.job_type, s.metric, c.b + k,
       greatest(1, (r.completed * 0.12 * exp(-(k * k)::float8 / (s.minute_half * s.minute_half / 4.0))
                    * CASE s.metric WHEN 'failed' THEN 0.16 ELSE 1 END)::bigint)
  FROM job_rollups r JOIN bt ON bt.q = r.queue_name AND bt.t = r.job_type, shape s,
       LATERAL (SELECT jobline_bucket(CASE s.centre_of WHEN 'med' THEN bt.med
                                      WHEN 'wait' THEN 400 WHEN 'e2e' THEN bt.med + 500
                                      ELSE bt.med / 2 END) AS b) c,
       generate_series(-s.minute_half, s.minute_half) k;
ALTER TABLE job_rollup_histograms ADD PRIMARY KEY (minute, queue_name, job_type, metric, bucket);
-- error types and attempts (hour, day, minute)
INSERT INTO job_rollup_errors_hour
SELECT at, q, t, e, greatest(1, (n * 0.16 * w)::bigint) FROM bh,
       (VALUES ('TimeoutError', 0.4), ('ConnectionError', 0.3), ('ValueError', 0.2),
               ('unknown', 0.1)) v(e, w);
INSERT INTO job_rollup_errors_day SELECT date_trunc('day', at, 'UTC'), queue_name, job_type,
       error_type, sum(n) FROM job_rollup_errors_hour GROUP BY 1, 2, 3, 4;
INSERT INTO job_rollup_errors SELECT minute, queue_name, job_type, e,
       greatest(1, (failed * w)::bigint) FROM job_rollups,
       (VALUES ('TimeoutError', 0.4), ('ConnectionError', 0.3), ('ValueError', 0.2),
               ('unknown', 0.1)) v(e, w) WHERE failed > 0;
INSERT INTO job_rollup_attempts_hour
SELECT at, q, t, a, (n * c)::bigint, (n * f)::bigint FROM bh,
       (VALUES (1, 0.85, 0.15), (2, 0.08, 0.04), (3, 0.02, 0.03)) v(a, c, f);
INSERT INTO job_rollup_attempts_day SELECT date_trunc('day', at, 'UTC'), queue_name, job_type,
       attempt, sum(completed), sum(failed) FROM job_rollup_attempts_hour GROUP BY 1, 2, 3, 4;
INSERT INTO job_rollup_attempts SELECT minute, queue_name, job_type, a, (completed * c)::bigint,
       (completed * f)::bigint FROM job_rollups,
       (VALUES (1, 0.9, 0.15), (2, 0.08, 0.04), (3, 0.02, 0.03)) v(a, c, f);
-- samples: (metric, subject, base value)
CREATE TEMP TABLE series(metric text, subject text, base float8);
INSERT INTO series SELECT 'queue.depth', q, 500 FROM (SELECT DISTINCT q FROM bt) x;
INSERT INTO series SELECT 'queue.oldest_pending_ms', q, 30000 FROM (SELECT DISTINCT q FROM bt) x;
INSERT INTO series VALUES ('workers.count', '*', 40), ('workers.slots', '*', 320),
    ('workers.busy', '*', 200), ('workers.crashes', '*', 0.01), ('redis.memory_bytes', '*', 2e9),
    ('pg.database_bytes', '*', 8e10), ('events.lag', 'relay', 50), ('events.lag', 'analytics', 80);
INSERT INTO series SELECT 'health.up', c, 1 FROM unnest(ARRAY['api', 'postgres', 'redis',
    'scheduler', 'workers']) c;
INSERT INTO series SELECT m, 'worker-' || i, CASE m WHEN 'worker.cpu_pct' THEN 60 ELSE 5e8 END
  FROM generate_series(1, 40) i, unnest(ARRAY['worker.cpu_pct', 'worker.rss_bytes']) m;
INSERT INTO series SELECT 'pg.table_bytes', tb, 5e9 FROM unnest(ARRAY['jobs', 'job_attempts',
    'job_events', 'job_rollups', 'job_rollup_histograms', 'job_rollups_hour',
    'job_rollup_histograms_hour', 'analytics_samples', 'job_dependencies', 'queues']) tb;
INSERT INTO analytics_samples
SELECT metric, subject, m,
       CASE WHEN metric = 'health.up' THEN (random() > 0.0005)::int
            WHEN metric = 'pg.database_bytes' THEN base + extract(epoch FROM m - $start::timestamptz) * 3e4
            ELSE base * (0.5 + random()) END
  FROM series, generate_series($end::timestamptz - interval '7 days',
                               $end::timestamptz - interval '1 minute', interval '1 minute') m;
INSERT INTO analytics_samples_hour
SELECT metric, subject, h, v, v * 0.7, v * 1.3, v, 60
  FROM series, generate_series($start::timestamptz, $end::timestamptz - interval '1 hour',
                               interval '1 hour') h,
       LATERAL (SELECT CASE WHEN metric = 'health.up' THEN 1 - (random() > 0.99)::int * 0.05
                            WHEN metric = 'pg.database_bytes'
                            THEN base + extract(epoch FROM h - $start::timestamptz) * 3e4
                            ELSE base * (0.5 + random()) END AS v) x;
INSERT INTO queue_slas SELECT q, 0.95, 300000, 'e2e', now() FROM (SELECT DISTINCT q FROM bt) x;
"""


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def _sql(template: str, values: dict[str, str]) -> str:
    for k, v in values.items():
        template = template.replace(f"${k}", v)
    return template


async def fill(database_url: str, redis_url: str, end_ms: int) -> dict[str, Any]:
    from jobline.shared.core import jobs
    from jobline.shared.core.models import JobSpec
    from jobline.shared.platform.clock import SYSTEM_CLOCK
    from jobline.shared.platform.config import Settings
    from jobline.shared.platform.connections import connect

    end = datetime.fromtimestamp(end_ms / 1000, UTC)
    start = datetime.fromtimestamp((end_ms - 30 * 86_400_000) / 1000, UTC)
    types = [(q, t, med) for q, ts in QUEUES.items() for t, med in ts]

    def arr(xs: list[Any]) -> str:
        return "ARRAY[" + ",".join(repr(x) if isinstance(x, int) else f"'{x}'" for x in xs) + "]"

    sql = _sql(FILL, {"types": arr([t[0] for t in types]), "jts": arr([t[1] for t in types]),
                      "meds": arr([t[2] for t in types]), "start": f"'{start.isoformat()}'",
                      "end": f"'{end.isoformat()}'"})
    t0 = time.perf_counter()
    conn = await asyncpg.connect(database_url)
    try:
        # resumable: a fill whose SQL finished (same hour) is not redone
        done = await conn.fetchval("SELECT count(*) FROM queue_slas")
        if not done:
            await conn.execute(sql)
            await conn.execute("VACUUM ANALYZE")
        counts = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in (
            "job_rollups", "job_rollups_hour", "job_rollups_day", "job_rollup_histograms",
            "job_rollup_histograms_hour", "job_rollup_histograms_day", "analytics_samples",
            "analytics_samples_hour")}
        jobs_total = await conn.fetchval("SELECT sum(submitted) FROM job_rollups_day")
        size = await conn.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
    finally:
        await conn.close()
    # a small DAG through the engine for the critical-path endpoint
    settings = Settings().with_(database_url=database_url, redis_url=redis_url)
    deps = await connect(settings, SYSTEM_CLOCK)
    try:
        (root,) = [r.submitted.id for r in await jobs.submit_many(
            deps, [JobSpec("reports", "extract", {})])]
        mids = [r.submitted.id for r in await jobs.submit_many(
            deps, [JobSpec("reports", f"part_{i}", {}, depends_on=(root,)) for i in range(18)])]
        await jobs.submit_many(deps, [JobSpec("reports", "load", {}, depends_on=tuple(mids))])
    finally:
        await deps.close()
    return {"seconds": round(time.perf_counter() - t0, 1) if not done else None, "rows": counts,
            "jobs_represented": int(jobs_total), "database_size": size, "dag_job": str(root)}


async def time_all(client: httpx.AsyncClient, end_ms: int, calls: int,
                   dag_job: str | None) -> list[dict[str, Any]]:
    def iso(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")

    # ranges ending at a minute that is not a whole hour: the edges read minute rows
    to = end_ms - 17 * 60_000
    ranges = {"30d": (to - 30 * 86_400_000, to), "24h": (to - 86_400_000, to)}
    filters = {"none": {}, "queue": {"queue": "email"},
               "queue+jobType": {"queue": "email", "jobType": "send_digest"}}
    out = []
    jobs_of: list[tuple[str, dict[str, str]]] = [(p, {}) for p in ENDPOINTS]
    if dag_job:
        jobs_of.append(("dependencies/critical-path", {"jobId": dag_job}))
    for rname, (frm, t) in ranges.items():
        for fname, f in filters.items():
            for path, extra in jobs_of:
                params: dict[str, str] = {**extra}
                if path != "dependencies/critical-path":
                    params |= {"from": iso(frm), "to": iso(t), **f}
                elif (rname, fname) != ("30d", "none"):
                    continue
                ms = []
                for _ in range(calls):
                    t0 = time.perf_counter()
                    r = await client.get(f"/api/v1/analytics/{path}", params=params)
                    ms.append((time.perf_counter() - t0) * 1000)
                    r.raise_for_status()
                out.append({"endpoint": path, "range": rname, "filter": fname, "calls": calls,
                            "p50_ms": round(statistics.median(ms), 1),
                            "p95_ms": round(pct(ms, 95), 1), "max_ms": round(max(ms), 1),
                            "min_ms": round(min(ms), 1),
                            "bytes": len(r.content)})
                print(f"{rname:>4} {fname:<14} {path:<28} p50 {out[-1]['p50_ms']:7.1f}  "
                      f"p95 {out[-1]['p95_ms']:7.1f}", flush=True)
    return out


def write(out: Path, result: dict[str, Any]) -> None:
    result["load"].append(round(os.getloadavg()[0], 2))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    rows = result["timings"]
    worst = max(rows, key=lambda r: r["p95_ms"])
    lines = ["# analytics API latency", "",
             f"machine: {result['machine']}; {result['mode']}; {result['calls']} calls per cell; "
             f"load average before / after: {result['load'][0]} / {result['load'][1]} (the "
             "machine is shared: min ms is the closest to an idle machine's figure)", ""]
    if result.get("fill"):
        f = result["fill"]
        lines += [f"store: filled in {f['seconds']} s (SQL + VACUUM ANALYZE), {f['jobs_represented']:,} jobs represented"
                  f" over 30 days, database {f['database_size']}; rows: "
                  + ", ".join(f"{k} {v:,}" for k, v in f["rows"].items()), ""]
    lines += [f"worst p95: {worst['p95_ms']} ms ({worst['endpoint']}, {worst['range']}, "
              f"filter {worst['filter']}); goal 300 ms: "
              f"{'met' if worst['p95_ms'] <= 300 else 'NOT met'}", "",
              "| endpoint | range | filter | p50 ms | p95 ms | min ms | max ms | bytes |",
              "|---|---|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['endpoint']} | {r['range']} | {r['filter']} | {r['p50_ms']} | "
              f"{r['p95_ms']} | {r['min_ms']} | {r['max_ms']} | {r['bytes']} |" for r in rows]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="a running API (with --key); default: in-process")
    ap.add_argument("--key", help="an admin API key for --url")
    ap.add_argument("--store", type=Path, default=Path("/tmp/jl-analytics-bench"),
                    help="embedded PostgreSQL home for the in-process mode (kept)")
    ap.add_argument("--fill", action="store_true", help="refill the store even if it has data")
    ap.add_argument("--calls", type=int, default=15)
    ap.add_argument("--dag-job", help="job id for the critical-path endpoint (--url mode)")
    ap.add_argument("--out", type=Path, default=RESULTS / "analytics_api")
    a = ap.parse_args()
    result: dict[str, Any] = {"machine": f"{platform.machine()}, "
                              f"{os.cpu_count()} cores", "calls": a.calls,
                              "load": [round(os.getloadavg()[0], 2)]}
    if a.url:
        async with httpx.AsyncClient(base_url=a.url, headers={"X-Api-Key": a.key or ""},
                                     timeout=60) as client:
            result["mode"] = f"over HTTP to {a.url}"
            result["timings"] = await time_all(client, int(time.time() * 1000), a.calls,
                                               a.dag_job)
        write(a.out, result)
        return
    from jobline.api.app import create_app
    from jobline.local import LocalServices
    from jobline.shared.platform.clock import FakeClock
    from jobline.shared.platform.config import Settings
    from jobline.shared.platform.connections import connect
    from jobline.shared.platform.migrate import migrate
    from jobline.testing import serve_app

    a.store.mkdir(parents=True, exist_ok=True)
    services = LocalServices(a.store, database_url=None, redis_url=None, fast=True).start()
    try:
        meta = a.store / "analytics-bench.json"
        await migrate(services.database_url)  # a store filled before a newer migration too
        if a.fill or not meta.exists():
            end_ms = int(time.time() * 1000) // 3_600_000 * 3_600_000
            info = await fill(services.database_url, services.redis_url, end_ms)
            meta.write_text(json.dumps({"end_ms": end_ms, **info}))
        info = json.loads(meta.read_text())
        result["fill"] = {k: v for k, v in info.items() if k not in ("end_ms", "dag_job")}
        result["mode"] = "in-process (ASGI), embedded PostgreSQL 18"
        settings = Settings().with_(database_url=services.database_url,
                                    redis_url=services.redis_url)
        # the store's "now" is its fill time, so the minute retention covers the last 7 days
        deps = await connect(settings, FakeClock(info["end_ms"]))
        try:
            async for client in serve_app(create_app(settings, deps=deps), role="admin"):
                result["timings"] = await time_all(client, info["end_ms"], a.calls,
                                                   info["dag_job"])
        finally:
            await deps.close()
    finally:
        services.stop()
    write(a.out, result)


if __name__ == "__main__":
    asyncio.run(main())
