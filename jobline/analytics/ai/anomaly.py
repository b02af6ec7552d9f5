"""Anomaly detection over the rollups (issue 17, item 4).

Every minute (the scheduler's tick, or ``jobline ai detect`` over a past range) each queue's
trailing ``WINDOW_MIN``-minute window (and, for the rate metrics, its 1, 2 and 10-minute
windows: ``WIDTHS``) is measured on five metrics:

* ``failure_rate``: failed attempts / finished attempts (needs ``MIN_FINISHED`` of them);
* ``duration_p95``: the 95th percentile run time, merged from the histogram rows;
* ``throughput``: completed jobs per minute (only a drop is an anomaly);
* ``backlog_growth``: how much the queue's depth grew over the window (the samples);
* ``oldest_pending_age``: the oldest pending job's age (the samples).

Each value is scored against a **seasonal baseline**: the same hour of the week in up to
``WEEKS`` previous weeks (hour rollups and hour samples). With fewer than two such weeks the
baseline is the previous ``FALLBACK_HOURS`` hours instead. The score is robust:
``(value - median) / scale`` with ``scale = max(1.4826·MAD, relative floor, absolute floor)``,
so a perfectly flat history does not turn a tiny change into a huge score.

An anomaly starts when the score is at least ``THRESHOLD`` on ``CONFIRM`` consecutive minutes
(detection delay ``CONFIRM`` minutes), or at once when it reaches ``STRONG``; it continues while it stays above ``THRESHOLD / 2``, and
ends after ``QUIET_MIN`` minutes below. Each episode is one ``ai_anomalies`` row and one
``ai.anomaly`` event (which alert rules can route). Possible causes come from the same data: the
error types and job types whose failures grew against the hour before, the job types that got
slower, and worker crashes and a shrinking worker count in the window.

Invariants: detection at minute ``m`` reads only data up to ``m`` (a backfill sees what the live
detector would have seen); episodes of one (queue, metric) never overlap.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

from jobline.analytics.ai import narrate
from jobline.shared.events.outbox import NewEvent, emit
from jobline.shared.observe import sketch
from jobline.shared.platform.clock import from_dt, to_dt
from jobline.shared.platform.connections import Deps

MINUTE = 60_000
HOUR = 3_600_000
WEEK = 7 * 24 * HOUR
WINDOW_MIN = 3
THRESHOLD = 6.0
CONFIRM = 2
#: A score this high starts an episode at once, without waiting for confirmation: such a window
#: is far outside both the baseline's spread and the window's own sampling noise, and
#: confirming it would only add a minute of delay (bench/anomaly_eval.py: no false alarm more).
STRONG = 8.0
QUIET_MIN = 5
WEEKS = 4
FALLBACK_HOURS = 6
MIN_FINISHED = 20
METRICS = ("failure_rate", "duration_p95", "throughput", "backlog_growth", "oldest_pending_age")
#: Floors of the score's scale: (relative to the baseline, absolute).
FLOORS = {"failure_rate": (0.25, 0.02), "duration_p95": (0.2, 50.0),
          # a drop's score is at most 1 / the relative floor: 0.1 lets a stall reach 10
          "throughput": (0.1, 2.0), "backlog_growth": (0.0, 50.0),
          # 10 s: a queue whose oldest pending job is normally seconds old and is now two
          # minutes old has stopped being served. A stalled queue's oldest job ages 60 s a
          # minute, so the floor sets the delay: 30 s needed 5 minutes of ageing to score 8,
          # 10 s needs 2 (bench/anomaly_eval.py: stalls' median delay 300 -> 120 s, no false
          # alarm more)
          "oldest_pending_age": (0.25, 10_000.0)}
#: +1: only a rise is an anomaly; -1: only a drop.
DIRECTION = {"failure_rate": 1, "duration_p95": 1, "throughput": -1, "backlog_growth": 1,
             "oldest_pending_age": 1}

COUNTS = """
SELECT minute, queue_name, sum(completed) AS completed, sum(failed) AS failed
  FROM job_rollups WHERE minute >= $1 AND minute < $2 AND ($3::text IS NULL OR queue_name = $3)
 GROUP BY 1, 2
"""
HIST = """
SELECT minute, queue_name, bucket, sum(n) AS n FROM job_rollup_histograms
 WHERE metric = 'duration' AND minute >= $1 AND minute < $2
   AND ($3::text IS NULL OR queue_name = $3)
 GROUP BY 1, 2, 3
"""
GAUGES = """
SELECT metric, subject, minute, value FROM analytics_samples
 WHERE metric IN ('queue.depth', 'queue.oldest_pending_ms') AND minute >= $1 AND minute < $2
   AND ($3::text IS NULL OR subject = $3)
"""
HOUR_COUNTS = """
SELECT at, queue_name, sum(completed) AS completed, sum(failed) AS failed FROM job_rollups_hour
 WHERE at = ANY($1::timestamptz[]) AND ($2::text IS NULL OR queue_name = $2) GROUP BY 1, 2
"""
HOUR_HIST = """
SELECT at, queue_name, bucket, sum(n) AS n FROM job_rollup_histograms_hour
 WHERE metric = 'duration' AND at = ANY($1::timestamptz[]) AND ($2::text IS NULL OR queue_name = $2)
 GROUP BY 1, 2, 3
"""
HOUR_GAUGES = """
SELECT metric, subject, at, avg, max FROM analytics_samples_hour
 WHERE metric IN ('queue.depth', 'queue.oldest_pending_ms') AND at = ANY($1::timestamptz[])
   AND ($2::text IS NULL OR subject = $2)
"""
OPEN = """
SELECT id, queue_name, metric, detected_at, last_seen_at, peak_score FROM ai_anomalies
 WHERE ended_at IS NULL
"""
INSERT = """
INSERT INTO ai_anomalies (queue_name, metric, detected_at, last_seen_at, current_value, baseline,
                          score, peak_score, possible_causes)
VALUES ($1, $2, $3, $3, $4, $5, $6, $6, $7) RETURNING id
"""
TOUCH = """
UPDATE ai_anomalies SET last_seen_at = $2, peak_score = greatest(peak_score, $3) WHERE id = $1
"""
END = "UPDATE ai_anomalies SET ended_at = $2 WHERE id = $1"
LIST = """
SELECT id, queue_name, metric, detected_at, last_seen_at, ended_at, current_value, baseline,
       score, peak_score, possible_causes
  FROM ai_anomalies
 WHERE detected_at >= $1 AND detected_at < $2 AND ($3::text IS NULL OR queue_name = $3)
 ORDER BY detected_at, queue_name, metric
"""
STATE = "SELECT value FROM ai_state WHERE key = 'anomaly.minute'"
SET_STATE = """
INSERT INTO ai_state (key, value) VALUES ('anomaly.minute', $1)
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value
"""
ERRORS = """
SELECT job_type, error_type, sum(n) AS n FROM job_rollup_errors
 WHERE queue_name = $1 AND minute >= $2 AND minute < $3 GROUP BY 1, 2
"""
TYPES = """
SELECT job_type, sum(completed)::float8 AS completed, sum(failed)::float8 AS failed,
       sum(duration_sum_ms)::float8 AS dur FROM job_rollups
 WHERE queue_name = $1 AND minute >= $2 AND minute < $3 GROUP BY 1
"""
CRASHES = "SELECT count(*) FROM worker_crashes WHERE at >= $1 AND at < $2"
WORKERS = """
SELECT minute, value FROM analytics_samples
 WHERE metric = 'workers.count' AND subject = '*' AND minute >= $1 AND minute < $2
 ORDER BY minute
"""


def _p95(counts: dict[int, int]) -> float | None:
    return sketch.percentile(counts.items(), 95)


@dataclass
class Data:
    """Per (queue, minute) raw figures of a range, read in a few set-based statements."""

    counts: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    hist: dict[tuple[str, int], dict[int, int]] = field(default_factory=dict)
    depth: dict[tuple[str, int], float] = field(default_factory=dict)
    oldest: dict[tuple[str, int], float] = field(default_factory=dict)

    def queues(self) -> set[str]:
        return {q for q, _ in self.counts} | {q for q, _ in self.depth}


async def _read(deps: Deps, lo: int, hi: int, queue: str | None) -> Data:
    d = Data()
    for r in await deps.pool.fetch(COUNTS, to_dt(lo), to_dt(hi), queue):
        d.counts[(r["queue_name"], from_dt(r["minute"]))] = (int(r["completed"]), int(r["failed"]))
    for r in await deps.pool.fetch(HIST, to_dt(lo), to_dt(hi), queue):
        d.hist.setdefault((r["queue_name"], from_dt(r["minute"])), {})[r["bucket"]] = int(r["n"])
    for r in await deps.pool.fetch(GAUGES, to_dt(lo), to_dt(hi), queue):
        target = d.depth if r["metric"] == "queue.depth" else d.oldest
        target[(r["subject"], from_dt(r["minute"]))] = float(r["value"])
    return d


def _window(d: Data, q: str, m: int, width: int = WINDOW_MIN) -> dict[str, float | None]:
    """The five metrics of queue ``q`` over the ``width`` minutes ending with minute ``m``
    (inclusive); the gauges' change is always over ``WINDOW_MIN``."""
    minutes = [m - i * MINUTE for i in range(width)]
    completed = sum(d.counts.get((q, x), (0, 0))[0] for x in minutes)
    failed = sum(d.counts.get((q, x), (0, 0))[1] for x in minutes)
    merged: dict[int, int] = defaultdict(int)
    for x in minutes:
        for b, n in d.hist.get((q, x), {}).items():
            merged[b] += n
    finished = completed + failed
    now_depth = d.depth.get((q, m))
    then_depth = d.depth.get((q, m - WINDOW_MIN * MINUTE))
    return {
        "failure_rate": failed / finished if finished >= MIN_FINISHED else None,
        "duration_p95": _p95(merged) if completed >= MIN_FINISHED else None,
        "throughput": completed / width,
        "backlog_growth": (now_depth - then_depth if now_depth is not None
                           and then_depth is not None else None),
        "oldest_pending_age": d.oldest.get((q, m)),
        "n_finished": finished, "n_completed": completed, "width": width,
    }


@dataclass
class Baseline:
    median: float
    scale: float
    source: str


def _baseline(metric: str, values: list[float], source: str) -> Baseline | None:
    if len(values) < 2:
        return None
    med = statistics.median(values)
    mad = statistics.median(abs(v - med) for v in values)
    rel, absolute = FLOORS[metric]
    return Baseline(med, max(1.4826 * mad, rel * abs(med), absolute), source)


async def _seasonal(deps: Deps, hour_ms: int, queue: str | None
                    ) -> dict[tuple[str, str], list[float]]:
    """Per (queue, metric): the metric over the same hour of the week in previous weeks."""
    hours = [to_dt(hour_ms - k * WEEK) for k in range(1, WEEKS + 1)]
    return await _hourly(deps, hours, queue)


async def _hourly(deps: Deps, hours: list[Any], queue: str | None
                  ) -> dict[tuple[str, str], list[float]]:
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in await deps.pool.fetch(HOUR_COUNTS, hours, queue):
        c, f = int(r["completed"]), int(r["failed"])
        out[(r["queue_name"], "throughput")].append(c / 60)
        if c + f >= MIN_FINISHED:
            out[(r["queue_name"], "failure_rate")].append(f / (c + f))
    per: dict[tuple[str, Any], dict[int, int]] = defaultdict(dict)
    for r in await deps.pool.fetch(HOUR_HIST, hours, queue):
        per[(r["queue_name"], r["at"])][r["bucket"]] = int(r["n"])
    for (q, _), counts in per.items():
        if sum(counts.values()) >= MIN_FINISHED:
            p = _p95(counts)
            if p is not None:
                out[(q, "duration_p95")].append(p)
    for r in await deps.pool.fetch(HOUR_GAUGES, hours, queue):
        if r["metric"] == "queue.oldest_pending_ms":
            out[(r["subject"], "oldest_pending_age")].append(float(r["max"]))
    return out


async def _baselines(deps: Deps, hour_ms: int, queue: str | None, d_recent: Data,
                     recent_minutes: list[int]) -> dict[tuple[str, str], Baseline]:
    seasonal = await _seasonal(deps, hour_ms, queue)
    fallback = await _hourly(deps, [to_dt(hour_ms - k * HOUR)
                                    for k in range(1, FALLBACK_HOURS + 1)], queue)
    out: dict[tuple[str, str], Baseline] = {}
    for q in d_recent.queues() | {k[0] for k in seasonal} | {k[0] for k in fallback}:
        for metric in METRICS:
            b = _baseline(metric, seasonal.get((q, metric), []), "same hour, previous weeks")
            if b is None:
                b = _baseline(metric, fallback.get((q, metric), []),
                              f"previous {FALLBACK_HOURS} hours")
            if b is None and metric == "backlog_growth":
                # depth changes have no hourly form: the window's own recent history
                vals = [v for m in recent_minutes
                        if (v := _window(d_recent, q, m)["backlog_growth"]) is not None]
                b = _baseline(metric, vals, f"previous {FALLBACK_HOURS} hours of windows")
            if b is not None:
                out[(q, metric)] = b
    return out


def _score(metric: str, value: float, b: Baseline, n: int, width: int = WINDOW_MIN) -> float:
    """Robust z of ``value``; the scale is at least the sampling noise of a window of ``n``
    observations over ``width`` minutes (the baseline's spread is measured over hours, and a
    few minutes of a quiet queue are much noisier than an hour)."""
    scale = b.scale
    if metric == "failure_rate" and n:
        p = min(max(b.median, 0.01), 0.99)
        scale = max(scale, math.sqrt(p * (1 - p) / n))
    elif metric == "duration_p95" and n:
        scale = max(scale, 2.0 * b.median / math.sqrt(n))
    elif metric == "throughput":
        # completions per minute are Poisson: a mean over `width` minutes varies by
        # sqrt(rate / width)
        scale = max(scale, math.sqrt(max(b.median, 1.0) / width))
    return DIRECTION[metric] * (value - b.median) / scale


#: The rate metrics are also scored over the last 1, 2 and 10 minutes, each window against its
#: own sampling noise, and the highest score counts: a sharp change shows in the newest minute
#: before it dominates a 3-minute window (the detection delay), while longer windows catch a
#: change too small for one minute's noise and give a quiet queue (fewer than MIN_FINISHED
#: attempts in 3 minutes) enough attempts to be scored at all (bench/anomaly_eval.py: recall
#: 0.88 -> 1.00 on 126 incidents, false alarms 0.02 per queue per day both ways).
# duration_p95 keeps its 3-minute window only: on the seed's heavy-tailed run times the
# shorter and longer windows raised false alarms from 0.73 to 3.5 per queue per day.
WIDTHS = {"failure_rate": (1, 2, WINDOW_MIN, 10), "duration_p95": (WINDOW_MIN,),
          "throughput": (1, 2, WINDOW_MIN), "backlog_growth": (WINDOW_MIN,),
          "oldest_pending_age": (WINDOW_MIN,)}


def _scores(metric: str, windows: dict[int, dict[str, float | None]], b: Baseline | None
            ) -> dict[int, tuple[float, float]]:
    """Per window width of ``metric``: its score and value (widths without a value omitted)."""
    out: dict[int, tuple[float, float]] = {}
    for w in WIDTHS[metric]:
        values = windows[w]
        v = values[metric]
        if v is None or b is None:
            continue
        n = int(values["n_finished" if metric == "failure_rate" else "n_completed"] or 0)
        out[w] = (_score(metric, v, b, n, w), v)
    return out


def _best(metric: str, windows: dict[int, dict[str, float | None]], b: Baseline | None,
          widest: int = 10) -> tuple[float, float | None, int]:
    """The highest score of ``metric`` over its windows up to ``widest`` minutes, with that
    window's value and width."""
    best, best_v, best_w = 0.0, None, WINDOW_MIN
    for w, (s, v) in _scores(metric, windows, b).items():
        if w <= widest and (best_v is None or s > best):
            best, best_v, best_w = s, v, w
    return best, best_v, best_w


async def _causes(deps: Deps, queue: str, metric: str, m: int, width: int = WINDOW_MIN
                  ) -> list[str]:
    """What changed in the ``width`` minutes that scored highest, against the hour before."""
    lo, hi = m - (width - 1) * MINUTE, m + MINUTE
    before_lo = lo - HOUR
    out: list[str] = []
    if metric in ("failure_rate", "throughput", "backlog_growth"):
        errs_now = await deps.pool.fetch(ERRORS, queue, to_dt(lo), to_dt(hi))
        errs_before = {(r["job_type"], r["error_type"]): int(r["n"]) for r in
                       await deps.pool.fetch(ERRORS, queue, to_dt(before_lo), to_dt(lo))}
        grew = sorted(((int(r["n"]) / width
                        - errs_before.get((r["job_type"], r["error_type"]), 0) / 60,
                        r["job_type"], r["error_type"], int(r["n"])) for r in errs_now),
                      reverse=True)
        for rate, jt, et, n in grew[:3]:
            if rate > 0:
                was = errs_before.get((jt, et), 0) / 60
                out.append(f"{et} in {jt}: {n} failures in {width} min "
                           f"({n / width:.1f}/min, {was:.1f}/min the hour before)")
    if metric == "duration_p95":
        now = {r["job_type"]: r for r in await deps.pool.fetch(TYPES, queue, to_dt(lo),
                                                               to_dt(hi))}
        before = {r["job_type"]: r for r in await deps.pool.fetch(TYPES, queue,
                                                                  to_dt(before_lo), to_dt(lo))}
        slower = []
        for jt, r in now.items():
            b = before.get(jt)
            if r["completed"] and b is not None and b["completed"]:
                a_now, a_before = r["dur"] / r["completed"], b["dur"] / b["completed"]
                if a_before > 0 and a_now > 1.5 * a_before:
                    slower.append((a_now / a_before, jt, a_now, a_before))
        for ratio, jt, a_now, a_before in sorted(slower, reverse=True)[:3]:
            out.append(f"{jt} runs {ratio:.1f}x slower: mean {a_now:,.0f} ms "
                       f"(was {a_before:,.0f} ms)")
    crashes = int(await deps.pool.fetchval(CRASHES, to_dt(lo - WINDOW_MIN * MINUTE), to_dt(hi)))
    if crashes:
        out.append(f"{crashes} worker crash{'es' if crashes != 1 else ''} in the last "
                   f"{2 * WINDOW_MIN} min")
    counts = [float(r["value"]) for r in await deps.pool.fetch(WORKERS, to_dt(before_lo),
                                                                  to_dt(hi))]
    if len(counts) >= 2 and counts[-1] < 0.8 * max(counts):
        out.append(f"worker count fell to {counts[-1]:.0f} (from {max(counts):.0f} within "
                   f"the hour)")
    return out


@dataclass
class Episode:
    id: int
    queue: str
    metric: str
    calm: int = 0


async def detect(deps: Deps, from_ms: int, to_ms: int, *, queue: str | None = None,
                 trace: dict[tuple[str, str, int], dict[int, tuple[float, ...]]] | None = None
                 ) -> list[dict[str, Any]]:
    """Run the detector on every whole minute in ``[from, to)``, in order, storing episodes and
    emitting one ``ai.anomaly`` event per new episode. Returns the new episodes.

    ``trace``, when given, receives every scored (queue, metric, minute)'s ``(score, value,
    baseline median, baseline scale, n)`` per window width (bench/anomaly_eval.py's delay
    breakdown)."""
    first = from_ms // MINUTE * MINUTE
    lead = (FALLBACK_HOURS * 60 + WINDOW_MIN) * MINUTE
    data = await _read(deps, first - lead, to_ms, queue)
    opened = {(r["queue_name"], r["metric"]): Episode(r["id"], r["queue_name"], r["metric"])
              for r in await deps.pool.fetch(OPEN)}
    streak: dict[tuple[str, str], int] = defaultdict(int)
    baselines: dict[int, dict[tuple[str, str], Baseline]] = {}
    new: list[dict[str, Any]] = []
    # the minutes before ``first`` only warm the confirmation streaks up, so a tick of one minute
    # confirms exactly as a backfill over the whole range would
    m = first - (CONFIRM - 1) * MINUTE
    while m + MINUTE <= to_ms:
        warming = m < first
        hour = m // HOUR * HOUR
        if hour not in baselines:
            recent = [x for x in range(hour - FALLBACK_HOURS * HOUR, hour, MINUTE)
                      if x >= first - lead]
            baselines = {hour: await _baselines(deps, hour, queue, data, recent)}
        base = baselines[hour]
        for q in sorted(data.queues()):
            windows = {w: _window(data, q, m, w) for w in (1, 2, WINDOW_MIN, 10)}
            for metric in METRICS:
                key = (q, metric)
                b = base.get(key)
                score, v, width = _best(metric, windows, b)
                if trace is not None and not warming and b is not None:
                    trace[(q, metric, m)] = {
                        w: (sv[0], sv[1], b.median, b.scale,
                            float(windows[w]["n_finished" if metric == "failure_rate"
                                             else "n_completed"] or 0))
                        for w, sv in _scores(metric, windows, b).items()}
                ep = opened.get(key)
                if warming:
                    streak[key] = streak[key] + 1 if score >= THRESHOLD and ep is None else 0
                    continue
                if ep is not None:
                    # an episode lasts while the recent windows stay high: the 10-minute
                    # window would keep it open for 10 minutes after the change ended
                    score = _best(metric, windows, b, WINDOW_MIN)[0]
                    if score >= THRESHOLD / 2:
                        ep.calm = 0
                        await deps.pool.execute(TOUCH, ep.id, to_dt(m), score)
                    else:
                        ep.calm += 1
                        if ep.calm >= QUIET_MIN:
                            await deps.pool.execute(END, ep.id, to_dt(m))
                            del opened[key]
                    continue
                streak[key] = streak[key] + 1 if score >= THRESHOLD else 0
                if (streak[key] >= CONFIRM or score >= STRONG) and v is not None \
                        and b is not None:
                    causes = await _causes(deps, q, metric, m, width)
                    row_id = await deps.pool.fetchval(
                        INSERT, q, metric, to_dt(m + MINUTE), v, b.median, score,
                        orjson.dumps({"causes": causes, "baselineSource": b.source}).decode())
                    opened[key] = Episode(row_id, q, metric)
                    streak[key] = 0
                    a = {"id": row_id, "queue": q, "metric": metric,
                         "detectedAtMs": m + MINUTE, "currentValue": v, "baseline": b.median,
                         "score": round(score, 2), "possibleCauses": causes,
                         "baselineSource": b.source}
                    new.append(a)
                    await emit(deps, [NewEvent("ai.anomaly", queue=q, data={
                        k: a[k] for k in ("metric", "currentValue", "baseline", "score",
                                          "possibleCauses")})])
        m += MINUTE
    return new


#: One detector at a time when several schedulers run (session-level advisory lock).
LOCK_KEY = 0x6A6C61690001


async def tick(deps: Deps) -> int:
    """The scheduler's step: every whole minute since the last one detected (at most an hour
    back), so a restart neither skips nor repeats minutes."""
    async with deps.pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
            return 0
        try:
            now = deps.clock.now_ms() // MINUTE * MINUTE
            last = await conn.fetchval(STATE)
            start = max(int(last) + MINUTE if last is not None else now - MINUTE, now - HOUR)
            if start >= now:
                return 0
            found = await detect(deps, start, now)
            await conn.execute(SET_STATE, str(now - MINUTE))
            return len(found)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)


async def summarize(deps: Deps, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` (of :func:`list_anomalies`) with ``causesSummary`` (the possible causes in one
    sentence, null when there are none) and ``narrated`` (phrased by the LLM from the episode's
    metric, queue, values and causes, when one is configured)."""
    out = []
    for a in rows:
        causes = a["possibleCauses"]
        summary = (f"{a['metric'].replace('_', ' ')} on {a['queue']} at {a['currentValue']:,.3g}"
                   f" against a baseline of {a['baseline']:,.3g}; possible causes: "
                   + "; ".join(causes)) if causes else None
        out.append({**a, "causesSummary": summary, "narrated": False})
    todo = [a for a in out if a["causesSummary"]]
    texts = await narrate.phrase_many(
        deps.settings, "Summarise the likely cause of this anomaly for an operator.",
        [({"metric": a["metric"], "queue": a["queue"], "currentValue": a["currentValue"],
           "baseline": a["baseline"], "score": a["peakScore"], "causes": a["possibleCauses"],
           "text": a["causesSummary"]}, a["causesSummary"]) for a in todo])
    for a, (text, done) in zip(todo, texts, strict=True):
        a["causesSummary"], a["narrated"] = text, done
    return out


async def list_anomalies(deps: Deps, from_ms: int, to_ms: int,
                         queue: str | None = None) -> list[dict[str, Any]]:
    out = []
    for r in await deps.pool.fetch(LIST, to_dt(from_ms), to_dt(to_ms), queue):
        extra = orjson.loads(r["possible_causes"]) if isinstance(r["possible_causes"],
                                                                 str | bytes) \
            else r["possible_causes"]
        out.append({
            "id": r["id"], "metric": r["metric"], "queue": r["queue_name"],
            "detectedAtMs": from_dt(r["detected_at"]),
            "lastSeenMs": from_dt(r["last_seen_at"]),
            "endedAtMs": from_dt(r["ended_at"]) if r["ended_at"] is not None else None,
            "currentValue": r["current_value"], "baseline": r["baseline"],
            "score": round(r["score"], 2), "peakScore": round(r["peak_score"], 2),
            "possibleCauses": extra.get("causes", []),
            "baselineSource": extra.get("baselineSource"),
        })
    return out
