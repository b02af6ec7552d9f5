"""Throughput benchmark: durable submit (in-process) and processing of no-op jobs.

Every figure is durable: a submit counts once its row is committed in PostgreSQL, a job counts
once its completion is committed. Results go to ``bench/results/throughput.{json,md}`` with the
median and spread of ``--runs`` runs (the machines are shared and noisy).

    python bench/throughput.py --jobs 20000 --runs 3            # full
    python bench/throughput.py --jobs 500 --runs 1 --quick       # smoke (run by make test)

Uses DATABASE_URL/REDIS_URL if set, else starts embedded PostgreSQL + Valkey in a temp dir.
PostgreSQL runs with its durable defaults (fsync on, synchronous_commit on).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import stores

from jobline.shared.core import jobs
from jobline.shared.core.group_commit import GroupCommitter
from jobline.shared.core.models import JobSpec
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import connect

RESULTS = Path(__file__).parent / "results"


def noop(i: int) -> JobSpec:
    return JobSpec(queue="bench", job_type="demo.noop", payload={"i": i})


async def reset(dsn: str, settings: Settings) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("TRUNCATE jobs, job_attempts, idempotency_keys, queues")
    finally:
        await conn.close()
    deps = await connect(settings)
    try:
        await deps.redis.flushdb()
    finally:
        await deps.close()


async def bench_submit_sequential(settings: Settings, n: int) -> float:
    deps = await connect(settings)
    try:
        t0 = time.perf_counter()
        for i in range(n):
            await jobs.submit(deps, noop(i), positions=False)
        return n / (time.perf_counter() - t0)
    finally:
        await deps.close()


async def bench_submit_concurrent(settings: Settings, n: int, clients: int = 200) -> float:
    deps = await connect(settings, pool_size=8)
    try:
        async with GroupCommitter(deps) as gc:
            it = iter(range(n))

            async def client() -> None:
                for i in it:
                    await gc.submit(noop(i))

            t0 = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(clients)))
            return n / (time.perf_counter() - t0)
    finally:
        await deps.close()


async def bench_submit_bulk(settings: Settings, n: int, batch: int = 5000,
                            streams: int = 1) -> float:
    """``submit_many`` calls of ``batch`` jobs; ``streams`` callers at once. One stream runs its
    stages (build rows, PostgreSQL, Valkey) one after another; a second keeps both cores busy."""
    deps = await connect(settings)
    try:
        starts = list(range(0, n, batch))

        async def stream(k: int) -> None:
            for start in starts[k::streams]:
                await jobs.submit_many(deps, [noop(i) for i in range(start, min(n, start + batch))])

        t0 = time.perf_counter()
        await asyncio.gather(*(stream(k) for k in range(streams)))
        return n / (time.perf_counter() - t0)
    finally:
        await deps.close()


async def bench_process(settings: Settings, n: int, processes: int, concurrency: int) -> float:
    """Pre-submit n jobs, start worker processes, time first claim -> last completion commit."""
    deps = await connect(settings)
    try:
        for start in range(0, n, 5000):
            await jobs.submit_many(deps, [noop(i) for i in range(start, min(n, start + 5000))])
        env = dict(os.environ, DATABASE_URL=settings.database_url or "",
                   REDIS_URL=settings.redis_url or "", JOBLINE_REDIS_PREFIX=settings.redis_prefix)
        workers = [subprocess.Popen(
            [sys.executable, "-m", "jobline", "worker", "--app", "jobline.demo", "--queues",
             "bench", "--concurrency", str(concurrency)], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(processes)]
        try:
            deadline = time.monotonic() + 600
            while True:
                done = await deps.pool.fetchval(
                    "SELECT count(*) FROM jobs WHERE status = 'completed'")
                if done >= n or time.monotonic() > deadline:
                    break
                # Progress probe, not the measurement (that comes from the jobs' own timestamps):
                # a count over 100k rows costs PostgreSQL ~5 ms, so probing every 50 ms took
                # ~10% of a core from the system being measured.
                await asyncio.sleep(0.25)
            row = await deps.pool.fetchrow(
                "SELECT min(started_at) AS a, max(completed_at) AS b, count(*) AS n FROM jobs "
                "WHERE status = 'completed'")
            if row["n"] < n:
                raise RuntimeError(f"only {row['n']} of {n} jobs completed")
            return float(n / (row["b"] - row["a"]).total_seconds())
        finally:
            for w in workers:
                w.terminate()
            for w in workers:
                w.wait(30)
    finally:
        await deps.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with stores.local("jobline-bench-") as services:
        settings = Settings().with_(database_url=services.database_url,
                                    redis_url=services.redis_url, redis_prefix="bench")
        scenarios: dict[str, list[float]] = {}
        n = args.jobs
        for _ in range(args.runs):
            plan = [
                ("submit_sequential_jobs_per_s", lambda: bench_submit_sequential(
                    settings, min(n, 2000))),
                ("submit_concurrent_single_jobs_per_s", lambda: bench_submit_concurrent(
                    settings, n)),
                ("submit_bulk_jobs_per_s", lambda: bench_submit_bulk(settings, n)),
                (f"process_noop_jobs_per_s_{args.processes}x{args.concurrency}",
                 lambda: bench_process(settings, n, args.processes, args.concurrency)),
            ]
            for name, fn in plan:
                await reset(services.database_url, settings)
                scenarios.setdefault(name, []).append(await fn())
        return {
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()},
            "settings": {"jobs": n, "runs": args.runs, "processes": args.processes,
                         "concurrency": args.concurrency, "durable": True},
            "results": {k: {"median": statistics.median(v), "min": min(v), "max": max(v),
                            "runs": v} for k, v in scenarios.items()},
        }


def write(report: dict[str, Any], name: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2))
    lines = [f"# {name}", "", f"settings: {report['settings']}", "",
             "| scenario | median | min | max |", "|---|---:|---:|---:|"]
    for k, v in report["results"].items():
        lines.append(f"| {k} | {v['median']:,.0f} | {v['min']:,.0f} | {v['max']:,.0f} |")
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=25)
    ap.add_argument("--quick", action="store_true", help="write results as throughput-smoke")
    ap.add_argument("--out", default=None, help="results directory (default bench/results)")
    args = ap.parse_args()
    import uvloop

    report = uvloop.run(run(args))
    global RESULTS
    if args.out:
        RESULTS = Path(args.out)
    write(report, "throughput-smoke" if args.quick else "throughput")
    print(json.dumps(report["results"], indent=2))


if __name__ == "__main__":
    main()
