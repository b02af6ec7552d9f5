"""The shipped stack: what ``make run`` starts, draining a backlog, against itself without events
and against BullMQ (issue 14).

Each run gets fresh embedded PostgreSQL + Valkey (in ``/dev/shm``, via ``stores.local``) and
starts the processes ``jobline run`` starts, from the same function
(:func:`jobline.cli.stack_commands`): API, scheduler, workers (``jobline run --processes 2
--concurrency 25``: the 2 worker processes x 25 of the suite's drain are the stack's own workers
entry, not extra ones beside it) and the event relay (which folds the rollups and alerts; no
consumer process since). Then ``--jobs`` no-op jobs
are bulk-submitted to a paused queue, the queue is resumed, and the rate is read from
PostgreSQL: jobs / (last ``completed_at`` - first ``started_at``).

Configurations, interleaved run by run (on, off, bullmq, on, off, bullmq, ...) because the
machine is shared and noisy; the median of ``--runs`` each:

  * ``on``: as shipped (job events: outbox, relay folding rollups and alerts);
  * ``off``: ``JOBLINE_EVENTS=off`` in every process, and no relay;
  * ``bullmq``: BullMQ on a fresh Valkey of the same build with the same workload, through the
    peers' harness (``bench/peers.py``: ``addBulk`` of the jobs, then 2 node workers x 50).

For ``on`` and ``off`` the CPU time of every process tree of the stack (the postmaster with
its live and reaped backends, Valkey, each supervised entry with its children) is read from
``/proc`` at resume and when the last job is committed: CPU µs per job by process.
Results: ``bench/results/shipped.{json,md}``.

    python bench/shipped.py                      # 20,000 jobs, 3 runs of each configuration
    python bench/shipped.py --small --out /tmp/x # seconds long (make test)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psutil
import uvloop

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import peers  # noqa: E402
import report  # noqa: E402
import stores  # noqa: E402
import suite  # noqa: E402

from jobline.cli import stack_commands  # noqa: E402
from jobline.local import LocalServices  # noqa: E402
from jobline.shared.core import jobs  # noqa: E402
from jobline.shared.core.models import JobSpec  # noqa: E402
from jobline.shared.dispatch.queue_controls import pause_queue, resume_queue  # noqa: E402
from jobline.shared.platform.config import Settings  # noqa: E402
from jobline.shared.platform.connections import Deps, connect  # noqa: E402

RESULTS = report.RESULTS
QUEUE = "bench"
CONFIGS = ["on", "off", "bullmq"]
#: process groups of the CPU split, in report order
GROUPS = ["api", "workers", "relay", "consumers", "scheduler", "postgres", "valkey", "driver"]


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process tree so far: every live process's user+system time plus what
    the children it already reaped used (the kernel adds those to its cutime/cstime), so a
    PostgreSQL backend that exits inside the window is still counted."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def backend_cpu_s(postmaster: int) -> dict[int, float]:
    """CPU seconds so far of each of the postmaster's children (key its pid), and under key 0 the
    postmaster's own plus what the children it reaped used (a backend that exited)."""
    root = psutil.Process(postmaster)
    out: dict[int, float] = {}
    for c in root.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            t = c.cpu_times()
            out[c.pid] = t.user + t.system
    t = root.cpu_times()
    out[0] = t.user + t.system + t.children_user + t.children_system
    return out


async def backend_owners(deps: Deps, roots: dict[str, list[int]]) -> dict[int, str]:
    """pid -> owner of each backend: the stack group (``workers``, ``relay``, ...) or ``driver``
    (this process) at the client end of its TCP socket, else its ``backend_type``."""
    owner_of_port: dict[int, int] = {}
    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.pid:
            owner_of_port[conn.laddr.port] = conn.pid
    group_of: dict[int, str] = {pid: g for g, pids in roots.items() if g != "postgres"
                                for pid in pids}
    group_of[os.getpid()] = "driver"
    out: dict[int, str] = {}
    for r in await deps.pool.fetch(
            "SELECT pid, backend_type, client_port FROM pg_stat_activity"):
        pid = owner_of_port.get(r["client_port"] or -1)
        try:
            while pid is not None and pid not in group_of:
                parent = psutil.Process(pid).ppid()
                pid = parent if parent > 1 else None
        except psutil.NoSuchProcess:
            pid = None  # its client is gone: counted by its backend type
        out[int(r["pid"])] = group_of[pid] if pid is not None else str(r["backend_type"])
    return out


class Stack:
    """``make run``'s processes on given stores; stopped in ``jobline run``'s order."""

    def __init__(self, services: LocalServices, *, events: bool = True, processes: int = 2,
                 concurrency: int = 25, app: str = "jobline.demo",
                 extra_env: dict[str, str] | None = None) -> None:
        self.services = services
        self.events = events
        self.port = suite.free_port()
        self.settings = Settings().with_(database_url=services.database_url,
                                         redis_url=services.redis_url, api_port=self.port)
        self.home = Path(tempfile.mkdtemp(prefix="jobline-shipped-home-"))
        self.env = dict(os.environ, DATABASE_URL=services.database_url,
                        REDIS_URL=services.redis_url, JOBLINE_HOME=str(self.home),
                        JOBLINE_PORT=str(self.port), **(extra_env or {}))
        for k in ("JOBLINE_REDIS_PREFIX", "JOBLINE_EVENTS"):
            self.env.pop(k, None)
        if not events:
            self.env["JOBLINE_EVENTS"] = "off"
        self.commands = stack_commands(app, processes, concurrency, events=events)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.log = open(self.home / "stack.log", "wb")  # noqa: SIM115 - closed in stop()

    def start(self) -> None:
        for name, cmd in self.commands.items():
            self.procs[name] = subprocess.Popen(cmd, env=self.env, start_new_session=True,
                                                stdout=self.log, stderr=subprocess.STDOUT)

    async def wait_ready(self, deps: Deps, workers: int) -> None:
        await asyncio.to_thread(suite.wait_http, f"http://127.0.0.1:{self.port}/healthz")
        deadline = time.monotonic() + 90
        while await deps.redis.scard(f"{self.settings.redis_prefix}:workers") < workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers did not register; log {self.home / 'stack.log'}")
            await asyncio.sleep(0.05)  # start-up probe of other processes
        for name, p in self.procs.items():
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited with {p.returncode}; log "
                                   f"{self.home / 'stack.log'}")

    def roots(self) -> dict[str, list[int]]:
        """Root pids by CPU-split group (a ``consumer*`` entry, none since the relay folds,
        would count as ``consumers``)."""
        out: dict[str, list[int]] = {}
        for name, p in self.procs.items():
            out.setdefault("consumers" if name.startswith("consumer") else name, []).append(
                p.pid)
        if self.services.postgres is not None and self.services.postgres.pid:
            out["postgres"] = [self.services.postgres.pid]
        if self.services.valkey is not None and self.services.valkey.pid:
            out["valkey"] = [self.services.valkey.pid]
        return out

    def cpu(self) -> dict[str, float]:
        out = {g: sum(tree_cpu_s(pid) for pid in pids) for g, pids in self.roots().items()}
        t = psutil.Process().cpu_times()
        out["driver"] = t.user + t.system  # this process alone (its children are the stack)
        return out

    def stop(self) -> None:
        # jobline run's order: workers first (warm shutdown), scheduler, api, events
        order = ["workers", "scheduler", "api",
                 *(n for n in self.procs if n.startswith(("relay", "consumer")))]
        for name in order:
            p = self.procs.get(name)
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name in order:
            p = self.procs.get(name)
            if p is None:
                continue
            try:
                p.wait(timeout=self.settings.shutdown_grace_s + 10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.log.close()


@contextlib.asynccontextmanager
async def running_stack(prefix: str, **kw: Any) -> AsyncIterator[tuple[Stack, Deps]]:
    """Fresh embedded stores, the stack on them, a connection for the driver."""
    async with stores.local(prefix, external=False) as services:
        stack = Stack(services, **kw)
        deps = await connect(stack.settings)
        try:
            stack.start()
            try:
                yield stack, deps
            finally:
                stack.stop()
        finally:
            await deps.close()


async def drain_run(n: int, events: bool) -> dict[str, Any]:
    async with running_stack("jobline-shipped-", events=events) as (stack, deps):
        await stack.wait_ready(deps, 2)
        await pause_queue(deps, QUEUE)
        t0 = time.perf_counter()
        for start in range(0, n, 5000):
            await jobs.submit_many(deps, [JobSpec(queue=QUEUE, job_type="demo.noop",
                                                  payload={"i": i})
                                          for i in range(start, min(n, start + 5000))])
        submit_s = time.perf_counter() - t0
        await asyncio.sleep(1.0)  # let the commit's own background work settle before the window
        postmaster = stack.services.postgres.pid if stack.services.postgres else None
        cpu0 = stack.cpu()
        pg0 = backend_cpu_s(postmaster) if postmaster else {}
        await resume_queue(deps, QUEUE)
        await suite.wait_completed(deps, n, 900, QUEUE, every=0.05)
        cpu1 = stack.cpu()
        pg1 = backend_cpu_s(postmaster) if postmaster else {}
        owners = await backend_owners(deps, stack.roots())
        by_backend: dict[str, float] = {}
        for pid, spent in pg1.items():
            key = "exited" if pid == 0 else owners.get(pid, "other")
            by_backend[key] = by_backend.get(key, 0.0) + spent - pg0.get(pid, 0.0)
        row = await deps.pool.fetchrow(
            "SELECT count(*) AS n, extract(epoch FROM max(completed_at) - min(started_at)) AS s"
            " FROM jobs WHERE queue_name = $1 AND status = 'completed'", QUEUE)
        unrelayed = None
        if events:
            # rows past the relay's cursor (migration 0011 dropped published_at)
            unrelayed = await deps.pool.fetchval(
                "SELECT count(*) FROM job_events WHERE seq > (SELECT published_through FROM"
                " event_relay_state WHERE id = 1)")
        rows_per_type = None
        if events:
            # statement rows (migration 0019): how many events one outbox row carried
            rows_per_type = {r["type"]: {"rows": r["rows"], "events": r["events"]}
                             for r in await deps.pool.fetch(
                "SELECT type, count(*) AS rows, sum(coalesce(n, 1)) AS events FROM job_events"
                " GROUP BY type ORDER BY type")}
        used = {g: cpu1.get(g, 0.0) - cpu0.get(g, 0.0) for g in cpu1}
        return {"jobs_per_s": float(row["n"]) / max(1e-6, float(row["s"])),
                "drain_s": round(float(row["s"]), 3), "submit_s": round(submit_s, 3),
                "events_not_yet_relayed_at_end": unrelayed, "outbox_rows": rows_per_type,
                "cpu_us_per_job": {g: round(used.get(g, 0.0) / n * 1e6, 1) for g in GROUPS
                                   if g in used},
                "total_cpu_us_per_job": round(sum(used.values()) / n * 1e6, 1),
                # PostgreSQL's share above by whose backend spent it
                "postgres_cpu_us_per_job_by_backend": {
                    k: round(v / n * 1e6, 1) for k, v in sorted(by_backend.items())}}


async def bullmq_run(n: int) -> dict[str, Any]:
    # the same kind of fresh Valkey the stack gets (PostgreSQL started too, unused: same
    # machine load as the other configurations' start-up, not during the measurement)
    async with stores.local("jobline-shipped-bullmq-", external=False) as services:
        r = await asyncio.to_thread(peers.measure_peer, "bullmq", services.redis_url, n, 1,
                                    sys.executable)
        if "error" in r:
            raise RuntimeError(f"bullmq: {r['error']}")
        # first handler call to last: the nearest to Jobline's first start to last completion
        return {"jobs_per_s": r["process_first_to_last_per_s"],
                "jobs_per_s_middle_80pct": r["process_per_s"]}


def _median_split(runs: list[dict[str, Any]]) -> dict[str, float]:
    groups = [g for g in GROUPS if any(g in r["cpu_us_per_job"] for r in runs)]
    return {g: round(statistics.median(r["cpu_us_per_job"].get(g, 0.0) for r in runs), 1)
            for g in groups}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    configs = args.configs.split(",")
    if "bullmq" in configs:
        errors = await asyncio.to_thread(peers.install, ["bullmq"])
        if errors:
            raise SystemExit(f"BullMQ could not be installed: {errors}")
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
    load: list[float] = []
    started = time.time()
    for i in range(args.runs):
        for c in configs:
            load.append(round(os.getloadavg()[0], 2))
            t0 = time.perf_counter()
            r = await (bullmq_run(args.jobs) if c == "bullmq" else
                       drain_run(args.jobs, events=c == "on"))
            runs[c].append(r)
            print(f"run {i + 1} {c}: {r['jobs_per_s']:,.0f} jobs/s "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    out: dict[str, Any] = {"configs": {}}
    for c, rs in runs.items():
        rates = [r["jobs_per_s"] for r in rs]
        out["configs"][c] = {"jobs_per_s": {"median": statistics.median(rates),
                                            "min": min(rates), "max": max(rates),
                                            "runs": rates}, "runs": rs}
        if c != "bullmq":
            split = _median_split(rs)
            out["configs"][c]["cpu_us_per_job_median"] = split
            out["configs"][c]["total_cpu_us_per_job_median"] = round(
                statistics.median(r["total_cpu_us_per_job"] for r in rs), 1)
            owners = sorted({k for r in rs for k in r["postgres_cpu_us_per_job_by_backend"]})
            out["configs"][c]["postgres_cpu_us_per_job_by_backend_median"] = {
                k: round(statistics.median(r["postgres_cpu_us_per_job_by_backend"].get(k, 0.0)
                                           for r in rs), 1) for k in owners}
    med = {c: v["jobs_per_s"]["median"] for c, v in out["configs"].items()}
    out["ratios"] = {}
    if "on" in med and "off" in med:
        out["ratios"]["shipped_over_events_off"] = round(med["on"] / med["off"], 3)
    if "on" in med and "bullmq" in med:
        out["ratios"]["shipped_over_bullmq"] = round(med["on"] / med["bullmq"], 3)
    if "off" in med and "bullmq" in med:
        out["ratios"]["events_off_over_bullmq"] = round(med["off"] / med["bullmq"], 3)
    out["targets"] = {"shipped_over_events_off": 0.90, "shipped_over_bullmq": 1.2}
    out["settings"] = {"jobs": args.jobs, "runs": args.runs, "order": "interleaved",
                       "workers": "stack's own: jobline run --processes 2 --concurrency 25",
                       "bullmq_workers": "2 node processes x concurrency 50 (peers harness)",
                       "durable": True, "processes": {
                           "on": list(stack_commands("jobline.demo", 2, 25)),
                           "off": list(stack_commands("jobline.demo", 2, 25, events=False))}}
    out["versions"] = {"bullmq": peers.peer_versions().get("bullmq")} if "bullmq" in med else {}
    out["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform()}
    out["load_avg_1m_before_each_run"] = load
    out["runtime_s"] = round(time.time() - started, 1)
    return out


def markdown(rep: dict[str, Any], name: str) -> str:
    s = rep["settings"]
    lines = [f"# {name}", "", f"machine: {rep['machine']}", "",
             f"{s['jobs']:,} no-op jobs bulk-submitted to a paused queue, then drained after "
             f"resume; {s['runs']} runs of each configuration, interleaved; workers: "
             f"{s['workers']}; BullMQ: {s['bullmq_workers']}. Rate = jobs / (last completion "
             "- first start), from PostgreSQL (BullMQ: first to last handler call).", "",
             f"versions: {rep.get('versions')}; 1-minute load average before each run: "
             f"{rep['load_avg_1m_before_each_run']}", "",
             "| configuration | jobs/s (median) | min | max |", "|---|---:|---:|---:|"]
    for c, v in rep["configs"].items():
        r = v["jobs_per_s"]
        lines.append(f"| {c} | {r['median']:,.0f} | {r['min']:,.0f} | {r['max']:,.0f} |")
    lines += ["", "| ratio | value | target |", "|---|---:|---:|"]
    for k, v in rep["ratios"].items():
        t = rep["targets"].get(k)
        lines.append(f"| {k} | {v:.2f} | {'' if t is None else f'>= {t:.2f}'} |")
    split_cfgs = [c for c in rep["configs"] if "cpu_us_per_job_median" in rep["configs"][c]]
    if split_cfgs:
        lines += ["", "CPU µs per job during the drain, by process (median of the runs):", "",
                  "| process | " + " | ".join(split_cfgs) + " |",
                  "|---|" + "---:|" * len(split_cfgs)]
        for g in GROUPS:
            vals = [rep["configs"][c]["cpu_us_per_job_median"].get(g) for c in split_cfgs]
            if all(v is None for v in vals):
                continue
            lines.append(f"| {g} | " + " | ".join("" if v is None else f"{v:,.1f}"
                                                  for v in vals) + " |")
        lines.append("| **total** | " + " | ".join(
            f"{rep['configs'][c]['total_cpu_us_per_job_median']:,.1f}" for c in split_cfgs)
            + " |")
        owners = sorted({k for c in split_cfgs for k, v in rep["configs"][c].get(
            "postgres_cpu_us_per_job_by_backend_median", {}).items() if v > 0})
        if owners:
            lines += ["", "PostgreSQL's CPU µs per job by whose backend spent it (median of the "
                      "runs; `exited`: backends that ended during the drain):", "",
                      "| backend of | " + " | ".join(split_cfgs) + " |",
                      "|---|" + "---:|" * len(split_cfgs)]
            for k in owners:
                vals = [rep["configs"][c].get("postgres_cpu_us_per_job_by_backend_median",
                                              {}).get(k) for c in split_cfgs]
                lines.append(f"| {k} | " + " | ".join("" if v is None else f"{v:,.1f}"
                                                      for v in vals) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=None, help="default 20,000 (--small: 300)")
    p.add_argument("--runs", type=int, default=None, help="default 3 (--small: 1)")
    p.add_argument("--configs", default=",".join(CONFIGS), help=f"subset of {CONFIGS}")
    p.add_argument("--small", action="store_true", help="seconds long (make test)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    args.jobs = args.jobs or (300 if args.small else 20_000)
    args.runs = args.runs or (1 if args.small else 3)
    report.write(uvloop.run(run(args)), "shipped", args.out, markdown)


if __name__ == "__main__":
    main()
