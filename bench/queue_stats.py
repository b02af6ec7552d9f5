"""Queue stats without scanning jobs (migration 0015): read latency at 1M and 10M stored jobs,
before (the old ``count(*) ... GROUP BY`` over ``jobs``) and after (maintained counts), and the
write cost of the count triggers.

- Reads: p50/p95 of the counts query alone, of ``jobs.queue_stats`` (counts + Redis depth +
  controls) and of ``GET /api/v1/queues`` through the whole REST app (in-process ASGI, with an
  admin key), each with the old scan and with the counts. The jobs are loaded with one
  ``INSERT ... SELECT generate_series`` per million rows (the count triggers on, the event
  trigger off as in the other seeding benchmarks), then ANALYZE.
- Read cost with unfolded deltas: the counts query with 0 and with ``--unfolded`` delta rows
  waiting for a fold (what a read sums between two scheduler folds).
- Writes: jobs/s of bulk submit (``submit_many``, COPY path) and of claim + complete
  (``claim`` 100 at a time, ``complete``), with the count triggers enabled and disabled, median
  of ``--runs`` runs each, on an emptied table. Event triggers stay on in both (the default).

    python bench/queue_stats.py                 # 1M and 10M, writes bench/results/queue_stats.*
    python bench/queue_stats.py --quick --out D # smoke

Always on its own embedded servers in /dev/shm (it empties tables and flushes Valkey).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import stores

from jobline.api.app import create_app
from jobline.shared.core import counts, jobs, sql
from jobline.shared.core.models import JobSpec, Outcome
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect
from jobline.testing import serve_app

RESULTS = Path(__file__).parent / "results"
COUNT_TRIGGERS = ("jobs_counts_inserted", "jobs_counts_updated", "jobs_counts_deleted")
QUEUES = 8
#: Variants alternate A B B A A B, so neither always runs first after a TRUNCATE.
ORDER = (True, False, False, True, True, False)

# Rows spread over the last 20 days (ids are UUIDv7: the time is in the id, so they land in the
# monthly partitions), 8 queues, 4 job types, a realistic mix of statuses.
SEED = """
INSERT INTO jobs (id, queue_name, job_type, payload, status, attempts, created_at, started_at,
                  completed_at, scheduled_for, updated_at, error, error_type, lease_expires_at)
SELECT (lpad(to_hex(t_ms), 12, '0') || '7000' || '8' || substr(md5(g::text), 1, 15))::uuid,
       'q' || (g % 8), 't' || (g % 4), jsonb_build_object('n', g),
       s.status, CASE WHEN s.status IN ('pending', 'waiting') THEN 0 ELSE 1 END,
       to_timestamp(t_ms / 1000.0), to_timestamp(t_ms / 1000.0 + 0.05),
       CASE WHEN s.status IN ('completed', 'dead_letter', 'cancelled')
            THEN to_timestamp(t_ms / 1000.0 + 0.5) END,
       to_timestamp(t_ms / 1000.0), to_timestamp(t_ms / 1000.0),
       CASE WHEN s.status = 'dead_letter' THEN 'boom' END,
       CASE WHEN s.status = 'dead_letter' THEN 'E' END,
       CASE WHEN s.status = 'processing' THEN now() + interval '1 hour' END
  FROM generate_series($1::bigint, $2::bigint - 1) AS g
 CROSS JOIN LATERAL (SELECT ($3::bigint + g * 17) AS t_ms) AS t
 CROSS JOIN LATERAL (SELECT CASE WHEN g % 50 = 0 THEN 'dead_letter'
                                 WHEN g % 97 = 0 THEN 'pending'
                                 WHEN g % 89 = 0 THEN 'processing'
                                 WHEN g % 83 = 0 THEN 'scheduled'
                                 WHEN g % 79 = 0 THEN 'cancelled'
                                 ELSE 'completed' END AS status) AS s
"""


# A fresh pending job per row (for the SQL-only write measurement).
SEED_PENDING = """
INSERT INTO jobs (id, queue_name, job_type, payload, status, created_at, scheduled_for, updated_at)
SELECT (lpad(to_hex($3::bigint + g), 12, '0') || '7000' || '8' || substr(md5(g::text), 1, 15))::uuid,
       'w' || (g % 4), 'noop', jsonb_build_object('i', g), 'pending', now(), now(), now()
  FROM generate_series($1::bigint, $2::bigint - 1) AS g
"""


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


async def timed(fn: Callable[[], Awaitable[Any]], n: int) -> dict[str, float]:
    await fn()  # warm (plans, caches)
    xs = []
    for _ in range(n):
        t0 = time.perf_counter()
        await fn()
        xs.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(statistics.median(xs), 3), "p95_ms": round(pct(xs, 95), 3), "n": n}


async def scan_counts(deps: Deps) -> dict[str, dict[str, int]]:
    """The pre-0015 read: a GROUP BY over every row of jobs."""
    out: dict[str, dict[str, int]] = {}
    for r in await deps.pool.fetch(sql.QUEUE_COUNTS_SCAN):
        out.setdefault(r["queue_name"], {})[r["status"]] = r["n"]
    return out


async def reads(deps: Deps, http: Any, slow_n: int, fast_n: int) -> dict[str, Any]:
    async def get_queues() -> None:
        r = await http.get("/api/v1/queues")
        r.raise_for_status()

    new = counts.queue_counts
    out: dict[str, Any] = {}
    # before: the scan, alone and under queue_stats / GET /api/v1/queues
    out["before"] = {"counts": await timed(lambda: scan_counts(deps), slow_n)}
    counts.queue_counts = scan_counts  # type: ignore[assignment]
    try:
        out["before"]["queue_stats"] = await timed(lambda: jobs.queue_stats(deps), slow_n)
        out["before"]["http"] = await timed(get_queues, slow_n)
    finally:
        counts.queue_counts = new  # type: ignore[assignment]
    await counts.fold(deps)
    out["after"] = {"counts": await timed(lambda: counts.queue_counts(deps), fast_n),
                    "queue_stats": await timed(lambda: jobs.queue_stats(deps), fast_n),
                    "http": await timed(get_queues, fast_n)}
    assert await counts.queue_counts(deps) == await scan_counts(deps), "counts drifted"
    return out


async def unfolded_read(deps: Deps, rows: int, n: int) -> dict[str, Any]:
    """The counts query with ``rows`` delta rows waiting (as appended by as many statements)."""
    await counts.fold(deps)
    await deps.pool.execute(
        "INSERT INTO queue_count_deltas (queue_name, status, delta) "
        "SELECT 'q' || (g % 8), CASE WHEN g % 2 = 0 THEN 'pending' ELSE 'processing' END, "
        "CASE WHEN g % 2 = 0 THEN -1 ELSE 1 END FROM generate_series(1, $1) AS g", rows)
    await deps.pool.execute("ANALYZE queue_count_deltas")
    saved = counts.FOLD_ON_READ_ROWS
    counts.FOLD_ON_READ_ROWS = rows + 1  # measure the summing, not the fold-on-read
    try:
        res = await timed(lambda: counts.queue_counts(deps), n)
    finally:
        counts.FOLD_ON_READ_ROWS = saved
    t0 = time.perf_counter()
    folded = await counts.fold(deps)
    res["fold_ms"] = round((time.perf_counter() - t0) * 1000, 2)
    res["folded_rows"] = folded
    res["unfolded_rows"] = rows
    return res


async def set_triggers(deps: Deps, on: bool) -> None:
    verb = "ENABLE" if on else "DISABLE"
    for t in COUNT_TRIGGERS:
        await deps.pool.execute(f"ALTER TABLE jobs {verb} TRIGGER {t}")


async def writes(deps: Deps, n_jobs: int, runs: int) -> dict[str, Any]:
    specs = [JobSpec(f"w{i % 4}", "noop", {"i": i}) for i in range(n_jobs)]
    queues = [f"w{i}" for i in range(4)]
    out: dict[str, Any] = {}
    for on in ORDER[: 2 * runs]:
        await set_triggers(deps, on)
        await deps.pool.execute("TRUNCATE jobs, job_attempts, idempotency_keys, job_events")
        await deps.redis.flushall()
        t0 = time.perf_counter()
        for lo in range(0, n_jobs, 1000):
            await jobs.submit_many(deps, specs[lo:lo + 1000], positions=False)
        submit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        done = 0
        while done < n_jobs:
            got = await jobs.claim(deps, "bench", queues, 100)
            if not got:
                raise RuntimeError(f"claimed only {done} of {n_jobs}")
            await jobs.complete(deps, [Outcome(c.id, c.token, ok=True) for c in got])
            done += len(got)
        cc_s = time.perf_counter() - t0
        r = out.setdefault("on" if on else "off", {"submit": [], "claim_complete": []})
        r["submit"].append(round(n_jobs / submit_s))
        r["claim_complete"].append(round(n_jobs / cc_s))
        print(f"  writes triggers {'on' if on else 'off'}: submit {n_jobs / submit_s:,.0f}/s, "
              f"claim+complete {n_jobs / cc_s:,.0f}/s", flush=True)
    await set_triggers(deps, True)
    await deps.pool.execute("TRUNCATE jobs, job_attempts, idempotency_keys, job_events")
    for v in out.values():
        for k in ("submit", "claim_complete"):
            v[f"{k}_median"] = statistics.median(v[k])
    out["overhead_pct"] = {
        k: round(100 * (1 - out["on"][f"{k}_median"] / out["off"][f"{k}_median"]), 1)
        for k in ("submit", "claim_complete")}
    return out


async def sql_writes(deps: Deps, n_rows: int, runs: int) -> dict[str, Any]:
    """The triggers' cost in PostgreSQL alone (no Python, no Valkey): ``n_rows`` jobs inserted
    1,000 per statement, then moved pending -> processing -> completed 100 per statement (the
    shape of a claim batch and a completion batch), with the count triggers on and off."""
    base_ms = int(time.time() * 1000) - 86_400_000
    ids_sql = "SELECT array_agg(id ORDER BY id) FROM jobs"
    out: dict[str, Any] = {}
    for on in ORDER[: 2 * runs]:
        await set_triggers(deps, on)
        await deps.pool.execute("TRUNCATE jobs, job_attempts, idempotency_keys, job_events")
        async with deps.pool.acquire() as conn:
            t0 = time.perf_counter()
            for lo in range(0, n_rows, 1000):
                await conn.execute(SEED_PENDING, lo, min(lo + 1000, n_rows), base_ms)
            ins_s = time.perf_counter() - t0
            ids = await conn.fetchval(ids_sql)
            t0 = time.perf_counter()
            for lo in range(0, len(ids), 100):
                await conn.execute(
                    "UPDATE jobs SET status = 'processing', attempts = attempts + 1, "
                    "started_at = now(), updated_at = now(), lease_token = lease_token + 1, "
                    "lease_expires_at = now() + interval '5 minutes' "
                    "WHERE id = ANY($1::uuid[])", ids[lo:lo + 100])
                await conn.execute(
                    "UPDATE jobs SET status = 'completed', completed_at = now(), updated_at = now(), "
                    "lease_expires_at = NULL WHERE id = ANY($1::uuid[])", ids[lo:lo + 100])
            upd_s = time.perf_counter() - t0
        r = out.setdefault("on" if on else "off", {"insert": [], "claim_complete": []})
        r["insert"].append(round(n_rows / ins_s))
        r["claim_complete"].append(round(n_rows / upd_s))
        print(f"  sql triggers {'on' if on else 'off'}: insert {n_rows / ins_s:,.0f} rows/s, "
              f"claim+complete {n_rows / upd_s:,.0f} rows/s", flush=True)
    await set_triggers(deps, True)
    await deps.pool.execute("TRUNCATE jobs, job_attempts, idempotency_keys, job_events")
    for v in out.values():
        for k in ("insert", "claim_complete"):
            v[f"{k}_median"] = statistics.median(v[k])
    out["overhead_pct"] = {
        k: round(100 * (1 - out["on"][f"{k}_median"] / out["off"][f"{k}_median"]), 1)
        for k in ("insert", "claim_complete")}
    out["overhead_us_per_row"] = {
        k: round(1e6 / out["on"][f"{k}_median"] - 1e6 / out["off"][f"{k}_median"], 2)
        for k in ("insert", "claim_complete")}
    return out


async def trigger_times(deps: Deps, reps: int) -> dict[str, Any]:
    """Time PostgreSQL spends inside each trigger, from EXPLAIN ANALYZE (immune to the client
    and the machine's other load, which the throughput figures are not): per statement of
    1,000 inserted jobs, of 100 claimed (pending -> processing) and of 100 completed. Each
    statement runs in a transaction that is rolled back."""
    base_ms = int(time.time() * 1000) - 3_600_000
    stmts = {
        # ids after the seeded ones
        "insert_1000": (SEED_PENDING.replace("$1::bigint", "10000")
                        .replace("$2::bigint", "11000").replace("$3::bigint", str(base_ms))),
        "claim_100": ("UPDATE jobs SET status = 'processing', attempts = attempts + 1, "
                      "started_at = now(), updated_at = now(), lease_token = lease_token + 1, "
                      "lease_expires_at = now() + interval '5 minutes' "
                      "WHERE id IN (SELECT id FROM jobs WHERE status = 'pending' LIMIT 100)"),
        "complete_100": ("UPDATE jobs SET status = 'completed', completed_at = now(), "
                         "updated_at = now(), lease_expires_at = NULL "
                         "WHERE id IN (SELECT id FROM jobs WHERE status = 'processing' "
                         "LIMIT 100)"),
    }
    await deps.pool.execute("TRUNCATE jobs, job_attempts, idempotency_keys, job_events")
    await deps.pool.execute(SEED_PENDING, 0, 2000, base_ms)
    await deps.pool.execute("UPDATE jobs SET status = 'processing', lease_expires_at = now() "
                            "WHERE id IN (SELECT id FROM jobs LIMIT 1000)")
    await deps.pool.execute("ANALYZE jobs")
    out: dict[str, Any] = {}
    for name, stmt in stmts.items():
        per: dict[str, list[float]] = {}
        for _ in range(reps + 1):
            async with deps.pool.acquire() as conn:
                tx = conn.transaction()
                await tx.start()
                try:
                    v = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {stmt}")
                    # the pool decodes json itself; a plain connection returns text
                    plan = (json.loads(v) if isinstance(v, str) else v)[0]
                finally:
                    await tx.rollback()
            per.setdefault("statement", []).append(plan["Execution Time"])
            for t in plan.get("Triggers", []):
                per.setdefault(t["Trigger Name"], []).append(t["Time"])
        # the first repetition plans the trigger's statements: left out
        out[name] = {k: round(statistics.median(v[1:]), 3) for k, v in per.items()}
    await deps.pool.execute("TRUNCATE jobs, job_attempts, idempotency_keys, job_events")
    return out


async def load(deps: Deps, lo: int, hi: int, base_ms: int) -> float:
    t0 = time.perf_counter()
    await deps.pool.execute("ALTER TABLE jobs DISABLE TRIGGER jobs_inserted_events")
    try:
        step = 1_000_000
        for a in range(lo, hi, step):
            await deps.pool.execute(SEED, a, min(a + step, hi), base_ms, timeout=3600)
    finally:
        await deps.pool.execute("ALTER TABLE jobs ENABLE TRIGGER jobs_inserted_events")
    await deps.pool.execute("ANALYZE jobs", timeout=3600)
    await deps.pool.execute("VACUUM (ANALYZE) queue_count_deltas")
    return time.perf_counter() - t0


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    async with stores.local("jobline-bench-qstats-", external=False) as services:
        settings = Settings().with_(database_url=services.database_url,
                                    redis_url=services.redis_url, redis_prefix="benchqs")
        deps = await connect(settings)
        try:
            print("write cost of the count triggers ...", flush=True)
            w = await writes(deps, args.write_jobs, args.runs)
            ws = await sql_writes(deps, args.sql_rows, args.runs)
            tt = await trigger_times(deps, 9)
            print(f"  trigger times: {json.dumps(tt)}", flush=True)
            await deps.pool.execute("TRUNCATE jobs, job_attempts, idempotency_keys, queues, "
                                    "job_events")
            sizes: dict[str, Any] = {}
            loaded = 0
            base_ms = int(time.time() * 1000) - 20 * 86_400_000
            app = create_app(settings, deps=deps)
            async for http in serve_app(app):
                for target in args.sizes:
                    if time.perf_counter() - started > args.budget_s:
                        print(f"time budget spent, {target:,} jobs not loaded", flush=True)
                        break
                    load_s = await load(deps, loaded, target, base_ms)
                    loaded = target
                    stored = await deps.pool.fetchval("SELECT count(*) FROM jobs")
                    size = await deps.pool.fetchval(
                        "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) "
                        "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                        "WHERE i.inhparent = 'jobs'::regclass")
                    print(f"{stored:,} jobs loaded ({load_s:.0f} s, {size})", flush=True)
                    r = await reads(deps, http, args.slow_n, args.fast_n)
                    print(f"  reads: {json.dumps(r)}", flush=True)
                    sizes[str(target)] = {"jobs": stored, "load_s": round(load_s, 1),
                                          "size": size, **r}
                unfolded = {str(k): await unfolded_read(deps, k, args.fast_n)
                            for k in (0, args.unfolded)}
                print(f"  unfolded: {json.dumps(unfolded)}", flush=True)
            return {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                "platform": platform.platform(),
                                "load_1m": os.getloadavg()[0]},
                    "server_version": await deps.pool.fetchval("SHOW server_version"),
                    "settings": {"sizes": args.sizes, "slow_n": args.slow_n,
                                 "fast_n": args.fast_n, "write_jobs": args.write_jobs,
                                 "sql_rows": args.sql_rows, "runs": args.runs,
                                 "queues": QUEUES},
                    "reads": sizes, "unfolded": unfolded, "writes": w, "sql_writes": ws,
                    "trigger_ms": tt,
                    "total_s": round(time.perf_counter() - started)}
        finally:
            await deps.close()


def markdown(r: dict[str, Any]) -> str:
    lines = ["# Queue stats without scanning jobs (bench/queue_stats.py)", "",
             f"Machine: {r['machine']['cpus']} CPUs (shared; 1-min load {r['machine']['load_1m']:.1f}"
             f" at the end), PostgreSQL {r['server_version']} and Valkey embedded in /dev/shm, "
             f"{r['settings']['queues']} queues. Total run {r['total_s']} s.", "",
             "## Reads: p50 / p95 ms (before = count(*) GROUP BY over jobs; after = counts)", "",
             "| jobs stored | load | what | before p50 | before p95 | after p50 | after p95 |",
             "|---:|---|---|---:|---:|---:|---:|"]
    for v in r["reads"].values():
        for k, label in (("counts", "counts query"), ("queue_stats", "jobs.queue_stats"),
                         ("http", "GET /api/v1/queues")):
            b, a = v["before"][k], v["after"][k]
            lines.append(f"| {v['jobs']:,} | {v['load_s']} s, {v['size']} | {label} | "
                         f"{b['p50_ms']:.1f} | {b['p95_ms']:.1f} | {a['p50_ms']:.2f} | "
                         f"{a['p95_ms']:.2f} |")
    lines += ["", "## The counts query with delta rows waiting for a fold", "",
              "| unfolded rows | p50 ms | p95 ms | fold ms |", "|---:|---:|---:|---:|"]
    for v in r["unfolded"].values():
        lines.append(f"| {v['unfolded_rows']:,} | {v['p50_ms']:.2f} | {v['p95_ms']:.2f} | "
                     f"{v['fold_ms']} |")
    w = r["writes"]
    lines += ["", f"## Write cost of the count triggers ({r['settings']['write_jobs']:,} jobs, "
              f"median of {r['settings']['runs']}, event triggers on)", "",
              "| path | triggers off, jobs/s | triggers on, jobs/s | cost |", "|---|---:|---:|---:|"]
    for k, label in (("submit", "bulk submit (submit_many, 1,000 per call)"),
                     ("claim_complete", "claim 100 + complete 100")):
        lines.append(f"| {label} | {w['off'][f'{k}_median']:,} | {w['on'][f'{k}_median']:,} | "
                     f"{w['overhead_pct'][k]}% |")
    ws = r["sql_writes"]
    lines += ["", f"## The same in PostgreSQL alone ({r['settings']['sql_rows']:,} rows: INSERT "
              "1,000 per statement; UPDATE to processing then completed, 100 per statement)", "",
              "| statement | triggers off, rows/s | triggers on, rows/s | cost | µs per row |",
              "|---|---:|---:|---:|---:|"]
    for k, label in (("insert", "INSERT (submit)"),
                     ("claim_complete", "UPDATE x2 (claim + complete)")):
        lines.append(f"| {label} | {ws['off'][f'{k}_median']:,} | {ws['on'][f'{k}_median']:,} | "
                     f"{ws['overhead_pct'][k]}% | {ws['overhead_us_per_row'][k]} |")
    tt = r["trigger_ms"]
    names = sorted({k for v in tt.values() for k in v if k != "statement"})
    lines += ["", "## Time inside the triggers (EXPLAIN ANALYZE, median of 9 statements, ms)", "",
              "| statement | whole statement | " + " | ".join(names) + " |",
              "|---|---:|" + "---:|" * len(names)]
    for stmt, v in tt.items():
        lines.append(f"| {stmt} | {v['statement']} | "
                     + " | ".join(str(v.get(k, "-")) for k in names) + " |")
    lines.append("")
    lines.append(f"Runs (on / off): submit {w['on']['submit']} / {w['off']['submit']}, "
                 f"claim+complete {w['on']['claim_complete']} / {w['off']['claim_complete']}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                    default=[1_000_000, 10_000_000], help="cumulative job counts to measure at")
    ap.add_argument("--slow-n", type=int, default=5, help="samples of each scanning read")
    ap.add_argument("--fast-n", type=int, default=200, help="samples of each counts read")
    ap.add_argument("--unfolded", type=int, default=20_000, help="delta rows for the unfolded read")
    ap.add_argument("--write-jobs", type=int, default=20_000, help="jobs per write run")
    ap.add_argument("--sql-rows", type=int, default=20_000, help="rows per SQL-only write run")
    ap.add_argument("--runs", type=int, default=3, help="write runs per variant (max 3)")
    ap.add_argument("--budget-s", type=float, default=480, help="stop loading after this long")
    ap.add_argument("--quick", action="store_true", help="small; results as queue_stats-smoke")
    ap.add_argument("--out", default=None, help="results directory (default bench/results)")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.slow_n, args.fast_n = [2_000, 5_000], 3, 10
        args.unfolded, args.write_jobs, args.sql_rows, args.runs = 500, 1_000, 2_000, 1
    import uvloop

    report = uvloop.run(run(args))
    out = Path(args.out) if args.out else RESULTS
    name = "queue_stats-smoke" if args.quick else "queue_stats"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(report, indent=2))
    (out / f"{name}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
