"""What a condition measures. One :class:`Snapshot` per evaluation tick reads each source once
(per distinct window) for every rule of the tick, so the cost of a tick grows with the number of
distinct windows and queues, not with the number of rules (bench/alerts.py: 1,000 rules).

Sources (docs/alerts.md has the table):
  * the per-minute rollups (``job_rollups``, ``job_rollup_histograms``, folded by the event
    relay): failure rate, throughput, p95 duration, SLA compliance, over ``windowS``;
  * live state: the queue counts (``jobline.shared.core.counts``: backlog, dead-letter growth),
    the pending index (oldest pending age), the worker registry (active workers), and the spike
    detector's per-queue last alert (``consumer_watermarks``, ``anomaly``).

A measurement is ``None`` when there is not enough data (fewer than ``minSamples`` finished
attempts for a rate): the condition is then false, it never fires on nothing.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from jobline.analytics.alerting.model import Rule
from jobline.shared.core import counts
from jobline.shared.observe.rollups import bucket_bounds
from jobline.shared.observe.workers import list_workers
from jobline.shared.platform.clock import to_dt
from jobline.shared.platform.connections import Deps

#: consumer_watermarks' consumer holding each queue's last failure-spike alert (event time, ms);
#: written by :mod:`jobline.analytics.alerts` (the relay's fold).
SPIKE_LAST_FIRED = "alerts.last_fired"
#: Queues whose name starts with this are Jobline's own (the delivery queue): their workers do
#: not count as "active workers" of user queues.
INTERNAL_PREFIX = "jobline."

READ_ROLLUPS = """
SELECT queue_name, job_type, sum(completed)::bigint AS completed, sum(failed)::bigint AS failed,
       sum(dead_letter)::bigint AS dead_letter
  FROM job_rollups WHERE minute >= $1 AND minute <= $2
 GROUP BY queue_name, job_type
"""
READ_DURATIONS = """
SELECT queue_name, job_type, bucket, sum(n)::bigint AS n
  FROM job_rollup_histograms WHERE minute >= $1 AND minute <= $2 AND metric = 'duration'
 GROUP BY queue_name, job_type, bucket
"""
# One index probe per queue (jobs_queue_status_sched), not a scan of every pending job.
OLDEST_PENDING = """
SELECT q AS queue_name,
       (SELECT min(scheduled_for) FROM jobs WHERE queue_name = q AND status = 'pending') AS oldest
  FROM unnest($1::text[]) AS q
"""
SPIKES = "SELECT part, seq FROM consumer_watermarks WHERE consumer = $1"


@dataclass
class Measurement:
    value: float | None
    #: What the message shows next to the value (samples, per-queue breakdown...).
    details: dict[str, Any] = field(default_factory=dict)
    #: The rule's new memory (stateful metrics only; None: unchanged).
    memory: dict[str, Any] | None = None


def _in_scope(rule: Rule, queue: str, job_type: str | None = None) -> bool:
    if rule.queue is not None and queue != rule.queue:
        return False
    if rule.job_type is not None and job_type is not None and job_type != rule.job_type:
        return False
    return rule.queue is not None or not queue.startswith(INTERNAL_PREFIX)


class Snapshot:
    """Lazily read, memoised sources for one tick at ``now_ms`` (read on ``conn``, the tick's
    transaction, except Redis and the queue counts, which have their own clients)."""

    def __init__(self, deps: Deps, conn: Any, now_ms: int) -> None:
        self.deps, self.conn, self.now_ms = deps, conn, now_ms
        self._rollups: dict[int, list[Any]] = {}
        self._durations: dict[int, dict[tuple[str, str], dict[int, int]]] = {}
        self._counts: dict[str, dict[str, int]] | None = None
        self._oldest: dict[str, int] | None = None
        self._workers: list[dict[str, Any]] | None = None
        self._spikes: dict[str, int] | None = None
        self._totals: dict[int, dict[tuple[str | None, str | None], tuple[int, int]]] = {}
        self._hists: dict[int, dict[tuple[str | None, str | None], dict[int, int]]] = {}
        #: SQL statements issued (the bench reports it per tick).
        self.reads = 0

    def _bounds(self, window_s: int) -> tuple[Any, Any]:
        # whole minutes: the window's first minute up to the current one (still filling)
        lo = (self.now_ms - window_s * 1000) // 60_000 * 60_000
        return to_dt(lo), to_dt(self.now_ms // 60_000 * 60_000)

    async def rollups(self, window_s: int) -> list[Any]:
        if window_s not in self._rollups:
            self.reads += 1
            self._rollups[window_s] = await self.conn.fetch(READ_ROLLUPS, *self._bounds(window_s))
        return self._rollups[window_s]

    async def durations(self, window_s: int) -> dict[tuple[str, str], dict[int, int]]:
        if window_s not in self._durations:
            self.reads += 1
            out: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
            for r in await self.conn.fetch(READ_DURATIONS, *self._bounds(window_s)):
                out[(r["queue_name"], r["job_type"])][r["bucket"]] = r["n"]
            self._durations[window_s] = out
        return self._durations[window_s]

    async def queue_counts(self) -> dict[str, dict[str, int]]:
        if self._counts is None:
            self.reads += 1
            self._counts = await counts.queue_counts(self.deps)
        return self._counts

    async def oldest_pending(self) -> dict[str, int]:
        if self._oldest is None:
            qc = await self.queue_counts()
            queues = sorted(q for q, c in qc.items() if c.get("pending"))
            self._oldest = {}
            if queues:
                self.reads += 1
                for r in await self.conn.fetch(OLDEST_PENDING, queues):
                    if r["oldest"] is not None:
                        self._oldest[r["queue_name"]] = int(r["oldest"].timestamp() * 1000)
        return self._oldest

    async def workers(self) -> list[dict[str, Any]]:
        if self._workers is None:
            self.reads += 1
            self._workers = await list_workers(self.deps)
        return self._workers

    async def spikes(self) -> dict[str, int]:
        if self._spikes is None:
            self.reads += 1
            self._spikes = {r["part"]: r["seq"] for r in await self.conn.fetch(
                SPIKES, SPIKE_LAST_FIRED)}
        return self._spikes

    async def totals(self, window_s: int) -> dict[tuple[str | None, str | None], tuple[int, int]]:
        """(completed, failed) summed per scope key (every (queue, job type) pair the rollups
        hold, each queue, each job type, and all user queues): one pass per window, then each
        rule's measurement is a dict lookup (1,000 rules cost one pass, not 1,000)."""
        if window_s not in self._totals:
            out: dict[tuple[str | None, str | None], tuple[int, int]] = {}
            for r in await self.rollups(window_s):
                q, t = r["queue_name"], r["job_type"]
                keys: list[tuple[str | None, str | None]] = [(q, t), (q, None)]
                if not q.startswith(INTERNAL_PREFIX):
                    keys += [(None, t), (None, None)]
                for k in keys:
                    d, f = out.get(k, (0, 0))
                    out[k] = (d + r["completed"], f + r["failed"])
            self._totals[window_s] = out
        return self._totals[window_s]

    async def histograms(self, window_s: int) -> dict[tuple[str | None, str | None],
                                                      dict[int, int]]:
        """Duration buckets merged per scope key (as :meth:`totals`)."""
        if window_s not in self._hists:
            out: dict[tuple[str | None, str | None], dict[int, int]] = defaultdict(
                lambda: defaultdict(int))
            for (q, t), buckets in (await self.durations(window_s)).items():
                keys: list[tuple[str | None, str | None]] = [(q, t), (q, None)]
                if not q.startswith(INTERNAL_PREFIX):
                    keys += [(None, t), (None, None)]
                for k in keys:
                    h = out[k]
                    for b, n in buckets.items():
                        h[b] += n
            self._hists[window_s] = out
        return self._hists[window_s]

    # --- the metrics -----------------------------------------------------------------------

    async def measure(self, rule: Rule) -> Measurement:
        c = rule.condition
        m = c.metric
        if m in ("failure_rate", "throughput"):
            done, failed = (await self.totals(c.window_s)).get(_scope_key(rule), (0, 0))
            if m == "throughput":
                return Measurement(round(done / (c.window_s / 60), 3),
                                   {"completed": done, "windowS": c.window_s})
            finished = done + failed
            if finished < max(c.min_samples, 1):
                return Measurement(None, {"finished": finished})
            return Measurement(round(failed / finished, 4),
                               {"failed": failed, "finished": finished, "windowS": c.window_s})
        if m in ("p95_duration_ms", "sla_compliance"):
            hist = (await self.histograms(c.window_s)).get(_scope_key(rule), {})
            total = sum(hist.values())
            if total < max(c.min_samples, 1):
                return Measurement(None, {"samples": total})
            if m == "p95_duration_ms":
                return Measurement(float(_percentile(hist, total, 95)),
                                   {"samples": total, "windowS": c.window_s})
            assert c.target_ms is not None
            return Measurement(round(_share_within(hist, c.target_ms) / total, 4),
                               {"samples": total, "targetMs": c.target_ms,
                                "windowS": c.window_s})
        if m == "backlog":
            qc = await self.queue_counts()
            per = {q: n.get("pending", 0) for q, n in qc.items() if _in_scope(rule, q)}
            return Measurement(float(sum(per.values())), {"perQueue": _top(per)})
        if m == "oldest_pending_age_s":
            oldest = {q: t for q, t in (await self.oldest_pending()).items() if _in_scope(rule, q)}
            if not oldest:
                return Measurement(0.0, {})
            q = min(oldest, key=lambda k: oldest[k])
            return Measurement(round(max(self.now_ms - oldest[q], 0) / 1000, 1), {"queue": q})
        if m == "dlq_growth":
            qc = await self.queue_counts()
            now = {q: n.get("dead_letter", 0) for q, n in qc.items() if _in_scope(rule, q)}
            seen = rule.memory.get("dlq")
            if seen is None:
                # first evaluation: what is dead-lettered already is the baseline, not news
                return Measurement(0.0, {}, {"dlq": now})
            grew = {q: n - seen.get(q, 0) for q, n in now.items() if n > seen.get(q, 0)}
            new = sum(grew.values())
            # the value is the growth over the window (not since the last evaluation), so a
            # burst spread over several evaluations is one episode, not a flapping alert
            since = self.now_ms - c.window_s * 1000
            recent = [[t, n] for t, n in rule.memory.get("recent", []) if t > since]
            if new:
                recent.append([self.now_ms, new])
            return Measurement(float(sum(n for _, n in recent)),
                               {"perQueue": _top(grew), "new": new},
                               {"dlq": now, "recent": recent})
        if m == "active_workers":
            n = 0
            for w in await self.workers():
                qs = w.get("queues") or ["*"]
                if rule.queue is None:
                    n += any(q == "*" or not q.startswith(INTERNAL_PREFIX) for q in qs)
                else:
                    n += "*" in qs or rule.queue in qs
            return Measurement(float(n), {})
        if m == "anomaly":
            since = self.now_ms - c.window_s * 1000
            hit = sorted(q for q, t in (await self.spikes()).items()
                         if t >= since and _in_scope(rule, q))
            return Measurement(float(len(hit)), {"queues": hit[:20]})
        raise AssertionError(f"unknown metric {m!r}")


def _scope_key(rule: Rule) -> tuple[str | None, str | None]:
    return rule.queue, rule.job_type


def _percentile(hist: dict[int, int], total: int, p: float) -> int:
    rank = math.ceil(total * p / 100)
    seen = 0
    for b in sorted(hist):
        seen += hist[b]
        if seen >= rank:
            return bucket_bounds(b)[1]
    return bucket_bounds(max(hist))[1]


def _share_within(hist: dict[int, int], target_ms: int) -> float:
    """Attempts that ran within ``target_ms``: whole buckets below it, and the bucket holding it
    pro rata (linear interpolation inside one bucket, which spans at most 4%)."""
    ok = 0.0
    for b, n in hist.items():
        lo, hi = bucket_bounds(b)
        if hi <= target_ms:
            ok += n
        elif lo <= target_ms:
            ok += n * (target_ms - lo) / (hi - lo)
    return ok


def _top(per: dict[str, int], n: int = 10) -> dict[str, int]:
    return dict(sorted(((q, v) for q, v in per.items() if v), key=lambda x: -x[1])[:n])
