"""Remote-worker throughput: no-op jobs processed by `jobline worker --remote` through a uvicorn
API process, next to a direct worker on the same machine for scale.

Every figure is durable (completions committed in PostgreSQL), timed from the first claim to the
last completion. Results: ``bench/results/remote_worker.{json,md}``.

    python bench/remote_worker.py --jobs 5000 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import stores

from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import connect
from jobline.shared.security.auth import create_key

RESULTS = Path(__file__).parent / "results"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def timed_run(settings: Settings, n: int, worker_args: list[str],
                    worker_env: dict[str, str]) -> float:
    deps = await connect(settings)
    try:
        await deps.pool.execute("TRUNCATE jobs, job_attempts CASCADE")
        await deps.redis.flushdb()
        for start in range(0, n, 5000):
            await jobs.submit_many(deps, [JobSpec(queue="bench", job_type="demo.noop",
                                                  payload={"i": i})
                                          for i in range(start, min(n, start + 5000))])
        w = subprocess.Popen([sys.executable, "-m", "jobline", "worker", "--app", "jobline.demo",
                              "--queues", "bench", *worker_args], env=worker_env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 600
            while await deps.pool.fetchval(
                    "SELECT count(*) FROM jobs WHERE status = 'completed'") < n:
                if time.monotonic() > deadline:
                    raise RuntimeError("timed out")
                await asyncio.sleep(0.05)  # benchmark progress probe
            row = await deps.pool.fetchrow(
                "SELECT min(started_at) AS a, max(completed_at) AS b FROM jobs")
            return float(n / (row["b"] - row["a"]).total_seconds())
        finally:
            w.terminate()
            w.wait(30)
    finally:
        await deps.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with stores.local("jobline-bench-remote-", external=False) as services:
        port = free_port()
        api = None
        try:
            settings = Settings().with_(database_url=services.database_url,
                                        redis_url=services.redis_url, redis_prefix="bench")
            server_env = dict(os.environ, DATABASE_URL=services.database_url,
                              REDIS_URL=services.redis_url, JOBLINE_REDIS_PREFIX="bench",
                              JOBLINE_HOME=str(services.home))
            api = subprocess.Popen([sys.executable, "-m", "jobline", "api", "--port", str(port)],
                                   env=server_env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
            url = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    urllib.request.urlopen(f"{url}/readyz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)  # waiting for the API process to listen
            remote_env = {k: v for k, v in os.environ.items()
                          if k not in ("DATABASE_URL", "REDIS_URL")}
            remote_env["JOBLINE_HOME"] = str(services.home / "remote")
            c = str(args.concurrency)
            keyed = await connect(settings, pool_size=1)
            try:
                _, api_key = await create_key(keyed, "developer", "remote bench")
            finally:
                await keyed.close()
            scenarios: dict[str, list[float]] = {}
            for _ in range(args.runs):
                scenarios.setdefault(f"remote_worker_noop_jobs_per_s_c{c}", []).append(
                    await timed_run(settings, args.jobs, ["--remote", url, "--api-key", api_key,
                                                             "--concurrency", c],
                                    remote_env))
                scenarios.setdefault(f"direct_worker_noop_jobs_per_s_c{c}", []).append(
                    await timed_run(settings, args.jobs, ["--concurrency", c], server_env))
            return {
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "settings": {"jobs": args.jobs, "runs": args.runs, "concurrency": args.concurrency,
                             "api": "1 uvicorn process", "durable": True},
                "results": {k: {"median": statistics.median(v), "min": min(v), "max": max(v),
                                "runs": v} for k, v in scenarios.items()},
            }
        finally:
            if api is not None:
                api.terminate()
                api.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jobs", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    report = asyncio.run(run(args))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "remote_worker.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["# remote_worker", "", f"settings: {report['settings']}", "",
             "| scenario | median | min | max |", "|---|---:|---:|---:|"]
    for k, v in report["results"].items():
        lines.append(f"| {k} | {v['median']:,.0f} | {v['min']:,.0f} | {v['max']:,.0f} |")
    (args.out / "remote_worker.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
