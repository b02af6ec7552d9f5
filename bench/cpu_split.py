"""Where the CPU goes: CPU time per job of each process group while one workload runs.

On a 2-core machine every throughput figure is bounded by 2 CPU-seconds per second divided by
the CPU one job costs across all processes. This runs one workload on embedded PostgreSQL +
Valkey and reads user+system time from ``/proc`` for every process before and after, grouped as
postgres, valkey, workers, api, wrk and driver (this process):

  * ``process``: drain ``--jobs`` pre-submitted no-op jobs with 2 worker processes x 25;
  * ``bulk``: ``submit_many`` of ``--jobs`` jobs in calls of 5,000 (one caller);
  * ``http``: ``POST /api/v1/jobs`` at saturation from wrk (256 connections, 6 s) into
    2 uvicorn workers, as scenario 2 of the suite.

Reports jobs/s, CPU µs per job per group, and the ceiling they imply: 2 cores / total.
Results: ``bench/results/cpu_split.{json,md}``.

    python bench/cpu_split.py                       # all three, 100,000 jobs
    python bench/cpu_split.py --jobs 2000 --only bulk --out /tmp/x    # smoke
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import uvloop

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import report  # noqa: E402
import stores  # noqa: E402
import suite  # noqa: E402
import throughput  # noqa: E402

from jobline.shared.core import jobs  # noqa: E402
from jobline.shared.platform.config import Settings  # noqa: E402
from jobline.shared.platform.connections import connect  # noqa: E402
from jobline.shared.security.auth import create_key  # noqa: E402

RESULTS = report.RESULTS
_HZ = os.sysconf("SC_CLK_TCK")


def group_of(cmdline: str) -> str | None:
    if "jobline worker" in cmdline or "-m jobline worker" in cmdline:
        return "workers"
    if "uvicorn" in cmdline or "multiprocessing" in cmdline:
        return "api"
    if cmdline.startswith("wrk"):
        return "wrk"
    if "postgres" in cmdline:
        return "postgres"
    if "valkey" in cmdline or "redis-server" in cmdline:
        return "valkey"
    return None


def snapshot() -> dict[tuple[str, str], float]:
    """CPU seconds so far of every process in a known group (a process that exits between two
    snapshots loses its last interval; the workloads keep theirs alive until measured)."""
    out: dict[tuple[str, str], float] = {}
    me = str(os.getpid())
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        group = "driver" if pid == me else group_of(cmd)
        if group is not None:
            out[(group, pid)] = (int(fields[11]) + int(fields[12])) / _HZ
    return out


class Sampler:
    """Keeps the latest CPU reading of every process seen while the workload runs."""

    def __init__(self) -> None:
        self.base = snapshot()
        self.last: dict[tuple[str, str], float] = dict(self.base)
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.last.update(snapshot())
            await asyncio.sleep(0.2)  # sampling period of the CPU readings

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> dict[str, float]:
        assert self._task is not None
        self._task.cancel()
        self.last.update(snapshot())
        used: dict[str, float] = collections.Counter()
        for key, v in self.last.items():
            used[key[0]] += v - self.base.get(key, 0.0)
        return dict(used)


def per_job(used: dict[str, float], n: float, rate: float) -> dict[str, Any]:
    us = {g: round(s / n * 1e6, 1) for g, s in sorted(used.items(), key=lambda kv: -kv[1])}
    total = sum(us.values())
    return {"jobs": int(n), "jobs_per_s": round(rate), "cpu_us_per_job": us,
            "total_cpu_us_per_job": round(total, 1),
            "ceiling_jobs_per_s_on_2_cores": round(2e6 / total) if total else None}


async def w_process(settings: Settings, n: int) -> dict[str, Any]:
    deps = await connect(settings)
    try:
        for start in range(0, n, 5000):
            await jobs.submit_many(deps, [throughput.noop(i)
                                          for i in range(start, min(n, start + 5000))])
    finally:
        await deps.close()
    env = suite.Env(settings, suite.SIZES["full"])
    sampler = Sampler()
    sampler.start()
    procs = env.workers()
    try:
        deps = await connect(settings)
        try:
            await suite.wait_completed(deps, n, 600, every=0.05)
            rate = await suite.middle_rate(deps)
        finally:
            await deps.close()
        used = sampler.stop()  # before the workers exit, so their CPU is counted
    finally:
        suite.stop(procs)
    return per_job(used, n, rate)


async def w_bulk(settings: Settings, n: int) -> dict[str, Any]:
    deps = await connect(settings)
    try:
        await jobs.submit_many(deps, [throughput.noop(0)])  # the queue exists, as in use
        specs = [throughput.noop(i) for i in range(n)]
        sampler = Sampler()
        sampler.start()
        t0 = time.perf_counter()
        for start in range(0, n, 5000):
            await jobs.submit_many(deps, specs[start:start + 5000])
        rate = n / (time.perf_counter() - t0)
        return per_job(sampler.stop(), n, rate)
    finally:
        await deps.close()


async def w_http(settings: Settings) -> dict[str, Any]:
    if not shutil.which("wrk"):
        return {"error": "wrk not installed"}
    env = suite.Env(settings, suite.SIZES["full"])
    deps = await connect(settings)
    try:
        _, key = await create_key(deps, "developer", "cpu-split")
    finally:
        await deps.close()
    os.environ["JOBLINE_API_KEY"] = key
    port = suite.free_port()
    api = suite.api_processes(env, port, 2)
    try:
        await asyncio.to_thread(suite.wait_http, f"http://127.0.0.1:{port}/healthz")
        body = json.dumps({"queue": "http", "jobType": "demo.noop", "payload": {"n": 1}})
        sampler = Sampler()
        sampler.start()
        r = await asyncio.to_thread(suite.load, f"http://127.0.0.1:{port}/api/v1/jobs", body, 0,
                                    6.0, "wrk")
        used = sampler.stop()
    finally:
        suite.stop([api])
    return per_job(used, r["rate"] * 6.0, r["rate"])


async def run(args: argparse.Namespace) -> dict[str, Any]:
    async with stores.local("jobline-cpusplit-", external=False) as services:
        settings = Settings().with_(database_url=services.database_url,
                                    redis_url=services.redis_url, redis_prefix="bench")
        env = suite.Env(settings, suite.SIZES["full"])
        out: dict[str, Any] = {}
        for name in args.only.split(","):
            await env.reset()
            if name == "process":
                out[name] = await w_process(settings, args.jobs)
            elif name == "bulk":
                out[name] = await w_bulk(settings, args.jobs)
            elif name == "http":
                out[name] = await w_http(settings)
            else:
                raise SystemExit(f"unknown workload {name!r}")
        return {"results": out, "settings": {"jobs": args.jobs, "durable": True},
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                "load_avg_1m_at_start": round(os.getloadavg()[0], 2)}


def markdown(report: dict[str, Any], name: str) -> str:
    lines = [f"# {name}", "", f"machine: {report['machine']}", "",
             f"settings: {report['settings']}", "",
             "| workload | jobs/s | CPU µs per job, by process group | total µs/job | "
             "2-core ceiling jobs/s |", "|---|---:|---|---:|---:|"]
    for w, r in report["results"].items():
        if "error" in r:
            lines.append(f"| {w} | {r['error']} | | | |")
            continue
        split = ", ".join(f"{g} {v}" for g, v in r["cpu_us_per_job"].items() if v >= 0.05)
        lines.append(f"| {w} | {r['jobs_per_s']:,} | {split} | {r['total_cpu_us_per_job']} | "
                     f"{r['ceiling_jobs_per_s_on_2_cores']:,} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=100_000)
    p.add_argument("--only", default="process,bulk,http")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    report.write(uvloop.run(run(args)), "cpu_split", args.out, markdown)


if __name__ == "__main__":
    main()
