"""Delayed-job lateness benchmark: how late do jobs due at a given time actually start?

N no-op jobs (default 10,000) are submitted with ``scheduledFor`` spread evenly over ``--spread``
seconds, starting ``--lead`` seconds out, to a queue served by real worker processes and a real
scheduler process (the delayed-job timer). Lateness = handler start (``started_at``, recorded by
the claim in PostgreSQL) minus ``scheduled_for``. Reports p50 / p90 / p99 / max (ms) as JSON and
markdown in ``bench/results/delayed.{json,md}`` (``--quick``: ``delayed-smoke``). The issue's
target: p99 <= 50 ms.

    python bench/delayed.py                        # 10,000 jobs over 10 s
    python bench/delayed.py --quick                # 300 jobs over 1 s (run by the test suite)

Uses DATABASE_URL/REDIS_URL if set, else starts embedded PostgreSQL + Valkey in a temp dir.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import stores

from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import connect

RESULTS = Path(__file__).parent / "results"
QUEUE = "delayed-bench"


async def measure(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    deps = await connect(settings)
    env = dict(os.environ, DATABASE_URL=settings.database_url or "",
               REDIS_URL=settings.redis_url or "", JOBLINE_REDIS_PREFIX=settings.redis_prefix)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [subprocess.Popen([sys.executable, "-m", "jobline", "scheduler"], env=env, **quiet)]
    procs += [subprocess.Popen(
        [sys.executable, "-m", "jobline", "worker", "--app", "jobline.demo", "--queues", QUEUE,
         "--concurrency", str(args.concurrency)], env=env, **quiet)
        for _ in range(args.processes)]
    try:
        deadline = time.monotonic() + 60
        while await deps.redis.scard(f"{settings.redis_prefix}:workers") < args.processes:
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not start")
            await asyncio.sleep(0.05)  # start-up probe, not a measurement
        n = args.jobs
        start_ms = int(time.time() * 1000) + int(args.lead * 1000)
        step = args.spread * 1000 / n
        specs = [JobSpec(queue=QUEUE, job_type="demo.noop", payload={"i": i},
                         scheduled_for_ms=start_ms + int(i * step)) for i in range(n)]
        t0 = time.perf_counter()
        for i in range(0, n, 5000):
            await jobs.submit_many(deps, specs[i:i + 5000])
        submit_s = time.perf_counter() - t0
        if int(time.time() * 1000) > start_ms:
            raise RuntimeError(f"submission took {submit_s:.1f}s, longer than --lead")
        deadline = time.monotonic() + args.lead + args.spread + 120
        while await deps.pool.fetchval(
                "SELECT count(*) FROM jobs WHERE queue_name = $1 AND status = 'completed'",
                QUEUE) < n:
            if time.monotonic() > deadline:
                raise RuntimeError("jobs did not all complete")
            await asyncio.sleep(0.1)  # progress probe
        row = await deps.pool.fetchrow(
            """SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY l) AS p50,
                      percentile_cont(0.9) WITHIN GROUP (ORDER BY l) AS p90,
                      percentile_cont(0.99) WITHIN GROUP (ORDER BY l) AS p99,
                      max(l) AS max, min(l) AS min, count(*) AS n,
                      count(*) FILTER (WHERE l < 0) AS early
                 FROM (SELECT extract(epoch FROM started_at - scheduled_for) * 1000 AS l
                         FROM jobs WHERE queue_name = $1) x""", QUEUE)
        return {"jobs": int(row["n"]), "submit_s": round(submit_s, 3),
                "lateness_ms": {k: round(float(row[k]), 2)
                                for k in ("p50", "p90", "p99", "max", "min")},
                "started_early": int(row["early"])}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
        await deps.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with stores.local("jobline-bench-delayed-") as services:
        settings = Settings().with_(database_url=services.database_url,
                                    redis_url=services.redis_url, redis_prefix="bench-delayed")
        result = await measure(settings, args)
        return {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()},
            "settings": {"jobs": args.jobs, "spread_s": args.spread, "lead_s": args.lead,
                         "processes": args.processes, "concurrency": args.concurrency,
                         "durable": True},
            "results": result,
            "target": {"p99_ms": 50, "met": result["lateness_ms"]["p99"] <= 50},
        }


def write(report: dict[str, Any], out: Path, name: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    r = report["results"]
    lat = r["lateness_ms"]
    lines = [f"# {name}", "", f"settings: {report['settings']}", "",
             "Lateness = handler start (started_at) - scheduledFor, in ms.", "",
             "| jobs | p50 | p90 | p99 | max | min | started early |",
             "|---:|---:|---:|---:|---:|---:|---:|",
             f"| {r['jobs']:,} | {lat['p50']} | {lat['p90']} | {lat['p99']} | {lat['max']} "
             f"| {lat['min']} | {r['started_early']} |", "",
             f"target p99 <= 50 ms: {'met' if report['target']['met'] else 'NOT met'}"]
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--spread", type=float, default=10.0, help="seconds the due times span")
    ap.add_argument("--lead", type=float, default=5.0, help="seconds until the first is due")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=25)
    ap.add_argument("--quick", action="store_true",
                    help="300 jobs over 1 s, results named delayed-smoke")
    ap.add_argument("--out", default=None, help="results directory (default bench/results)")
    args = ap.parse_args()
    if args.quick:
        args.jobs, args.spread, args.lead = min(args.jobs, 300), 1.0, 3.0
    import uvloop

    report = uvloop.run(run(args))
    write(report, Path(args.out) if args.out else RESULTS,
          "delayed-smoke" if args.quick else "delayed")
    print(json.dumps(report["results"], indent=2))


if __name__ == "__main__":
    main()
