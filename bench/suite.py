"""The benchmark suite: the ten scenarios of issue 7, durable, on one machine (``make bench``).

Every figure counts only work committed in PostgreSQL (fsync and synchronous_commit on): a
submit once its row is committed, a job once its completion is committed. Each scenario runs
``--runs`` times (default 3) and reports the median and the spread (min..max) of every metric;
the peers (scenario 10) run once, side by side with Jobline, on the same Valkey.

    python bench/suite.py                   # full suite, results in bench/results/suite.{json,md}
    python bench/suite.py --small --runs 1  # seconds-long version of every scenario (make test)
    python bench/suite.py --only submit,idle_latency --runs 3

Scenarios (``--only`` names): submit, http, process, steady, idle_latency, backlog, delayed, dlq,
crash, peers. Uses DATABASE_URL/REDIS_URL if set, else embedded PostgreSQL + Valkey in /dev/shm.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import delayed as delayed_bench  # noqa: E402
import redis.exceptions  # noqa: E402
import stores  # noqa: E402
import throughput  # noqa: E402

from jobline.shared.core import jobs  # noqa: E402
from jobline.shared.core.group_commit import GroupCommitter  # noqa: E402
from jobline.shared.core.models import JobSpec, Outcome  # noqa: E402
from jobline.shared.platform.config import Settings  # noqa: E402
from jobline.shared.platform.connections import Deps, connect, create_redis  # noqa: E402
from jobline.shared.retry import dlq  # noqa: E402
from jobline.shared.security.auth import create_key  # noqa: E402

RESULTS = HERE / "results"
ALL = ["submit", "http", "process", "steady", "idle_latency", "backlog", "delayed", "dlq",
       "crash", "peers"]
QUIET: dict[str, Any] = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}

#: Scenario sizes: full (make bench) and small (make test).
SIZES = {
    "full": dict(submit_jobs=20_000, seq_jobs=2_000, http_s=6.0, http_rates=[1000, 5000, 10000],
                 bulk_http_requests=40, process_jobs=100_000, steady=[("normal", 1000, 30),
                                                                     ("spike", 10000, 30)],
                 idle_jobs=500, backlog_jobs=1_000_000, backlog_drain=100_000,
                 delayed_jobs=10_000, delayed_spread=10.0, dlq_jobs=10_000,
                 crash_rate=1000, crash_s=20, peer_jobs=20_000, peer_idle=200),
    "small": dict(submit_jobs=300, seq_jobs=100, http_s=1.5, http_rates=[200],
                  bulk_http_requests=3, process_jobs=500, steady=[("normal", 200, 3)],
                  idle_jobs=20, backlog_jobs=3_000, backlog_drain=1_000, delayed_jobs=200,
                  delayed_spread=1.0, dlq_jobs=200, crash_rate=200, crash_s=6, peer_jobs=500,
                  peer_idle=10),
}


def noop(i: int, queue: str = "bench", sleep_ms: int = 0) -> JobSpec:
    if sleep_ms:
        return JobSpec(queue=queue, job_type="demo.sleep", payload={"ms": sleep_ms})
    return JobSpec(queue=queue, job_type="demo.noop", payload={"i": i})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


class Env:
    """Services + settings shared by every scenario."""

    def __init__(self, settings: Settings, size: dict[str, Any]) -> None:
        self.settings = settings
        self.size = size
        self.proc_env = dict(os.environ, DATABASE_URL=settings.database_url or "",
                             REDIS_URL=settings.redis_url or "",
                             JOBLINE_REDIS_PREFIX=settings.redis_prefix,
                             PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get(
                                 "PYTHONPATH", "")]))

    async def reset(self) -> None:
        deps = await connect(self.settings)
        try:
            await deps.pool.execute(
                "TRUNCATE jobs, job_attempts, idempotency_keys, queues, job_events, "
                "job_dependencies, job_batches CASCADE")
            # Start every measurement right after a checkpoint (as pgbench does), so a timed
            # checkpoint's full-page writes do not land inside one run's short window by chance.
            await deps.pool.execute("CHECKPOINT")
            # SYNC: a lazy (background) flush would still be freeing the previous run's memory
            # while the backlog scenario measures used_memory
            await deps.redis.execute_command("FLUSHDB", "SYNC")
            # Likewise compact Valkey's append-only file now: after a big scenario (1M jobs)
            # the automatic AOF rewrite otherwise runs, forked, inside the next measurement.
            if int((await deps.redis.info("persistence")).get("aof_enabled", 0)):
                with contextlib.suppress(redis.exceptions.ResponseError):  # already running
                    await deps.redis.bgrewriteaof()
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    p = await deps.redis.info("persistence")
                    if not int(p.get("aof_rewrite_in_progress", 0)) and not int(
                            p.get("aof_rewrite_scheduled", 0)):
                        break
                    await asyncio.sleep(0.1)  # harness wait for a background rewrite
        finally:
            await deps.close()

    def workers(self, processes: int = 2, concurrency: int = 25, queues: str = "bench",
                app: str = "jobline.demo", extra_env: dict[str, str] | None = None
                ) -> list[subprocess.Popen[bytes]]:
        env = dict(self.proc_env, **(extra_env or {}))
        return [subprocess.Popen(
            [sys.executable, "-m", "jobline", "worker", "--app", app, "--queues", queues,
             "--concurrency", str(concurrency)], env=env, **QUIET) for _ in range(processes)]

    async def wait_workers(self, deps: Deps, n: int) -> None:
        deadline = time.monotonic() + 60
        while await deps.redis.scard(f"{self.settings.redis_prefix}:workers") < n:
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not register")
            await asyncio.sleep(0.05)  # start-up probe


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


async def count_completed(deps: Deps, queue: str = "bench") -> int:
    return int(await deps.pool.fetchval(
        "SELECT count(*) FROM jobs WHERE queue_name = $1 AND status = 'completed'", queue))


async def wait_completed(deps: Deps, n: int, timeout: float, queue: str = "bench",
                         every: float = 0.1) -> None:
    """Until ``n`` jobs of ``queue`` completed. The probe is Valkey's depth of the queue (three
    ``ZCARD``): a ``count(*)`` over ``jobs`` every 250 ms cost PostgreSQL ~11 µs of time per
    drained job at 60,000 jobs (pg_stat_statements), measurement overhead inside the window
    that BullMQ's harness, counting in its workers, does not pay. A job leaves Valkey's ready,
    delayed and leased sets only after its outcome committed (the lease is released after the
    completion's commit), so an empty queue there means done; one ``count(*)`` then confirms."""
    deadline = time.monotonic() + timeout
    while True:
        d = (await deps.dispatch.depth([queue]))[queue]
        if d["ready"] + d["delayed"] + d["leased"] == 0 and \
                await count_completed(deps, queue) >= n:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"fewer than {n} jobs completed within {timeout}s")
        await asyncio.sleep(every)  # progress probe


# --- 1. submit, in-process ------------------------------------------------------------------

async def s_submit(env: Env) -> dict[str, float]:
    z, s = env.size, env.settings
    out = {}
    await env.reset()
    out["sequential_jobs_per_s"] = await throughput.bench_submit_sequential(s, z["seq_jobs"])
    await env.reset()
    out["concurrent_single_jobs_per_s"] = await throughput.bench_submit_concurrent(
        s, z["submit_jobs"])
    await env.reset()
    out["bulk_jobs_per_s"] = await throughput.bench_submit_bulk(s, z["submit_jobs"])
    await env.reset()
    out["bulk_2_streams_jobs_per_s"] = await throughput.bench_submit_bulk(s, z["submit_jobs"],
                                                                         streams=2)
    return out


# --- 2. submit over HTTP --------------------------------------------------------------------

def api_processes(env: Env, port: int, workers: int) -> subprocess.Popen[bytes]:
    import importlib.util
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "jobline.api.app:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--loop",
         "uvloop", "--http", http, "--no-access-log", "--log-level", "warning", "--no-proxy-headers", "--no-server-header"],
        env=env.proc_env, **QUIET)


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # start-up probe of another process


def load(url: str, body: str, rate: int, seconds: float, tool: str) -> dict[str, float]:
    if tool == "wrk":
        # Enough connections that the API's group commit gets full batches: with 64 the API
        # processes sat mostly idle waiting on flushes (6.7k/s); with 256, 12.2k/s.
        conns = 256 if rate == 0 else max(16, min(400, rate // 25))
        r = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{max(1, round(seconds))}s",
                            "-s", str(HERE / "wrk_submit.lua"), url],
                           env=dict(os.environ, WRK_BODY=body,
                                    WRK_INTERVAL_MS=str(2 * 1000 / rate if rate else 0)),
                           capture_output=True, text=True, timeout=seconds + 60, check=True)
        line = next(x for x in r.stdout.splitlines() if x.startswith("WRKJSON "))
        w = json.loads(line[8:])
        ok = w["requests"] - w["non2xx"]
        return {"rate": ok / (w["duration_us"] / 1e6), "p50_ms": w["p50_us"] / 1000,
                "p99_ms": w["p99_us"] / 1000, "errors": w["errors"] + w["non2xx"],
                "last_bad_status": w["last_bad_status"]}
    conns = 64 if rate == 0 else max(8, min(128, rate // 50))
    r = subprocess.run([sys.executable, str(HERE / "loadgen.py"), "--url", url, "--body", body,
                        "--rate", str(rate), "--duration", str(seconds), "--connections",
                        str(conns)], capture_output=True, text=True, timeout=seconds + 60,
                       check=True)
    g = json.loads(r.stdout)
    return {"rate": g["rate"], "p50_ms": g["p50_ms"], "p99_ms": g["p99_ms"],
            "errors": g["errors"]}


async def s_http(env: Env, tool: str, api_workers: int) -> dict[str, float]:
    z = env.size
    await env.reset()
    port = free_port()
    api = api_processes(env, port, api_workers)
    base = f"http://127.0.0.1:{port}"
    out: dict[str, float] = {}
    try:
        await asyncio.to_thread(wait_http, base + "/healthz")
        if not os.environ.get("JOBLINE_API_KEY"):
            # every API call needs a key: the load generators (wrk, loadgen.py) read this
            keyed = await connect(env.settings, pool_size=1)
            try:
                _, os.environ["JOBLINE_API_KEY"] = await create_key(keyed, "developer", "bench")
            finally:
                await keyed.close()
        body = json.dumps({"queue": "http", "jobType": "demo.noop", "payload": {"n": 1}})
        for rate in [*z["http_rates"], 0]:
            name = f"{rate}_per_s" if rate else "saturation"
            r = await asyncio.to_thread(load, base + "/api/v1/jobs", body, rate, z["http_s"],
                                        tool)
            if not r["rate"]:
                raise RuntimeError(f"HTTP {name}: no successful request ({r['errors']} errors)")
            # failures (non-2xx, socket errors, timeouts at saturation) are reported, not fatal
            out[f"{name}_errors"] = r["errors"]
            if r.get("last_bad_status"):
                out[f"{name}_last_bad_status"] = r["last_bad_status"]
            out[f"{name}_achieved_per_s"] = r["rate"]
            out[f"{name}_p50_ms"] = r["p50_ms"]
            out[f"{name}_p99_ms"] = r["p99_ms"]
            await env.reset()
        bulk = json.dumps({"jobs": [{"queue": "http", "jobType": "demo.noop",
                                     "payload": {"i": i}} for i in range(1000)]})
        import httpx
        headers = {"Content-Type": "application/json"}
        if os.environ.get("JOBLINE_API_KEY"):
            headers["X-Api-Key"] = os.environ["JOBLINE_API_KEY"]
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as c:
            sem = asyncio.Semaphore(4)

            async def post() -> None:
                async with sem:
                    r = await c.post("/api/v1/jobs/bulk", content=bulk)
                    r.raise_for_status()
            t0 = time.perf_counter()
            await asyncio.gather(*(post() for _ in range(z["bulk_http_requests"])))
            out["bulk_1000_per_request_jobs_per_s"] = (
                z["bulk_http_requests"] * 1000 / (time.perf_counter() - t0))
    finally:
        stop([api])
    return out


# --- 3. processing --------------------------------------------------------------------------

async def s_process(env: Env) -> dict[str, float]:
    await env.reset()
    rate = await throughput.bench_process(env.settings, env.size["process_jobs"], 2, 25)
    deps = await connect(env.settings)
    try:
        return {"jobs_per_s_2x25": rate, "jobs_per_s_2x25_middle_80pct": await middle_rate(deps)}
    finally:
        await deps.close()


# --- 4. steady state (and 9. crash under load) ----------------------------------------------

async def paced_submit(deps: Deps, rate: int, seconds: float, queue: str,
                       on_tick: Callable[[float], Awaitable[None]] | None = None,
                       sleep_ms: int = 0) -> int:
    """Submit ``rate`` jobs/s for ``seconds`` through a group committer, paced every 10 ms."""
    async with GroupCommitter(deps) as gc:
        t0 = time.perf_counter()
        sent = 0
        pending: set[asyncio.Task[Any]] = set()
        n = int(rate * seconds)
        while sent < n:
            elapsed = time.perf_counter() - t0
            target = min(n, int(elapsed * rate) + 1)
            while sent < target:
                t = asyncio.create_task(gc.submit(noop(sent, queue, sleep_ms)))
                pending.add(t)
                t.add_done_callback(pending.discard)
                sent += 1
            if on_tick is not None:
                await on_tick(elapsed)
            await asyncio.sleep(0.01)
        await asyncio.gather(*list(pending))
        return sent


async def latency_stats(deps: Deps, queue: str) -> dict[str, float]:
    row = await deps.pool.fetchrow(
        """SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY l) AS p50,
                  percentile_cont(0.99) WITHIN GROUP (ORDER BY l) AS p99, max(l) AS max
             FROM (SELECT extract(epoch FROM started_at - created_at) * 1000 AS l
                     FROM jobs WHERE queue_name = $1) x""", queue)
    return {k: round(float(row[k] or 0), 2) for k in ("p50", "p99", "max")}


async def s_steady(env: Env) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, rate, seconds in env.size["steady"]:
        await env.reset()
        deps = await connect(env.settings)
        procs = env.workers()
        try:
            await env.wait_workers(deps, 2)
            backlog: list[int] = []
            next_sample = [0.0]

            async def sample(elapsed: float, deps: Deps = deps, backlog: list[int] = backlog,
                             next_sample: list[float] = next_sample) -> None:
                if elapsed >= next_sample[0]:
                    next_sample[0] += 1.0
                    backlog.append(int(await deps.pool.fetchval(
                        "SELECT count(*) FROM jobs WHERE queue_name = 'bench' "
                        "AND status IN ('pending', 'processing')")))
            t0 = time.perf_counter()
            n = await paced_submit(deps, rate, seconds, "bench", sample)
            achieved = n / (time.perf_counter() - t0)
            await wait_completed(deps, n, 120)
            lat = await latency_stats(deps, "bench")
            out[f"{name}_{rate}_per_s_achieved_submit_per_s"] = achieved
            out[f"{name}_latency_p50_ms"] = lat["p50"]
            out[f"{name}_latency_p99_ms"] = lat["p99"]
            out[f"{name}_latency_max_ms"] = lat["max"]
            out[f"{name}_backlog_max"] = max(backlog) if backlog else 0
            out[f"{name}_backlog_series"] = backlog
        finally:
            stop(procs)
            await deps.close()
    return out


async def s_crash(env: Env) -> dict[str, Any]:
    """Kill one of two worker processes (50% of the workers) with SIGKILL under steady load.

    Its in-flight jobs come back when their leases expire (lease 2 s here, swept by a real
    scheduler). Recovery = kill until every job that was in flight in the killed process has
    completed elsewhere; lost = submitted - completed once the load is over (must be 0).
    """
    z = env.size
    await env.reset()
    deps = await connect(env.settings)
    fast = {"JOBLINE_LEASE_MS": "2000", "JOBLINE_SWEEP_MS": "250"}
    sched = subprocess.Popen([sys.executable, "-m", "jobline", "scheduler"],
                             env=dict(env.proc_env, **fast), **QUIET)
    procs = env.workers(extra_env=fast)
    killed_at: list[float] = []
    try:
        await env.wait_workers(deps, 2)

        async def maybe_kill(elapsed: float) -> None:
            if not killed_at and elapsed >= z["crash_s"] / 4:
                procs[0].send_signal(signal.SIGKILL)
                killed_at.append(time.time())
        # 10 ms jobs, so the killed process really has jobs in flight (a no-op is done in
        # microseconds); 50 workers x 100/s each = 5,000/s capacity, half after the kill.
        n = await paced_submit(deps, z["crash_rate"], z["crash_s"], "bench", maybe_kill,
                               sleep_ms=10)
        await wait_completed(deps, n, 120)
        lost = n - await count_completed(deps)
        row = await deps.pool.fetchrow(
            "SELECT count(*) AS n, max(completed_at) AS last FROM jobs "
            "WHERE queue_name = 'bench' AND attempts > 1")
        recovery = ((row["last"].timestamp() - killed_at[0]) if row["n"] else 0.0)
        lat = await latency_stats(deps, "bench")
        return {"submitted": n, "lost": lost, "jobs_reclaimed_after_kill": int(row["n"]),
                "recovery_s": round(recovery, 3), "latency_p99_ms": lat["p99"],
                "latency_max_ms": lat["max"]}
    finally:
        stop([*procs, sched])
        await deps.close()


# --- 5. idle latency ------------------------------------------------------------------------

async def s_idle_latency(env: Env) -> dict[str, float]:
    """One job at a time into an idle worker; submit call -> handler start. The handler pushes
    its own start time to a Redis list that this driver blocks on (BLPOP, no polling), the way
    the peers are measured, so claim and dispatch are both inside the figure."""
    await env.reset()
    deps = await connect(env.settings)
    waiter = create_redis(env.settings.redis_url or "", blocking=True)
    key = f"{env.settings.redis_prefix}:bench:lat"
    procs = env.workers(processes=1, concurrency=25, queues="idle", app="bench_handlers")
    try:
        await env.wait_workers(deps, 1)
        lat: list[float] = []
        for i in range(env.size["idle_jobs"] + 5):
            t = time.time()
            await jobs.submit(deps, JobSpec(queue="idle", job_type="bench.stamp",
                                            payload={"i": i}), positions=False)
            got = await waiter.blpop([key], timeout=10)
            if got is None:
                raise RuntimeError("idle job did not start")
            n, started = got[1].decode().split()
            assert int(n) == i, (n, i)
            if i >= 5:  # the first jobs warm connections and imports
                lat.append((float(started) - t) * 1000)
            await asyncio.sleep(0.01)  # let the worker finish and go idle again (back in BLPOP)
        done = await deps.pool.fetchval(
            "SELECT count(*) FROM jobs WHERE queue_name = 'idle' AND status = 'completed'")
        if done < len(lat):  # the figure only counts if the jobs were also recorded
            raise RuntimeError(f"only {done} of {len(lat)} idle jobs completed")
        return {"p50_ms": round(pct(lat, 0.5), 3), "p99_ms": round(pct(lat, 0.99), 3),
                "max_ms": round(max(lat), 3)}
    finally:
        stop(procs)
        await waiter.aclose()
        await deps.close()


# --- 6. 1M backlog --------------------------------------------------------------------------

async def middle_rate(deps: Deps, queue: str = "bench") -> float:
    """Jobs/s between the 10th and 90th percentile completion times of ``queue``'s completed
    jobs: the steady rate, without worker start-up skew or the last stragglers."""
    row = await deps.pool.fetchrow(
        """SELECT count(*) AS n,
                  extract(epoch FROM percentile_disc(0.9) WITHIN GROUP (ORDER BY completed_at)
                        - percentile_disc(0.1) WITHIN GROUP (ORDER BY completed_at)) AS s
             FROM jobs WHERE queue_name = $1 AND status = 'completed'""", queue)
    return float(row["n"]) * 0.8 / max(1e-6, float(row["s"] or 0))


async def s_backlog(env: Env) -> dict[str, float]:
    """Bulk-submit the backlog, measure what it costs to hold, then drain part of it with the
    same 2x25 workers as scenario 3 (progress read from Redis: counting a million rows in
    PostgreSQL while they drain would slow the drain it measures)."""
    z = env.size
    await env.reset()
    deps = await connect(env.settings)
    try:
        info0 = await deps.redis.info("memory")
        n = z["backlog_jobs"]
        t0 = time.perf_counter()
        for start in range(0, n, 10_000):
            await jobs.submit_many(deps, [noop(i) for i in range(start, min(n, start + 10_000))])
        submit_s = time.perf_counter() - t0
        info1 = await deps.redis.info("memory")
        ready = deps.dispatch.keys("bench").ready
        key_bytes = await deps.redis.memory_usage(ready, samples=0) or 0
        pg = await deps.pool.fetchval(
            "SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('jobs')")
        ev = await deps.pool.fetchval(
            "SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('job_events')")
        db = await deps.pool.fetchval("SELECT pg_database_size(current_database())")
        drain = z["backlog_drain"]
        procs = env.workers()
        try:
            deadline = time.monotonic() + 600
            while await deps.redis.zcard(ready) > n - drain:
                if time.monotonic() > deadline:
                    raise RuntimeError("backlog did not drain")
                await asyncio.sleep(0.05)  # progress probe (O(1) in Redis)
        finally:
            stop(procs)  # graceful: in-flight jobs finish and are committed
        rate = await middle_rate(deps)
        return {"jobs": n, "submit_s": round(submit_s, 2), "submit_jobs_per_s": n / submit_s,
                "redis_bytes_per_pending_job": round(
                    (info1["used_memory"] - info0["used_memory"]) / n, 1),
                "redis_ready_zset_bytes_per_job": round(key_bytes / n, 1),
                "pg_jobs_bytes_per_job": round(float(pg) / n, 1),
                "pg_job_events_bytes_per_job": round(float(ev or 0) / n, 1),
                "pg_database_mb": round(db / 1e6, 1), "drain_jobs_per_s": rate}
    finally:
        await deps.close()


# --- 7. delayed jobs ------------------------------------------------------------------------

async def s_delayed(env: Env) -> dict[str, float]:
    await env.reset()
    z = env.size
    args = SimpleNamespace(jobs=z["delayed_jobs"], spread=z["delayed_spread"],
                           lead=3.0 if z["delayed_jobs"] < 1000 else 5.0, processes=2,
                           concurrency=25)
    r = await delayed_bench.measure(env.settings, args)  # type: ignore[arg-type]
    lat = r["lateness_ms"]
    return {"lateness_p50_ms": lat["p50"], "lateness_p99_ms": lat["p99"],
            "lateness_max_ms": lat["max"], "started_early": r["started_early"]}


# --- 8. DLQ bulk retry ----------------------------------------------------------------------

async def s_dlq(env: Env) -> dict[str, float]:
    await env.reset()
    deps = await connect(env.settings)
    try:
        n = env.size["dlq_jobs"]
        for start in range(0, n, 5000):
            await jobs.submit_many(deps, [
                JobSpec(queue="dlq", job_type="demo.noop", payload={"i": i}, max_attempts=1)
                for i in range(start, min(n, start + 5000))])
        while True:  # dead-letter them through the core, as a worker would
            got = await jobs.claim_batch(deps, "bench-dlq", ["dlq"], 1000)
            if not got.jobs:
                break
            await jobs.fail(deps, [Outcome(j.id, j.token, ok=False, error="bench",
                                           error_type="bench", final=True) for j in got.jobs])
        dead = await deps.pool.fetchval(
            "SELECT count(*) FROM jobs WHERE status = 'dead_letter'")
        if dead != n:
            raise RuntimeError(f"{dead} of {n} jobs dead-lettered")
        t0 = time.perf_counter()
        ids = await dlq.retry_dead_letters(deps, dlq.DlqFilter(queue="dlq"))
        elapsed = time.perf_counter() - t0
        if len(ids) != n:
            raise RuntimeError(f"retried {len(ids)} of {n}")
        return {"jobs": n, "retry_s": round(elapsed, 4)}
    finally:
        await deps.close()


# --- driver ---------------------------------------------------------------------------------

def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in runs[0]:
        vals = [r[key] for r in runs if key in r]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals):
            out[key] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals),
                        "runs": vals}
        else:
            out[key] = {"runs": vals}
    return out


def versions() -> dict[str, str]:
    from importlib.metadata import version
    v = {"python": platform.python_version()}
    for pkg in ("jobline", "asyncpg", "redis", "uvloop", "uvicorn", "starlette"):
        try:
            v[pkg] = version(pkg)
        except Exception:  # a missing package is reported, not fatal
            v[pkg] = "n/a"
    return v


async def run(args: argparse.Namespace) -> dict[str, Any]:
    size = SIZES["small" if args.small else "full"]
    only = args.only.split(",") if args.only else ALL
    started = time.time()
    tool = args.http_tool or ("wrk" if shutil.which("wrk") and not args.small else "python")
    report: dict[str, Any] = {"scenarios": {}, "errors": {}}
    async with stores.local("jobline-suite-") as services:
        settings = Settings().with_(database_url=services.database_url,
                                    redis_url=services.redis_url, redis_prefix="bench")
        env = Env(settings, size)
        deps = await connect(settings)
        server = await deps.redis.info("server")
        pg_version = await deps.pool.fetchval("SHOW server_version")
        await deps.close()
        plan: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
            "submit": lambda: s_submit(env),
            "http": lambda: s_http(env, tool, args.api_workers),
            "process": lambda: s_process(env),
            "steady": lambda: s_steady(env),
            "idle_latency": lambda: s_idle_latency(env),
            "backlog": lambda: s_backlog(env),
            "delayed": lambda: s_delayed(env),
            "dlq": lambda: s_dlq(env),
            "crash": lambda: s_crash(env),
        }
        for name in only:
            if name == "peers":
                continue
            t0 = time.perf_counter()
            # the machine is shared: the 1-minute load average before each scenario says how
            # much else was running (our own processes included)
            report.setdefault("load_avg_1m_before", {})[name] = round(os.getloadavg()[0], 2)
            runs = []
            try:
                for _ in range(args.runs):
                    runs.append(await plan[name]())
            except Exception as exc:  # one broken scenario must not hide the rest
                report["errors"][name] = f"{type(exc).__name__}: {exc}"
            if runs:
                report["scenarios"][name] = summarize(runs)
            print(f"{name}: {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
        if "peers" in only:
            import peers
            report.setdefault("load_avg_1m_before", {})["peers"] = round(os.getloadavg()[0], 2)
            t0 = time.perf_counter()
            report["peers"] = await peers.run_all(env, size, args.small)
            print(f"peers: {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
        report["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                             "processor": platform.processor() or platform.machine(),
                             "mem_gb": round(os.sysconf("SC_PAGE_SIZE")
                                             * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}
        report["versions"] = dict(versions(), postgresql=str(pg_version),
                                  valkey=str(server.get("valkey_version")
                                             or server.get("redis_version")))
        report["settings"] = {"size": "small" if args.small else "full", "runs": args.runs,
                              "http_tool": tool, "api_workers": args.api_workers,
                              "workers": "2 processes x 25 concurrency", "durable": True,
                              "fsync": "on", "synchronous_commit": "on", **{
                                  k: v for k, v in size.items() if not isinstance(v, list)}}
        report["runtime_s"] = round(time.time() - started, 1)
        return report


def fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}"


def markdown(report: dict[str, Any], name: str) -> str:
    lines = [f"# {name}", "",
             f"machine: {report.get('machine')}", "", f"versions: {report.get('versions')}", "",
             f"settings: {report.get('settings')}", "",
             f"runtime: {report.get('runtime_s')} s", "",
             f"1-minute load average before each scenario: {report.get('load_avg_1m_before')}",
             "",
             "| scenario | metric | median | min | max |", "|---|---|---:|---:|---:|"]
    for scen, metrics in report["scenarios"].items():
        for metric, v in metrics.items():
            if "median" in v:
                lines.append(f"| {scen} | {metric} | {fmt(v['median'])} | {fmt(v['min'])} | "
                             f"{fmt(v['max'])} |")
    for scen, err in report["errors"].items():
        lines.append(f"| {scen} | FAILED | {err} | | |")
    if "peers" in report:
        import peers
        lines += ["", *peers.markdown(report["peers"])]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true", help="seconds-long sizes (make test)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="", help=f"comma-separated subset of {ALL}")
    ap.add_argument("--http-tool", choices=["wrk", "python"], default=None,
                    help="default: wrk if installed (full), else bench/loadgen.py")
    ap.add_argument("--api-workers", type=int, default=2, help="uvicorn worker processes")
    ap.add_argument("--out", default=None, help="results directory (default bench/results)")
    args = ap.parse_args()
    import uvloop

    report = uvloop.run(run(args))
    out = Path(args.out) if args.out else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    name = "suite-smoke" if args.small else "suite"
    (out / f"{name}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / f"{name}.md").write_text(markdown(report, name))
    print(markdown(report, name))
    sys.exit(1 if report["errors"] else 0)


if __name__ == "__main__":
    main()
