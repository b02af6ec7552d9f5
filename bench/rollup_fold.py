"""Can the live rollup fold keep up with 10,000 events/s? (issue 16, "rollup maintenance")

Feeds :func:`jobline.analytics.rollups.apply_records` the record batches a relay gets at
``--rate`` events/s with its ``--interval-ms`` pass interval (defaults: 10,000/s, 20 ms: 200
events a pass), each pass in a transaction of its own as the relay's cursor transaction, back to
back (no waiting), and reports the time a pass costs and so the events/s the fold sustains.

A pass carries what the shipped stack's outbox holds (docs/events.md): ``jobs.submitted``,
``jobs.started`` and ``jobs.completed`` *statement records* (one per statement, type, queue, job
type and minute: the events of a pass spread over the seed's 27 job types in 10 queues by their
weights; started records carry each wait, completed records each run time, e2e time and attempt
number) plus, for the ``--fail`` share of attempts, single ``jobs.failed`` events (run time,
error type, attempt) each followed by ``jobs.retries`` or, one in three, ``jobs.dead_letter``.
Times: run time fast 60% (20 ms-1 s) / medium 30% / slow 10% (log-uniform in each class), wait
5-500 ms, e2e = wait + run time (+ a back-off for retries). Simulated time moves by the interval
each pass; a run is one simulated minute (``--interval-ms`` apart: 3,000 passes at 20 ms; fewer
with ``--passes``, each with the same events, which only makes the compaction's share larger).

Two modes, interleaved run by run (the machine is shared):

* ``compacted`` (as shipped): the compaction watermark is in the past, the fold writes minute
  rows only; at the end of each simulated minute that minute is compacted into the hour and day
  rows (``rollups.compact``: what the relay does once a minute), timed and amortised over the
  minute's passes;
* ``all grains`` (before migration 0030): the watermark far in the future, so every pass writes
  the minute, hour and day rows of its events.

Per pass: wall time (transaction begin .. commit), the relay's Python CPU (``process_time``)
and the PostgreSQL backend's CPU (``/proc`` of the connection's server process). Sustained
events/s = events folded / (wall time of the passes + the compactions). Median over ``--runs``.

    python bench/rollup_fold.py                   # bench/results/rollup_fold.{json,md}
    python bench/rollup_fold.py --runs 3 --passes 1500  # shorter: each pass the same
    python bench/rollup_fold.py --runs 1 --passes 100 --out /tmp/x   # smoke
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import math
import os
import platform
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

import stores  # noqa: E402

from jobline.analytics import rollups  # noqa: E402
from jobline.analytics.seed import JOB_TYPES  # noqa: E402
from jobline.shared.events.outbox import Event, Record  # noqa: E402
from jobline.shared.platform.clock import to_dt  # noqa: E402

RESULTS = HERE / "results"
MINUTE, HOUR = 60_000, 3_600_000
#: a Monday 10:00 UTC (2026-11-23): simulated time starts here
START_MS = 1_795_392_000_000 + 10 * HOUR
ERRORS = ("timeout", "connection", "rate_limited", "upstream_5xx", "oom")


class Workload:
    """The records of successive relay passes (deterministic for a seed)."""

    def __init__(self, rate: int, interval_ms: int, fail: float, seed: int) -> None:
        self.rng = random.Random(seed)
        self.events_per_pass = rate * interval_ms // 1000
        self.interval_ms = interval_ms
        self.fail = fail
        self.types = [(t.queue, t.name) for t in JOB_TYPES]
        acc, cum = 0.0, []
        for t in JOB_TYPES:
            acc += t.weight
            cum.append(acc)
        self.cum = cum
        self.seq = 0

    def _type(self) -> tuple[str, str]:
        return self.types[bisect.bisect_left(self.cum, self.rng.random() * self.cum[-1])]

    def _run_ms(self) -> int:
        r = self.rng.random()
        lo, hi = (20, 1000) if r < 0.6 else (1000, 10_000) if r < 0.9 else (10_000, 120_000)
        return int(math.exp(self.rng.uniform(math.log(lo), math.log(hi))))

    def _wait_ms(self) -> int:
        return int(math.exp(self.rng.uniform(math.log(5), math.log(500))))

    def _record(self, typ: str, t_ms: int, q: str, jt: str, n: int, **kw: Any) -> Record:
        self.seq += 1
        return Record(seq=self.seq, type=typ, time_ms=t_ms, queue=q, job_type=jt, raw=b"",
                      key=q, n=n, last_ms=t_ms, **kw)

    def _event(self, typ: str, t_ms: int, q: str, jt: str, **kw: Any) -> Record:
        self.seq += 1
        return Record.of(Event(uuid.UUID(int=self.seq), typ, t_ms, uuid.uuid4(), q, jt,
                               seq=self.seq, **kw))

    def records(self, t_ms: int) -> tuple[list[Record], int]:
        """One pass: (records in outbox order, events they carry). A job's three events make
        a third of the pass each; a failed attempt replaces a completion by two events."""
        rng = self.rng
        per_kind = self.events_per_pass // 3
        out: list[Record] = []
        events = 0
        # submitted: one statement per submit call, its events grouped by (queue, type)
        sub: dict[tuple[str, str], int] = {}
        for _ in range(per_kind):
            k = self._type()
            sub[k] = sub.get(k, 0) + 1
        for (q, jt), n in sub.items():
            out.append(self._record("jobs.submitted", t_ms, q, jt, n))
            events += n
        # started: claim statements, a wait per event
        st: dict[tuple[str, str], list[int]] = {}
        for _ in range(per_kind):
            st.setdefault(self._type(), []).append(self._wait_ms())
        for (q, jt), waits in st.items():
            out.append(self._record("jobs.started", t_ms, q, jt, len(waits), millis=waits))
            events += len(waits)
        # completed (statement records) or failed (single events)
        done: dict[tuple[str, str], list[tuple[int, int, int]]] = {}
        singles: list[Record] = []
        n_done = 0
        while n_done < per_kind:
            q, jt = self._type()
            run = self._run_ms()
            attempt = 1 if rng.random() < 0.9 else rng.choice((2, 3))
            if rng.random() < self.fail:
                singles.append(self._event("jobs.failed", t_ms, q, jt, attempt=attempt,
                                           duration_ms=run // 3,
                                           error_type=rng.choice(ERRORS)))
                nxt = "jobs.dead_letter" if rng.random() < 1 / 3 else "jobs.retries"
                singles.append(self._event(nxt, t_ms, q, jt, attempt=attempt))
                n_done += 2
                continue
            e2e = self._wait_ms() + run + (attempt - 1) * (1500 + run)
            done.setdefault((q, jt), []).append((run, e2e, attempt))
            n_done += 1
        for (q, jt), rows in done.items():
            out.append(self._record("jobs.completed", t_ms, q, jt, len(rows),
                                    millis=[r[0] for r in rows], e2e_ms=[r[1] for r in rows],
                                    attempts=[r[2] for r in rows]))
            events += len(rows)
        out += singles
        events += len(singles)
        return out, events


def _cpu_s(p: psutil.Process) -> float:
    c = p.cpu_times()
    return c.user + c.system


async def one_minute(conn: Any, backend: psutil.Process, wl: Workload, minute_ms: int,
                     compacted: bool) -> dict[str, Any]:
    """One simulated minute of passes (and, ``compacted``, that minute's compaction)."""
    await conn.execute("UPDATE rollup_watermark SET compacted_through = $1",
                       to_dt(minute_ms if compacted else minute_ms + 100 * 365 * 86_400_000))
    passes = [wl.records(minute_ms + i * wl.interval_ms) for i in range(MINUTE // wl.interval_ms)]
    walls: list[float] = []
    events = records = 0
    py0, pg0 = time.process_time(), _cpu_s(backend)
    t_all = time.perf_counter()
    for recs, n in passes:
        t = time.perf_counter()
        async with conn.transaction():
            await rollups.apply_records(conn, recs)
        walls.append(time.perf_counter() - t)
        events += n
        records += len(recs)
    fold_s = time.perf_counter() - t_all
    py1, pg1 = time.process_time(), _cpu_s(backend)
    compact_s = compact_py = compact_pg = 0.0
    if compacted:
        # what the relay does once a minute (two minutes later): sum this minute's rows into
        # the hour and day rows and move the watermark
        t = time.perf_counter()
        async with conn.transaction():
            w = await rollups.compact(conn, minute_ms + MINUTE)
        assert w == minute_ms + MINUTE, w
        compact_s = time.perf_counter() - t
        compact_py, compact_pg = time.process_time() - py1, _cpu_s(backend) - pg1
    n = len(walls)
    total_s = fold_s + compact_s
    return {"passes": n, "events": events, "records": records,
            "events_per_pass": events / n, "records_per_pass": records / n,
            "pass_ms_p50": statistics.median(walls) * 1000,
            "pass_ms_p95": sorted(walls)[int(0.95 * (n - 1))] * 1000,
            "pass_ms_mean": fold_s / n * 1000,
            "python_cpu_ms_per_pass": (py1 - py0) / n * 1000,
            "postgres_cpu_ms_per_pass": (pg1 - pg0) / n * 1000,
            "compaction_ms": compact_s * 1000,
            "compaction_python_cpu_ms": compact_py * 1000,
            "compaction_postgres_cpu_ms": compact_pg * 1000,
            "amortised_ms_per_pass": total_s / n * 1000,
            "events_per_s": events / total_s}


async def rows_per_minute(conn: Any) -> dict[str, int]:
    """Rows written per family for one simulated minute (the last compacted minute's)."""
    out = {}
    for t in ("job_rollups", "job_rollup_histograms", "job_rollup_errors",
              "job_rollup_attempts"):
        out[t] = int(await conn.fetchval(
            f"SELECT count(*) FROM {t} WHERE minute = $1", to_dt(START_MS)))
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    modes = {"compacted": True, "all grains": False}
    out: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    async with stores.local("rollupfold", external=False) as svc:
        import asyncpg

        conn = await asyncpg.connect(svc.database_url)
        try:
            backend = psutil.Process(conn.get_server_pid())
            wls = {m: Workload(args.rate, args.interval_ms, args.fail, args.seed + i)
                   for i, m in enumerate(modes)}
            if args.passes:  # fewer passes a minute (the same events each): faster, and the
                # compaction amortised over fewer passes (a higher cost per pass)
                for wl in wls.values():
                    wl.interval_ms = MINUTE // args.passes
            # the modes write disjoint hours (compacted: 10:00, all grains: 12:00), so each
            # starts from the same state: rows of its hour already there after its first run
            for i in range(args.runs + 1):
                for m, compacted in modes.items():
                    base = START_MS + (0 if compacted else 2 * HOUR)
                    r = await one_minute(conn, backend, wls[m], base + i * MINUTE, compacted)
                    if i > 0:  # the first minute creates the hour's rows: warm-up
                        out[m].append(r)
                    print(f"run {i} {m}: {r['events_per_s']:,.0f} events/s, pass p50 "
                          f"{r['pass_ms_p50']:.2f} ms", file=sys.stderr, flush=True)
            rows = await rows_per_minute(conn)
        finally:
            await conn.close()
    keys = ("events_per_s", "pass_ms_p50", "pass_ms_p95", "pass_ms_mean",
            "python_cpu_ms_per_pass", "postgres_cpu_ms_per_pass", "compaction_ms",
            "compaction_postgres_cpu_ms", "amortised_ms_per_pass", "events_per_pass",
            "records_per_pass")
    return {"rate": args.rate, "interval_ms": args.interval_ms, "fail": args.fail,
            "passes_per_minute": out["compacted"][0]["passes"],
            "runs": args.runs, "rows_per_minute": rows,
            "median": {m: {k: statistics.median(r[k] for r in rs) for k in keys}
                       for m, rs in out.items()},
            "results": out,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}


def markdown(r: dict[str, Any]) -> str:
    med = r["median"]
    c, a = med["compacted"], med["all grains"]
    lines = [
        "# Rollup fold capacity",
        "",
        f"`rollups.apply_records` fed the passes of a relay at {r['rate']:,} events/s with a "
        f"{r['interval_ms']} ms interval ({c['events_per_pass']:.0f} events in "
        f"{c['records_per_pass']:.0f} records a pass: statement records over 27 job types in 10 "
        f"queues, {r['fail']:.0%} of attempts failing as single events), each pass its own "
        "transaction, back to back; one simulated minute "
        f"({r['passes_per_minute']:,} passes) per run, median of "
        f"{r['runs']} runs per mode, interleaved. Load average (1 min) before/after: "
        f"{r.get('load_avg_1m_before', 0):.1f} / {r.get('load_avg_1m_after', 0):.1f} on "
        f"{r['machine']['cpus']} cores (a shared machine).",
        "",
        "| mode | events/s sustained | x 10,000/s | pass ms p50 | p95 | Python CPU ms/pass "
        "| PostgreSQL CPU ms/pass | compaction ms/min | amortised ms/pass |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in (("compacted (watermark in the past: minute rows + 1 compaction/min)", c),
                    ("all grains every pass (watermark in the future)", a)):
        lines.append(
            f"| {name} | {m['events_per_s']:,.0f} | {m['events_per_s'] / 10_000:.1f} | "
            f"{m['pass_ms_p50']:.2f} | {m['pass_ms_p95']:.2f} | "
            f"{m['python_cpu_ms_per_pass']:.2f} | {m['postgres_cpu_ms_per_pass']:.2f} | "
            f"{m['compaction_ms']:.0f} | {m['amortised_ms_per_pass']:.2f} |")
    rows = r["rows_per_minute"]
    lines += ["", "Minute rows of one simulated minute: "
              + ", ".join(f"{k} {v:,}" for k, v in rows.items()) + ".", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=int, default=10_000, help="events/s the relay receives")
    ap.add_argument("--interval-ms", type=int, default=20, help="the relay's pass interval")
    ap.add_argument("--fail", type=float, default=0.05, help="share of attempts failing")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--passes", type=int, default=None,
                    help="passes per simulated minute (default 60 s / the interval)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args()
    load = os.getloadavg()[0]
    r = asyncio.run(run(a))
    r["load_avg_1m_before"], r["load_avg_1m_after"] = load, os.getloadavg()[0]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rollup_fold.json").write_text(json.dumps(r, indent=1) + "\n")
    (out / "rollup_fold.md").write_text(markdown(r))
    print(markdown(r))


if __name__ == "__main__":
    main()
