"""The analytics read layer (issue 16): every figure of ``/api/v1/analytics/*`` and GraphQL's
``analytics`` field, computed from the rollup tables of migration 0022, never from ``jobs``
(the one exception is :func:`critical_path`, which reads one DAG's rows by id).

Both shells call these functions and serialise what they return (plain dicts with the
contract's camelCase keys, datetimes as :class:`datetime`), so REST and GraphQL cannot disagree.

Invariants:
  * A range ``[from, to)`` is read at minute resolution (both ends rounded up to a whole minute)
    and split by :func:`decompose` into day rows for whole UTC days, hour rows for whole hours
    and minute rows for the edges; an edge older than the minute retention reads its enclosing
    hour's rows instead (the only case where a read covers more than the range). Hour/day rows
    are read only up to the compaction watermark (migration 0030), minute rows after it.
  * Sums are done by PostgreSQL (``GROUP BY`` over a ``UNION ALL`` of the grains, one statement
    per figure family); Python only merges histogram buckets (``sketch.percentile``) and
    derives ratios, so a 30-day read touches a few thousand day/hour rows whatever the job
    count.
  * Sample series (``analytics_samples``/``_hour``) are averaged into steps chosen so a series
    has at most :data:`MAX_POINTS` points.
"""

from __future__ import annotations

import asyncio
import math
import os
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobline.shared.observe import sketch
from jobline.shared.platform.clock import from_dt, to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import NotFound, ValidationFailed

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
GRAINS = {"minute": MINUTE, "hour": HOUR, "day": DAY}
#: A range may span at most this many days.
MAX_RANGE_DAYS = 400
#: A sample series has at most about this many points (a 30-day series: 240 three-hour steps).
MAX_POINTS = 300
#: A throughput / failure-rate series has at most this many buckets.
MAX_BUCKETS = 10_000
DEFAULT_PRICE = 0.10
INTERVALS = ("minute", "hour", "day")
DURATION_METRICS = ("duration", "wait", "e2e")
GROUP_BYS = ("queue", "jobType")
SLA_METRICS = ("e2e", "wait")
#: Sample steps, smallest first (ms).
_STEPS = (MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR,
          2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY)


class BadParameter(ValidationFailed):
    """A query parameter or field outside its domain: REST 400 naming it, GraphQL
    ``BAD_USER_INPUT`` with ``extensions.field``."""

    code = "bad_request"
    http_status = 400


# --- configuration -------------------------------------------------------------------------------


def default_price() -> float:
    """``JOBLINE_PRICE_PER_WORKER_HOUR`` (default 0.10): the price of a queue without its own."""
    raw = os.environ.get("JOBLINE_PRICE_PER_WORKER_HOUR")
    try:
        value = float(raw) if raw not in (None, "") else DEFAULT_PRICE
    except ValueError:
        return DEFAULT_PRICE
    return value if math.isfinite(value) and value >= 0 else DEFAULT_PRICE


def minute_days() -> int:
    """``JOBLINE_ROLLUP_MINUTE_DAYS`` (default 7): how long minute rows are kept."""
    raw = os.environ.get("JOBLINE_ROLLUP_MINUTE_DAYS")
    return int(raw) if raw and raw.isdigit() else 7


def minute_floor(now_ms: int) -> int:
    """Minute rows exist at or after this (a whole hour): older edges read hour rows. The hour
    retention cuts into is skipped, so a half-deleted hour is never read at minute grain."""
    return _ceil(now_ms - minute_days() * DAY, HOUR)


# --- validation ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What every analytics figure is computed over: ``[from_ms, to_ms)`` and the filters."""

    from_ms: int
    to_ms: int
    queue: str | None = None
    job_type: str | None = None
    #: the clock's now, for the minute retention boundary
    now_ms: int = 0

    @property
    def span(self) -> int:
        return self.to_ms - self.from_ms

    def previous(self) -> Scope:
        return Scope(self.from_ms - self.span, self.from_ms, self.queue, self.job_type,
                     self.now_ms)


def parse_time(raw: str, field: str) -> int:
    """ISO 8601 (a zone, or UTC when none) -> epoch ms."""
    try:
        dt = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadParameter(field, "must be an ISO 8601 time, e.g. 2026-01-31T00:00:00Z") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=to_dt(0).tzinfo)
    return from_dt(dt)


def scope(now_ms: int, from_ms: int | None = None, to_ms: int | None = None,
          queue: str | None = None, job_type: str | None = None) -> Scope:
    """A validated scope; ``to`` defaults to now, ``from`` to 24 hours before ``to``."""
    to = now_ms if to_ms is None else to_ms
    frm = to - DAY if from_ms is None else from_ms
    to, frm = _ceil(to, MINUTE), _ceil(frm, MINUTE)
    if frm >= to:
        raise BadParameter("from", "must be before to (at least a minute)")
    if to - frm > MAX_RANGE_DAYS * DAY:
        raise BadParameter("to", f"the range may span at most {MAX_RANGE_DAYS} days")
    for name, v in (("queue", queue), ("jobType", job_type)):
        if v is not None and (not v or len(v) > 200 or "\x00" in v):
            raise BadParameter(name, "must be 1-200 characters without NUL")
    return Scope(frm, to, queue or None, job_type or None, now_ms)


def choice(field: str, value: str, options: Sequence[str]) -> str:
    if value not in options:
        raise BadParameter(field, "must be one of " + ", ".join(options))
    return value


def bounded(field: str, value: int, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise BadParameter(field, f"must be an integer from {lo} to {hi}")
    return value


def parse_int(field: str, raw: str | None, default: int, lo: int, hi: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(field, f"must be an integer from {lo} to {hi}") from None
    return bounded(field, value, lo, hi)


# --- range decomposition ----------------------------------------------------------------------


def _floor(t: int, g: int) -> int:
    return t // g * g


def _ceil(t: int, g: int) -> int:
    return -(-t // g) * g


def _merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(s for s in spans if s[0] < s[1]):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def decompose(from_ms: int, to_ms: int, floor_ms: int, max_grain: int = DAY,
              compacted_ms: int | None = None) -> dict[int, list[tuple[int, int]]]:
    """``[from, to)`` as disjoint spans per grain (``{MINUTE: [...], HOUR: [...], DAY: [...]}``):
    day rows for whole UTC days, hour rows for whole hours outside them, minute rows for the
    rest; minute spans before ``floor_ms`` (minute rows dropped) become their enclosing hours.
    No grain coarser than ``max_grain`` is used (a per-hour series cannot read day rows).

    ``compacted_ms`` is the compaction watermark (migration 0030): hour/day rows hold only the
    minutes before it, so they are read only for spans ending at or before it, and minute rows
    from its hour on (retention keeps them)."""
    out: dict[int, list[tuple[int, int]]] = {MINUTE: [], HOUR: [], DAY: []}
    minutes: list[tuple[int, int]] = []
    hours: list[tuple[int, int]] = []
    whole = to_ms if compacted_ms is None else max(from_ms, min(to_ms, compacted_ms))
    if compacted_ms is not None:
        floor_ms = min(floor_ms, _floor(compacted_ms, HOUR))
    d0, d1 = _ceil(from_ms, DAY), _floor(whole, DAY)
    h0, h1 = _ceil(from_ms, HOUR), _floor(whole, HOUR)
    if max_grain >= DAY and d0 < d1:
        out[DAY].append((d0, d1))
        hours += [(h0, d0), (d1, h1)]
    elif max_grain >= HOUR and h0 < h1:
        hours.append((h0, h1))
    if max_grain >= HOUR and h0 < h1:
        minutes += [(from_ms, h0), (h1, to_ms)]
    else:
        minutes.append((from_ms, to_ms))
    for lo, hi in minutes:
        if lo >= hi:
            continue
        if lo < floor_ms:
            cut = min(hi, floor_ms)
            hours.append((_floor(lo, HOUR), _ceil(cut, HOUR)))
            lo = max(lo, _ceil(cut, HOUR))
        if lo < hi:
            out[MINUTE].append((lo, hi))
    out[HOUR] = _merge(hours)
    out[MINUTE] = _merge(out[MINUTE])
    return out


_TABLES = {
    "rollups": ("job_rollups", "job_rollups_hour", "job_rollups_day"),
    "hist": ("job_rollup_histograms", "job_rollup_histograms_hour", "job_rollup_histograms_day"),
    "errors": ("job_rollup_errors", "job_rollup_errors_hour", "job_rollup_errors_day"),
    "attempts": ("job_rollup_attempts", "job_rollup_attempts_hour", "job_rollup_attempts_day"),
}
_COLUMNS = {
    "rollups": ("queue_name", "job_type", "submitted", "started", "completed", "failed",
                "retries", "dead_letter", "cancelled", "duration_sum_ms", "wait_sum_ms",
                "e2e_sum_ms", "failed_ms"),
    "hist": ("queue_name", "job_type", "metric", "bucket", "n"),
    "errors": ("queue_name", "job_type", "error_type", "n"),
    "attempts": ("queue_name", "job_type", "attempt", "completed", "failed"),
}


WATERMARK = "SELECT compacted_through FROM rollup_watermark WHERE id = 1"


class _Sql:
    """Builds one statement's text and its positional parameters. ``compacted_ms`` is the
    rollups' compaction watermark (:func:`_sql` reads it), None to read as if all compacted."""

    def __init__(self, compacted_ms: int | None = None) -> None:
        self.params: list[Any] = []
        self.compacted_ms = compacted_ms

    def p(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"

    def grains(self, periods: Sequence[tuple[int, Scope]], interval: int | None = None
               ) -> list[int]:
        """The grains whose rows :meth:`source` reads for these periods."""
        return [g for g in (MINUTE, HOUR, DAY)
                if any(decompose(s.from_ms, s.to_ms, minute_floor(s.now_ms), interval or DAY,
                                 self.compacted_ms)[g] for _, s in periods)]

    def source(self, kind: str, periods: Sequence[tuple[int, Scope]], where: str = "",
               interval: int | None = None, grains: Sequence[int] = (MINUTE, HOUR, DAY)
               ) -> str:
        """``UNION ALL`` of the rows of ``kind`` covering each period's scope, with columns
        ``at`` (the row's time), ``period`` (the given label), the kind's columns and, given
        an ``interval``, ``b``: the start of the interval holding the row (no grain coarser
        than the interval is read). Only the rows of ``grains`` (the scope's other spans are
        left to another statement)."""
        cols = ", ".join(_COLUMNS[kind])
        max_grain = interval or DAY
        parts: list[str] = []
        for label, s in periods:
            spans = decompose(s.from_ms, s.to_ms, minute_floor(s.now_ms), max_grain,
                              self.compacted_ms)
            spans = {g: v if g in grains else [] for g, v in spans.items()}
            filters = ""
            if s.queue is not None:
                filters += f" AND queue_name = {self.p(s.queue)}"
            if s.job_type is not None:
                filters += f" AND job_type = {self.p(s.job_type)}"
            for grain, table, col in zip((MINUTE, HOUR, DAY), _TABLES[kind],
                                         ("minute", "at", "at"), strict=True):
                # one branch per span: a plain range is an index range scan, where an OR of
                # ranges next to other filters made the planner scan the whole hour table
                b = ""
                if interval is not None:
                    # rows of the interval's grain (or coarser: old hour rows in a per-minute
                    # series) already start their interval; only finer rows are truncated
                    b = (f"{col} AS b, " if grain >= interval else
                         f"date_trunc('{_UNIT[interval]}', {col}, 'UTC') AS b, ")
                for lo, hi in spans[grain]:
                    parts.append(f"SELECT {col} AS at, {b}{label} AS period, {cols} FROM {table} "
                                 f"WHERE {col} >= {self.p(to_dt(lo))} AND {col} < "
                                 f"{self.p(to_dt(hi))}{filters}{where}")
        if not parts:
            b = "minute AS b, " if interval is not None else ""
            parts.append(f"SELECT minute AS at, {b}0 AS period, {cols} FROM {_TABLES[kind][0]} "
                         "WHERE false")
        return "(" + "\nUNION ALL\n".join(parts) + ") src"


async def _sql(deps: Deps) -> _Sql:
    """A statement builder knowing the compaction watermark (one indexed single-row read)."""
    w = await deps.pool.fetchval(WATERMARK)
    return _Sql(None if w is None else from_dt(w))


def _f(v: Any) -> float:
    return float(v) if v is not None else 0.0


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def _trend(value: float | None, previous: float | None) -> dict[str, float | None]:
    change = None
    if value is not None and previous:
        change = (value - previous) / previous
    return {"value": value, "previous": previous, "change": change}


def _pcts(counts: Sequence[tuple[int, int]]) -> tuple[float | None, float | None, float | None]:
    return (sketch.percentile(counts, 50), sketch.percentile(counts, 95),
            sketch.percentile(counts, 99))


def _hist_json(counts: dict[int, float]) -> list[dict[str, float]]:
    out = []
    for b in sorted(counts):
        if counts[b] > 0:
            lo, hi = sketch.bounds(b)
            out.append({"lowerMs": float(lo), "upperMs": float(hi), "count": counts[b]})
    return out


def _int_counts(d: dict[int, float]) -> list[tuple[int, int]]:
    return [(b, int(n)) for b, n in d.items()]


_SUMS = ("submitted", "started", "completed", "failed", "retries", "dead_letter", "cancelled",
         "duration_sum_ms", "wait_sum_ms", "e2e_sum_ms", "failed_ms")
_SUM_SQL = ", ".join(f"sum({c})::float8 AS {c}" for c in _SUMS)


_UNIT = {MINUTE: "minute", HOUR: "hour", DAY: "day"}


def _grouped(keys: Sequence[str], interval: int | None) -> tuple[str, str]:
    """(select list, GROUP BY list) of ``keys`` plus, given an interval, the source's ``b``."""
    cols = [*keys, "b"] if interval is not None else list(keys)
    return ", ".join(cols), ", ".join(str(i + 1) for i in range(len(cols)))


def _ms_b(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """Rows as dicts, ``b`` (a timestamptz) as epoch ms."""
    out = []
    for r in rows:
        d = dict(r)
        if d.get("b") is not None:
            d["b"] = from_dt(d["b"])
        out.append(d)
    return out


async def _rollup_sums(deps: Deps, periods: Sequence[tuple[int, Scope]],
                       by: Sequence[str] = (), interval: int | None = None
                       ) -> list[dict[str, Any]]:
    """Summed rollup counters grouped by ``period``, ``by`` columns and (given ``interval``)
    the interval's start ``b`` (epoch ms)."""
    q = await _sql(deps)
    src = q.source("rollups", periods, interval=interval)
    select, group = _grouped(["period", *by], interval)
    return _ms_b(await deps.pool.fetch(f"SELECT {select}, {_SUM_SQL} FROM {src} "
                                       f"GROUP BY {group}", *q.params))


async def _hist(deps: Deps, periods: Sequence[tuple[int, Scope]], metrics: Sequence[str],
                by: Sequence[str] = (), interval: int | None = None) -> list[Any]:
    """Histogram counts grouped by ``period``, ``metric``, ``by``, (``b``) and ``bucket``:
    one row per group.

    One statement per period and grain, side by side on the pool's connections, their rows
    merged here: an unfiltered read of 30 days on the 100M seed aggregates ~160,000 day rows
    and ~100,000 hour rows of one metric, and the planner ran such a statement on one core
    (docs/analytics.md, "A third complete 100M run")."""
    compacted = (await _sql(deps)).compacted_ms
    reads = [(p, g) for p in periods for g in _Sql(compacted).grains([p], interval)]
    if not reads:
        return []
    parts = await asyncio.gather(*(_hist_part(deps, compacted, [p], metrics, by, interval, g)
                                   for p, g in reads))
    if len(parts) == 1:
        return parts[0]
    # The same group can come from two grains (a bucket's day rows and its hour edges).
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for part in parts:
        for r in part:
            key = tuple(v for k, v in r.items() if k != "n")
            if key in merged:
                merged[key]["n"] += r["n"]
            else:
                merged[key] = r
    return list(merged.values())


async def _hist_part(deps: Deps, compacted: int | None, periods: Sequence[tuple[int, Scope]],
                     metrics: Sequence[str], by: Sequence[str], interval: int | None,
                     grain: int) -> list[dict[str, Any]]:
    """:func:`_hist`'s statement over the rows of one grain."""
    q = _Sql(compacted)
    mp = q.p(list(metrics))
    src = q.source("hist", periods, where=f" AND metric = ANY({mp}::text[])",
                   interval=interval, grains=(grain,))
    # one metric (most reads): a constant column, not a grouping key; hashing one text key
    # less per row took ~10-30% off the unfiltered 100M reads (docs/analytics.md)
    single = len(metrics) == 1
    select, group = _grouped(["period", *([] if single else ["metric"]), *by], interval)
    n = group.count(",") + 2
    metric = f", ({mp}::text[])[1] AS metric" if single else ""
    return _ms_b(await deps.pool.fetch(
        f"SELECT {select}, bucket, sum(n)::float8 AS n{metric} FROM {src} "
        f"GROUP BY {group}, {n}", *q.params))


def _key_of(r: Any) -> tuple[str, str]:
    return (r["queue_name"], r["job_type"])


# --- summary -------------------------------------------------------------------------------------


async def summary(deps: Deps, s: Scope) -> dict[str, Any]:
    periods = [(0, s), (1, s.previous())]
    sums, hist = await asyncio.gather(_rollup_sums(deps, periods),
                                      _hist(deps, periods, ["duration"]))
    by_period = {r["period"]: r for r in sums}
    counts: dict[int, list[tuple[int, int]]] = {0: [], 1: []}
    for r in hist:
        counts[r["period"]].append((r["bucket"], int(r["n"])))

    def figures(p: int) -> dict[str, float | None]:
        r = by_period.get(p, {})
        completed, dl = _f(r.get("completed")), _f(r.get("dead_letter"))
        p50, p95, p99 = _pcts(counts[p])
        return {"processed": completed + dl, "succeeded": completed,
                "failed": _f(r.get("failed")), "deadLettered": dl,
                "successRate": _ratio(completed, completed + dl),
                "avgDurationMs": _ratio(_f(r.get("duration_sum_ms")), completed),
                "p50Ms": p50, "p95Ms": p95, "p99Ms": p99}

    cur, prev = figures(0), figures(1)
    return {k: _trend(cur[k], prev[k]) for k in cur}


# --- throughput ------------------------------------------------------------------------------


def _interval(s: Scope, interval: str, field: str = "interval") -> int:
    g = GRAINS[choice(field, interval, INTERVALS)]
    if s.span / g > MAX_BUCKETS:
        raise BadParameter(field, f"{interval} buckets over this range would be more than "
                                  f"{MAX_BUCKETS}: use a coarser interval")
    return g


def _slots(s: Scope, g: int) -> list[int]:
    return list(range(_floor(s.from_ms, g), s.to_ms, g))


async def throughput(deps: Deps, s: Scope, interval: str = "hour") -> list[dict[str, Any]]:
    g = _interval(s, interval)
    rows = {r["b"]: r for r in await _rollup_sums(deps, [(0, s)], interval=g)}
    out = []
    for b in _slots(s, g):
        r = rows.get(b, {})
        out.append({"at": to_dt(b), "submitted": _f(r.get("submitted")),
                    "started": _f(r.get("started")), "completed": _f(r.get("completed")),
                    "failed": _f(r.get("failed")), "deadLettered": _f(r.get("dead_letter"))})
    return out


# --- durations -------------------------------------------------------------------------------

_SUM_OF = {"duration": "duration_sum_ms", "wait": "wait_sum_ms", "e2e": "e2e_sum_ms"}


async def durations(deps: Deps, s: Scope, metric: str = "duration") -> dict[str, Any]:
    choice("metric", metric, DURATION_METRICS)
    hist, sums = await asyncio.gather(
        _hist(deps, [(0, s)], [metric], by=("queue_name", "job_type")),
        _rollup_sums(deps, [(0, s)], by=("queue_name", "job_type")))
    total: dict[int, float] = defaultdict(float)
    per: dict[tuple[str, str], dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for r in hist:
        total[r["bucket"]] += r["n"]
        per[_key_of(r)][r["bucket"]] += r["n"]
    sum_ms = {_key_of(r): _f(r[_SUM_OF[metric]]) for r in sums}
    by_type: list[dict[str, Any]] = []
    for key, counts in per.items():
        n = sum(counts.values())
        p50, p95, p99 = _pcts(_int_counts(counts))
        by_type.append({"queue": key[0], "jobType": key[1], "count": n,
                        "avgMs": _ratio(sum_ms.get(key, 0.0), n),
                        "p50Ms": p50, "p95Ms": p95, "p99Ms": p99})
    by_type.sort(key=lambda t: (-(t["p95Ms"] or 0), t["queue"], t["jobType"]))
    p50, p95, p99 = _pcts(_int_counts(total))
    return {"metric": metric, "count": sum(total.values()), "p50Ms": p50, "p95Ms": p95,
            "p99Ms": p99, "histogram": _hist_json(total), "byJobType": by_type}


# --- failures ------------------------------------------------------------------------------------


async def error_types(deps: Deps, s: Scope, limit: int = 50) -> list[dict[str, Any]]:
    q = await _sql(deps)
    src = q.source("errors", [(0, s)])
    rows = await deps.pool.fetch(f"SELECT error_type, sum(n)::float8 AS n FROM {src} "
                                 "GROUP BY error_type ORDER BY n DESC, error_type", *q.params)
    total = sum(r["n"] for r in rows)
    return [{"errorType": r["error_type"], "count": r["n"], "share": r["n"] / total}
            for r in rows[:limit]]


async def failure_trend(deps: Deps, s: Scope, interval: str = "hour") -> list[dict[str, Any]]:
    g = _interval(s, interval)
    rows = {r["b"]: r for r in await _rollup_sums(deps, [(0, s)], interval=g)}
    out = []
    for b in _slots(s, g):
        r = rows.get(b, {})
        failed = _f(r.get("failed"))
        finished = failed + _f(r.get("completed"))
        out.append({"at": to_dt(b), "failed": failed, "finished": finished,
                    "rate": _ratio(failed, finished)})
    return out


async def top_failing(deps: Deps, s: Scope, limit: int = 10) -> list[dict[str, Any]]:
    bounded("limit", limit, 1, 100)
    out = []
    for r in await _rollup_sums(deps, [(0, s)], by=("queue_name", "job_type")):
        failed = _f(r["failed"])
        finished = failed + _f(r["completed"])
        if failed > 0:
            out.append({"queue": r["queue_name"], "jobType": r["job_type"], "failed": failed,
                        "finished": finished, "rate": _ratio(failed, finished)})
    out.sort(key=lambda t: (-t["failed"], -(t["rate"] or 0), t["queue"], t["jobType"]))
    return out[:limit]


async def time_to_failure(deps: Deps, s: Scope) -> list[dict[str, float]]:
    counts: dict[int, float] = defaultdict(float)
    for r in await _hist(deps, [(0, s)], ["failed"]):
        counts[r["bucket"]] += r["n"]
    return _hist_json(counts)


async def failures(deps: Deps, s: Scope, interval: str = "hour",
                   limit: int = 10) -> dict[str, Any]:
    _interval(s, interval)
    bounded("limit", limit, 1, 100)
    e, t, top, ttf = await asyncio.gather(error_types(deps, s), failure_trend(deps, s, interval),
                                          top_failing(deps, s, limit), time_to_failure(deps, s))
    return {"errorTypes": e, "trend": t, "topJobTypes": top, "timeToFailure": ttf}


# --- retries -------------------------------------------------------------------------------------


async def retries(deps: Deps, s: Scope) -> dict[str, Any]:
    q = await _sql(deps)
    src = q.source("attempts", [(0, s)])
    sums, attempts = await asyncio.gather(
        _rollup_sums(deps, [(0, s)], by=("queue_name", "job_type")),
        deps.pool.fetch(f"SELECT attempt, sum(completed)::float8 AS completed, "
                        f"sum(failed)::float8 AS failed FROM {src} GROUP BY attempt "
                        "ORDER BY attempt LIMIT 100", *q.params))
    by_type = []
    wasted = 0.0
    for r in sums:
        jobs = _f(r["completed"]) + _f(r["dead_letter"])
        w = _f(r["failed_ms"]) / 1000
        wasted += w
        by_type.append({"queue": r["queue_name"], "jobType": r["job_type"], "jobs": jobs,
                        "retries": _f(r["retries"]), "avgRetries": _ratio(_f(r["retries"]), jobs),
                        "wastedComputeSeconds": w})
    by_type.sort(key=lambda t: (-t["retries"], -t["wastedComputeSeconds"], t["queue"],
                                t["jobType"]))
    by_attempt = [{"attempt": r["attempt"], "completed": r["completed"], "failed": r["failed"],
                   "successRate": _ratio(r["completed"], r["completed"] + r["failed"])}
                  for r in attempts]
    return {"byJobType": by_type, "byAttempt": by_attempt, "wastedComputeSeconds": wasted}


# --- samples -------------------------------------------------------------------------------------


def sample_step(s: Scope) -> tuple[bool, int]:
    """(read the minute table?, step in ms) for the scope's series: minute samples for ranges
    of up to two days inside the minute retention, hour samples otherwise; the step is the
    smallest of :data:`_STEPS` giving at most :data:`MAX_POINTS` points."""
    minute = s.span <= 2 * DAY and s.from_ms >= minute_floor(s.now_ms)
    grain = MINUTE if minute else HOUR
    want = max(grain, _ceil(s.span, MAX_POINTS) // MAX_POINTS)
    step = next((x for x in _STEPS if x >= want), _STEPS[-1])
    return minute, step


async def series(deps: Deps, s: Scope, metrics: Sequence[str], subjects: Sequence[str] | None,
                 agg: str = "avg") -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(metric, subject) -> ``[{at, value}]`` averaged (or summed, ``agg="sum"``) per step."""
    minute, step = sample_step(s)
    q = _Sql()  # samples only: no rollup grains
    m = q.p(list(metrics))
    st = q.p(step)
    lo = q.p(to_dt(s.from_ms if minute else _floor(s.from_ms, HOUR)))
    hi = q.p(to_dt(s.to_ms))
    subj = f" AND subject = ANY({q.p(list(subjects))}::text[])" if subjects is not None else ""
    if minute:
        value = "avg(value)" if agg == "avg" else "sum(value)"
        sql = (f"SELECT metric, subject, (floor(extract(epoch FROM minute) * 1000 / {st})"
               f" * {st})::bigint AS b, {value}::float8 AS v FROM analytics_samples "
               f"WHERE metric = ANY({m}::text[]) AND minute >= {lo} AND minute < {hi}{subj} "
               "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
    else:
        value = ("(sum(avg * n) / nullif(sum(n), 0))" if agg == "avg" else "sum(avg * n)")
        sql = (f"SELECT metric, subject, (floor(extract(epoch FROM at) * 1000 / {st})"
               f" * {st})::bigint AS b, {value}::float8 AS v FROM analytics_samples_hour "
               f"WHERE metric = ANY({m}::text[]) AND at >= {lo} AND at < {hi}{subj} "
               "GROUP BY 1, 2, 3 ORDER BY 1, 2, 3")
    out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in await deps.pool.fetch(sql, *q.params):
        if r["v"] is not None:
            out[(r["metric"], r["subject"])].append({"at": to_dt(r["b"]), "value": r["v"]})
    return out


async def latest(deps: Deps, s: Scope, metric: str,
                 subjects: Sequence[str] | None = None) -> dict[str, float]:
    """subject -> the last sample of ``metric`` before ``to`` (within the range's last hours)."""
    q = _Sql()  # samples only: no rollup grains
    m = q.p(metric)
    hi = q.p(to_dt(s.to_ms))
    lo_min = q.p(to_dt(max(s.from_ms, s.to_ms - HOUR)))
    lo_hour = q.p(to_dt(max(_floor(s.from_ms, HOUR), _floor(s.to_ms - 6 * HOUR, HOUR))))
    subj = f" AND subject = ANY({q.p(list(subjects))}::text[])" if subjects is not None else ""
    rows = await deps.pool.fetch(
        f"SELECT DISTINCT ON (subject) subject, v FROM ("
        f" SELECT subject, minute AS at, value AS v FROM analytics_samples"
        f"  WHERE metric = {m} AND minute >= {lo_min} AND minute < {hi}{subj}"
        f" UNION ALL SELECT subject, at + interval '59 minutes', last FROM analytics_samples_hour"
        f"  WHERE metric = {m} AND at >= {lo_hour} AND at < {hi}{subj}"
        f") t ORDER BY subject, at DESC", *q.params)
    return {r["subject"]: r["v"] for r in rows}


# --- queue health ----------------------------------------------------------------------------


async def queues_health(deps: Deps, s: Scope) -> list[dict[str, Any]]:
    subjects = [s.queue] if s.queue is not None else None
    sums, pts, depth, oldest, slots = await asyncio.gather(
        _rollup_sums(deps, [(0, s)], by=("queue_name",)),
        series(deps, s, ["queue.depth", "queue.oldest_pending_ms"], subjects),
        latest(deps, s, "queue.depth", subjects),
        latest(deps, s, "queue.oldest_pending_ms", subjects),
        series(deps, s, ["workers.slots"], ["*"]))
    by_queue = {r["queue_name"]: r for r in sums}
    names = set(by_queue) | {k[1] for k in pts}
    slot_pts = slots.get(("workers.slots", "*"), [])
    avg_slots = _ratio(sum(p["value"] for p in slot_pts), len(slot_pts))
    out = []
    for name in sorted(names):
        r = by_queue.get(name, {})
        completed, dl, submitted = (_f(r.get("completed")), _f(r.get("dead_letter")),
                                    _f(r.get("submitted")))
        busy = _f(r.get("duration_sum_ms")) + _f(r.get("failed_ms"))
        cur = depth.get(name)
        drain = (completed + dl - submitted) / s.span  # jobs per ms leaving the backlog
        clear: float | None = None
        if cur is not None:
            clear = 0.0 if cur <= 0 else (cur / drain if drain > 0 else None)
        util = None
        if avg_slots:
            util = min(1.0, busy / (avg_slots * s.span))
        out.append({"queue": name, "depth": pts.get(("queue.depth", name), []),
                    "oldestPendingAgeMs": pts.get(("queue.oldest_pending_ms", name), []),
                    "currentDepth": cur, "currentOldestPendingAgeMs": oldest.get(name),
                    "throughputPerMinute": completed / (s.span / MINUTE),
                    "utilization": util, "estimatedClearMs": clear})
    return out


# --- resources -------------------------------------------------------------------------------

_WORKER_METRICS = ("workers.count", "workers.busy", "workers.slots", "redis.memory_bytes",
                   "pg.database_bytes")


async def resources(deps: Deps, s: Scope) -> dict[str, Any]:
    minute, _ = sample_step(s)
    q = _Sql()  # samples only: no rollup grains
    lo = q.p(to_dt(s.from_ms if minute else _floor(s.from_ms, HOUR)))
    hi = q.p(to_dt(s.to_ms))
    per_worker_sql = (
        f"SELECT subject, avg(value) FILTER (WHERE metric = 'worker.cpu_pct')::float8 AS cpu,"
        f" avg(value) FILTER (WHERE metric = 'worker.rss_bytes')::float8 AS rss"
        f" FROM analytics_samples WHERE metric IN ('worker.cpu_pct', 'worker.rss_bytes')"
        f" AND minute >= {lo} AND minute < {hi} GROUP BY subject"
        if minute else
        f"SELECT subject, (sum(avg * n) FILTER (WHERE metric = 'worker.cpu_pct')"
        f" / nullif(sum(n) FILTER (WHERE metric = 'worker.cpu_pct'), 0))::float8 AS cpu,"
        f" (sum(avg * n) FILTER (WHERE metric = 'worker.rss_bytes')"
        f" / nullif(sum(n) FILTER (WHERE metric = 'worker.rss_bytes'), 0))::float8 AS rss"
        f" FROM analytics_samples_hour WHERE metric IN ('worker.cpu_pct', 'worker.rss_bytes')"
        f" AND at >= {lo} AND at < {hi} GROUP BY subject")
    pts, lag, crashes, workers, tables = await asyncio.gather(
        series(deps, s, _WORKER_METRICS, ["*"]),
        series(deps, s, ["events.lag"], None),
        series(deps, s, ["workers.crashes"], ["*"], agg="sum"),
        deps.pool.fetch(per_worker_sql + " ORDER BY cpu DESC NULLS LAST, subject LIMIT 100",
                        *q.params),
        latest(deps, s, "pg.table_bytes"))

    def get(metric: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = pts.get((metric, "*"), [])
        return found

    slots = {p["at"]: p["value"] for p in get("workers.slots")}
    util = [{"at": p["at"], "value": p["value"] / slots[p["at"]]}
            for p in get("workers.busy") if slots.get(p["at"])]
    busy_sum = sum(p["value"] for p in get("workers.busy") if slots.get(p["at"]))
    slot_sum = sum(slots[p["at"]] for p in get("workers.busy") if slots.get(p["at"]))
    n_crashes = sum(p["value"] for p in crashes.get(("workers.crashes", "*"), []))
    return {
        "workerCount": get("workers.count"), "utilization": util,
        "idleRatio": (1 - busy_sum / slot_sum) if slot_sum else None,
        "perWorker": [{"workerId": r["subject"], "cpuPct": r["cpu"], "rssBytes": r["rss"]}
                      for r in workers],
        "crashes": n_crashes, "crashRatePerHour": n_crashes / (s.span / HOUR),
        "redisMemoryBytes": get("redis.memory_bytes"), "postgresBytes": get("pg.database_bytes"),
        "tables": sorted(({"table": t, "bytes": b} for t, b in tables.items()),
                         key=lambda t: (-t["bytes"], t["table"])),
        "eventLag": [{"subject": k[1], "points": v} for k, v in sorted(lag.items())],
    }


# --- cost ----------------------------------------------------------------------------------------


async def prices(deps: Deps) -> dict[str, float]:
    return {r["queue_name"]: r["p"] for r in await deps.pool.fetch(
        "SELECT queue_name, price_per_worker_hour::float8 AS p FROM queue_costs")}


def _cost_rows(sums: Sequence[Any], price: dict[str, float], default: float,
               key: str) -> list[dict[str, Any]]:
    acc: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for r in sums:
        k = r["queue_name"] if key == "queue" else r["job_type"]
        hours = (_f(r["duration_sum_ms"]) + _f(r["failed_ms"])) / HOUR
        a = acc[k]
        a[0] += _f(r["completed"]) + _f(r["dead_letter"])
        a[1] += hours
        a[2] += hours * price.get(r["queue_name"], default)
    rows: list[dict[str, Any]] = [{"key": k, "jobs": a[0], "workerHours": a[1], "cost": a[2],
             "costPerJob": _ratio(a[2], a[0])} for k, a in acc.items()]
    rows.sort(key=lambda r: (-r["cost"], r["key"]))
    return rows


async def cost(deps: Deps, s: Scope, group_by: str = "queue") -> dict[str, Any]:
    choice("groupBy", group_by, GROUP_BYS)
    sums, price, db = await asyncio.gather(
        _rollup_sums(deps, [(0, s)], by=("queue_name", "job_type")), prices(deps),
        series(deps, s, ["pg.database_bytes"], ["*"]))
    default = default_price()
    rows = _cost_rows(sums, price, default, group_by)
    total = sum(r["cost"] for r in rows)
    pts = db.get(("pg.database_bytes", "*"), [])
    growth = None
    if len(pts) >= 2:
        days = (from_dt(pts[-1]["at"]) - from_dt(pts[0]["at"])) / DAY
        growth = (pts[-1]["value"] - pts[0]["value"]) / days if days > 0 else None
    return {"groupBy": group_by, "rows": rows,
            "mostExpensiveJobTypes": _cost_rows(sums, price, default, "jobType")[:5],
            "totalCost": total, "storageGrowthBytesPerDay": growth,
            "projectedMonthlyCost": total * 30 * DAY / s.span,
            "defaultPricePerWorkerHour": default}


# --- SLA -----------------------------------------------------------------------------------------


async def slas(deps: Deps, queue: str | None = None) -> list[dict[str, Any]]:
    rows = await deps.pool.fetch(
        "SELECT queue_name, objective, target_ms, metric FROM queue_slas "
        "WHERE $1::text IS NULL OR queue_name = $1 ORDER BY queue_name", queue)
    return [{"queue": r["queue_name"], "objective": r["objective"],
             "targetMs": float(r["target_ms"]), "metric": r["metric"]} for r in rows]


async def sla(deps: Deps, s: Scope) -> list[dict[str, Any]]:
    """Per SLA queue: compliance, violations and a per-hour (ranges up to two days) or per-day
    trend. PostgreSQL sums, per queue and period, the jobs in buckets wholly under the target,
    in the target's bucket and in all; the target's bucket then counts pro rata (the share of its
    integers at or under the target),
    so a 30-day read returns a few hundred rows, not every bucket."""
    defs = await slas(deps, s.queue)
    if not defs:
        return []
    g = HOUR if s.span <= 2 * DAY else DAY
    q = await _sql(deps)
    queues, metrics = [d["queue"] for d in defs], [d["metric"] for d in defs]
    targets = [sketch.bucket(int(d["targetMs"])) for d in defs]
    qp, mp, tp = q.p(queues), q.p(metrics), q.p(targets)
    src = q.source("hist", [(0, s)], where=f" AND queue_name = ANY({qp}::text[]) AND metric = "
                                            f"ANY({q.p(sorted(set(metrics)))}::text[])",
                   interval=g)
    select, group = _grouped(["queue_name", "metric", "bucket"], g)
    # bucket counts per queue and period first (a hash aggregate), then the split at the target
    rows = await deps.pool.fetch(
        f"SELECT sl.q, c.b, sum(c.n) FILTER (WHERE c.bucket < sl.tb)::float8 AS below,"
        f" sum(c.n) FILTER (WHERE c.bucket = sl.tb)::float8 AS at_target,"
        f" sum(c.n)::float8 AS total"
        f" FROM (SELECT {select}, sum(n) AS n FROM {src} GROUP BY {group}) c"
        f" JOIN unnest({qp}::text[], {mp}::text[], {tp}::int[]) AS sl(q, m, tb)"
        f" ON c.queue_name = sl.q AND c.metric = sl.m GROUP BY 1, 2", *q.params)
    cells: dict[str, dict[int, Any]] = defaultdict(dict)
    for r in _ms_b(rows):
        cells[r["q"]][r["b"]] = r
    out = []
    for d, tb in zip(defs, targets, strict=True):
        lo, hi = sketch.bounds(tb)
        frac = (math.floor(d["targetMs"]) - lo + 1) / (hi - lo)
        ok = total = 0.0
        trend = []
        for b in _slots(s, g):
            cell = cells[d["queue"]].get(b)
            o = (_f(cell["below"]) + _f(cell["at_target"]) * frac) if cell is not None else 0.0
            t = _f(cell["total"]) if cell is not None else 0.0
            ok, total = ok + o, total + t
            trend.append({"at": to_dt(b), "compliance": _ratio(o, t)})
        compliance = _ratio(ok, total)
        out.append({**d, "compliance": compliance,
                    "met": None if compliance is None else compliance >= d["objective"],
                    "violations": total - ok, "trend": trend})
    return out


def _check_queue(name: Any) -> str:
    from jobline.shared.dispatch.queue_controls import check_queue_name

    if not isinstance(name, str):
        raise BadParameter("queue", "must be a queue name")
    try:
        check_queue_name(name, "queue")
    except ValidationFailed as e:
        raise BadParameter("queue", e.message) from None
    return name


def _number(field: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise BadParameter(field, "must be a number")
    return float(v)


async def _queue_exists(deps: Deps, queue: str) -> None:
    if await deps.pool.fetchval("SELECT 1 FROM queues WHERE name = $1", queue) is None:
        raise NotFound(f"queue {queue!r} does not exist")


async def set_queue_sla(deps: Deps, queue: Any, objective: Any, target_ms: Any,
                        metric: Any = "e2e") -> dict[str, Any]:
    """Validate everything first (nothing is stored on bad input), then upsert."""
    queue = _check_queue(queue)
    obj = _number("objective", objective)
    if not 0 < obj < 1:
        raise BadParameter("objective", "must be between 0 and 1 (exclusive), e.g. 0.95")
    target = _number("targetMs", target_ms)
    if not 1 <= target <= 2**31 - 1 or target != int(target):
        raise BadParameter("targetMs", "must be a whole number of ms from 1 to 2147483647")
    if not isinstance(metric, str):
        raise BadParameter("metric", "must be one of " + ", ".join(SLA_METRICS))
    choice("metric", metric, SLA_METRICS)
    await _queue_exists(deps, queue)
    await deps.pool.execute(
        "INSERT INTO queue_slas (queue_name, objective, target_ms, metric, updated_at) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (queue_name) DO UPDATE SET "
        "objective = EXCLUDED.objective, target_ms = EXCLUDED.target_ms, "
        "metric = EXCLUDED.metric, updated_at = EXCLUDED.updated_at",
        queue, obj, int(target), metric, to_dt(deps.clock.now_ms()))
    return {"queue": queue, "objective": obj, "targetMs": float(int(target)), "metric": metric}


async def set_queue_cost(deps: Deps, queue: Any, price: Any) -> dict[str, Any]:
    queue = _check_queue(queue)
    p = _number("pricePerWorkerHour", price)
    if not 0 <= p < 1e8:
        raise BadParameter("pricePerWorkerHour", "must be from 0 to 99999999.9999")
    await _queue_exists(deps, queue)
    value = await deps.pool.fetchval(
        "INSERT INTO queue_costs (queue_name, price_per_worker_hour, updated_at) "
        "VALUES ($1, $2, $3) ON CONFLICT (queue_name) DO UPDATE SET "
        "price_per_worker_hour = EXCLUDED.price_per_worker_hour, updated_at = EXCLUDED.updated_at"
        " RETURNING price_per_worker_hour::float8", queue, round(p, 4),
        to_dt(deps.clock.now_ms()))
    return {"queue": queue, "pricePerWorkerHour": value}


# --- availability ----------------------------------------------------------------------------

#: Which component's outage explains another's when they overlap and start together.
_ROOT_ORDER = ("postgres", "redis", "scheduler", "workers", "api")


@dataclass
class _Down:
    component: str
    start: int
    end: int  # exclusive: the minute after the last down sample
    ongoing: bool = False


def _runs(component: str, minutes: Sequence[int], step: int = MINUTE) -> list[_Down]:
    out: list[_Down] = []
    for m in minutes:
        if out and m <= out[-1].end:
            out[-1].end = max(out[-1].end, m + step)
        else:
            out.append(_Down(component, m, m + step))
    return out


async def availability(deps: Deps, s: Scope) -> dict[str, Any]:
    """``health.up`` samples (1 up, 0 down) per component: minute samples inside the minute
    retention, hour samples before it (an hour with down minutes counts as one run of them from
    the hour's start: the hour table keeps no order)."""
    cut = max(s.from_ms, minute_floor(s.now_ms))
    lo_h, hi_h = _floor(s.from_ms, HOUR), min(s.to_ms, cut)
    mins, hours, downs, down_hours = await asyncio.gather(
        deps.pool.fetch("SELECT subject, sum(value)::float8 AS up, count(*)::float8 AS n "
                        "FROM analytics_samples WHERE metric = 'health.up' AND minute >= $1 "
                        "AND minute < $2 GROUP BY subject", to_dt(cut), to_dt(s.to_ms)),
        deps.pool.fetch("SELECT subject, sum(avg * n)::float8 AS up, sum(n)::float8 AS n "
                        "FROM analytics_samples_hour WHERE metric = 'health.up' AND at >= $1 "
                        "AND at < $2 GROUP BY subject", to_dt(lo_h), to_dt(hi_h)),
        deps.pool.fetch("SELECT subject, minute FROM analytics_samples WHERE metric = "
                        "'health.up' AND value < 1 AND minute >= $1 AND minute < $2 "
                        "ORDER BY subject, minute LIMIT 200000", to_dt(cut), to_dt(s.to_ms)),
        deps.pool.fetch("SELECT subject, at, avg, n FROM analytics_samples_hour WHERE metric = "
                        "'health.up' AND min < 1 AND at >= $1 AND at < $2 ORDER BY subject, at",
                        to_dt(lo_h), to_dt(hi_h)))
    up: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in [*hours, *mins]:
        up[r["subject"]][0] += r["up"]
        up[r["subject"]][1] += r["n"]
    runs: list[_Down] = []
    by_comp: dict[str, list[int]] = defaultdict(list)
    for r in downs:
        by_comp[r["subject"]].append(from_dt(r["minute"]))
    for comp, ms in by_comp.items():
        runs += _runs(comp, ms)
    hour_runs: list[_Down] = []
    last_at: dict[str, int] = {}
    for r in down_hours:  # ordered by subject, at: consecutive down hours are one incident
        down_min = round((1 - r["avg"]) * r["n"])
        if down_min <= 0:
            continue
        at, comp = from_dt(r["at"]), r["subject"]
        if last_at.get(comp) == at - HOUR:
            hour_runs[-1].end += down_min * MINUTE
        else:
            hour_runs.append(_Down(comp, at, at + down_min * MINUTE))
        last_at[comp] = at
    merged = sorted([*runs, *hour_runs], key=lambda d: (d.start, d.component))
    last_minute = s.to_ms - MINUTE
    incidents: list[dict[str, Any]] = []
    for d in merged:
        d.ongoing = d.end > last_minute
        root = min((o for o in merged if o.start <= d.start < o.end),
                   key=lambda o: (o.start, _ROOT_ORDER.index(o.component)
                                  if o.component in _ROOT_ORDER else 99, o.component))
        incidents.append({"component": d.component, "startedAt": to_dt(d.start),
                          "endedAt": None if d.ongoing else to_dt(d.end),
                          "durationMs": float(d.end - d.start), "cause": root.component})
    ended = [i["durationMs"] for i in incidents if i["endedAt"] is not None]
    covered = max((v[1] for v in up.values()), default=0.0) * MINUTE
    union = sum(hi - lo for lo, hi in _merge((d.start, d.end) for d in merged))
    return {
        "uptime": max(0.0, 1 - union / covered) if covered else None,
        "components": [{"component": c, "uptime": _ratio(v[0], v[1])}
                       for c, v in sorted(up.items())],
        "incidents": incidents[:500],
        "mttrMs": _ratio(sum(ended), len(ended)),
    }


# --- slow jobs -------------------------------------------------------------------------------


def _ms(v: float) -> str:
    return f"{v / 1000:.1f} s" if v >= 10_000 else f"{v:.0f} ms"


#: A slow-jobs row suggests looking at a p95 at least this many times the previous period's,
#: when both periods ran at least ``SLOW_MIN_RUNS`` jobs of the type.
P95_GROWTH = 1.5
SLOW_MIN_RUNS = 20


async def slow_jobs(deps: Deps, s: Scope, limit: int = 10) -> list[dict[str, Any]]:
    """The ``limit`` job types with the highest p95 run time, each with ``suggestions``
    computed from its figures: a long tail, timed-out attempts (raise ``timeoutMs`` to p99 x
    1.5), p95 growth against the previous equal period, waits longer than runs (add workers),
    compute spent on failed attempts."""
    bounded("limit", limit, 1, 100)
    q = await _sql(deps)
    src = q.source("errors", [(0, s)])
    hist, sums, errs = await asyncio.gather(
        _hist(deps, [(0, s), (1, s.previous())], ["duration"], by=("queue_name", "job_type")),
        _rollup_sums(deps, [(0, s)], by=("queue_name", "job_type")),
        deps.pool.fetch(f"SELECT queue_name, job_type, error_type, sum(n)::float8 AS n "
                        f"FROM {src} GROUP BY 1, 2, 3", *q.params))
    per: dict[tuple[str, str], dict[int, float]] = defaultdict(lambda: defaultdict(float))
    before: dict[tuple[str, str], dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for r in hist:
        (per if r["period"] == 0 else before)[_key_of(r)][r["bucket"]] += r["n"]
    by = {_key_of(r): r for r in sums}
    timeouts: dict[tuple[str, str], float] = defaultdict(float)
    top_error: dict[tuple[str, str], tuple[float, str]] = {}
    for r in errs:
        k = _key_of(r)
        if "timeout" in r["error_type"].lower() or "timedout" in r["error_type"].lower():
            timeouts[k] += r["n"]
        if r["n"] > top_error.get(k, (0.0, ""))[0]:
            top_error[k] = (r["n"], r["error_type"])
    busy = {k: _f(r["duration_sum_ms"]) + _f(r["failed_ms"]) for k, r in by.items()}
    all_busy = sum(busy.values())
    out: list[dict[str, Any]] = []
    for k, counts in per.items():
        n = sum(counts.values())
        p50, p95, p99 = _pcts(_int_counts(counts))
        r = by.get(k, {})
        tips: list[str] = []
        if p50 and p99 and p99 / p50 >= 5:
            tips.append(f"long tail: p99 {_ms(p99)} is {p99 / p50:.1f}x p50 {_ms(p50)}; "
                        "look at what the slowest inputs have in common or split the job")
        if timeouts.get(k) and p99:
            tips.append(f"{timeouts[k]:.0f} attempts timed out: raise timeoutMs to p99x1.5 = "
                        f"{round(p99 * 1.5)} ms")
        started, completed = _f(r.get("started")), _f(r.get("completed"))
        avg_wait = _ratio(_f(r.get("wait_sum_ms")), started)
        avg_run = _ratio(_f(r.get("duration_sum_ms")), completed)
        if avg_wait is not None and avg_run is not None and avg_wait > max(avg_run, 1000):
            tips.append(f"add workers to queue {k[0]}: jobs wait {_ms(avg_wait)} on average "
                        f"before they start, longer than they run ({_ms(avg_run)}); wait "
                        "dominates: see POST /api/v1/ai/scaling-recommendation for how many")
        prev = before.get(k) or {}
        p95_before = sketch.percentile(_int_counts(prev), 95) if prev else None
        if (p95 and p95_before and n >= SLOW_MIN_RUNS and sum(prev.values()) >= SLOW_MIN_RUNS
                and p95 >= P95_GROWTH * p95_before):
            since = to_dt(s.previous().from_ms).strftime("%Y-%m-%d %H:%M")
            tips.append(f"p95 grew {p95 / p95_before:.1f}x since the previous period "
                        f"(from {since} UTC: {_ms(p95_before)} -> {_ms(p95)}); compare recent "
                        "deploys and inputs of this job type")
        failed_ms = _f(r.get("failed_ms"))
        if busy.get(k) and failed_ms / busy[k] >= 0.2:
            err = top_error.get(k)
            tips.append(f"{failed_ms / busy[k]:.0%} of its compute ({failed_ms / 1000:.0f} s) "
                        "went to failed attempts" + (f"; most failures are {err[1]} "
                                                     f"({err[0]:.0f})" if err else ""))
        out.append({"queue": k[0], "jobType": k[1], "count": n, "p50Ms": p50, "p95Ms": p95,
                    "p99Ms": p99, "computeShare": busy.get(k, 0.0) / all_busy if all_busy
                    else 0.0, "suggestions": tips})
    out.sort(key=lambda t: (-(t["p95Ms"] or 0), t["queue"], t["jobType"]))
    return out[:limit]


# --- top issues ------------------------------------------------------------------------------


def _link(page: str, queue: str | None, job_type: str | None = None) -> str:
    qs = "&".join(f"{k}={v}" for k, v in (("queue", queue), ("jobType", job_type)) if v)
    return f"/analytics/{page}" + (f"?{qs}" if qs else "")


async def top_issues(deps: Deps, s: Scope, limit: int = 3) -> list[dict[str, Any]]:
    """Ranked by impact: jobs at stake (SLA violations, excess failed attempts over the
    previous period's rate, backlog growth, dead letters above the previous period's)."""
    bounded("limit", limit, 1, 50)
    reports, sums, depth = await asyncio.gather(
        sla(deps, s), _rollup_sums(deps, [(0, s), (1, s.previous())],
                                   by=("queue_name", "job_type")),
        series(deps, s, ["queue.depth"], [s.queue] if s.queue else None))
    issues: list[dict[str, Any]] = []
    for r in reports:
        if r["met"] is False:
            issues.append({
                "kind": "sla", "queue": r["queue"], "jobType": None,
                "title": f"SLA missed on {r['queue']}",
                "detail": f"{r['compliance']:.1%} of jobs within {_ms(r['targetMs'])} "
                          f"({r['metric']}), objective {r['objective']:.1%}: "
                          f"{r['violations']:.0f} jobs over the target",
                "impact": r["violations"], "link": _link("sla", r["queue"])})
    cur = {_key_of(r): r for r in sums if r["period"] == 0}
    prev = {_key_of(r): r for r in sums if r["period"] == 1}
    dl_now: dict[str, float] = defaultdict(float)
    dl_prev: dict[str, float] = defaultdict(float)
    for k, r in cur.items():
        dl_now[k[0]] += _f(r["dead_letter"])
        failed = _f(r["failed"])
        finished = failed + _f(r["completed"])
        p = prev.get(k, {})
        p_failed = _f(p.get("failed"))
        p_finished = p_failed + _f(p.get("completed"))
        rate, p_rate = _ratio(failed, finished), _ratio(p_failed, p_finished)
        if rate is None or failed < 5 or rate < 0.02:
            continue
        base = p_rate or 0.0
        if rate > base * 1.5 and rate - base >= 0.01:
            excess = failed - base * finished
            issues.append({
                "kind": "failure_rate", "queue": k[0], "jobType": k[1],
                "title": f"Failure rate up on {k[0]}/{k[1]}",
                "detail": f"{rate:.1%} of attempts failed ({failed:.0f} of {finished:.0f}), "
                          f"previous period {base:.1%}: {excess:.0f} more failures than at "
                          "that rate",
                "impact": excess, "link": _link("failures", k[0], k[1])})
    for k, r in prev.items():
        dl_prev[k[0]] += _f(r["dead_letter"])
    for q_name, n in dl_now.items():
        if n > dl_prev.get(q_name, 0.0):
            issues.append({
                "kind": "dlq", "queue": q_name, "jobType": None,
                "title": f"Dead letters growing on {q_name}",
                "detail": f"{n:.0f} jobs dead-lettered, {dl_prev.get(q_name, 0.0):.0f} in the "
                          "previous period",
                "impact": n - dl_prev.get(q_name, 0.0), "link": _link("failures", q_name)})
    for (_, q_name), pts in depth.items():
        if len(pts) >= 2 and pts[-1]["value"] - pts[0]["value"] >= 1:
            grown = pts[-1]["value"] - pts[0]["value"]
            issues.append({
                "kind": "backlog", "queue": q_name, "jobType": None,
                "title": f"Backlog growing on {q_name}",
                "detail": f"depth {pts[0]['value']:.0f} -> {pts[-1]['value']:.0f} jobs over the "
                          "range",
                "impact": grown, "link": _link("queues", q_name)})
    if s.job_type is not None:
        issues = [i for i in issues if i["jobType"] in (None, s.job_type)]
    issues.sort(key=lambda i: (-i["impact"], i["kind"], i["queue"] or "", i["jobType"] or ""))
    return issues[:limit]


# --- critical path ---------------------------------------------------------------------------

MAX_DAG_NODES = 10_000


def parse_job_id(raw: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise BadParameter("jobId", "must be a UUID") from None


async def critical_path(deps: Deps, job_id: uuid.UUID) -> dict[str, Any]:
    """The job's DAG (every job connected to it through ``job_dependencies``: its ancestors,
    its descendants and their other dependencies, so a workflow reads the same from any of
    its jobs), the longest path by wait + run time, and the path's bottlenecks. Edges run from
    a dependency to the job that waits for it. A node's wait is from the later of its due time
    and its last dependency's completion to its start."""
    rows = await deps.pool.fetch(
        """WITH RECURSIVE dag(id) AS (
               SELECT $1::uuid
               UNION
               SELECT n.id FROM dag, LATERAL (
                   SELECT depends_on AS id FROM job_dependencies WHERE job_id = dag.id
                   UNION ALL
                   SELECT job_id FROM job_dependencies WHERE depends_on = dag.id) n),
           ids AS (SELECT id FROM dag LIMIT $2)
           SELECT j.id, j.job_type, j.queue_name, j.status, j.scheduled_for, j.started_at,
                  j.completed_at
             FROM jobs j WHERE j.id IN (SELECT id FROM ids)""", job_id, MAX_DAG_NODES)
    if not any(r["id"] == job_id for r in rows):
        raise NotFound(f"job {job_id} not found")
    ids = [r["id"] for r in rows]
    edges = await deps.pool.fetch(
        "SELECT depends_on, job_id FROM job_dependencies WHERE job_id = ANY($1::uuid[]) "
        "AND depends_on = ANY($1::uuid[])", ids)
    node = {r["id"]: r for r in rows}
    parents: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    children: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for e in edges:
        parents[e["job_id"]].append(e["depends_on"])
        children[e["depends_on"]].append(e["job_id"])

    def ms(dt: datetime | None) -> int | None:
        return from_dt(dt) if dt is not None else None

    dur: dict[uuid.UUID, float | None] = {}
    wait: dict[uuid.UUID, float | None] = {}
    for i, r in node.items():
        st, done = ms(r["started_at"]), ms(r["completed_at"])
        dur[i] = float(done - st) if st is not None and done is not None else None
        ready = ms(r["scheduled_for"])
        for p in parents[i]:
            pd = ms(node[p]["completed_at"])
            if pd is not None and (ready is None or pd > ready):
                ready = pd
        wait[i] = float(max(0, st - ready)) if st is not None and ready is not None else None
    # longest path (node weights) in topological order (Kahn)
    indeg = {i: len(parents[i]) for i in node}
    order = sorted((i for i, d in indeg.items() if d == 0), key=str)
    best: dict[uuid.UUID, float] = {}
    prev: dict[uuid.UUID, uuid.UUID | None] = {}
    k = 0
    while k < len(order):
        i = order[k]
        k += 1
        w = (wait[i] or 0.0) + (dur[i] or 0.0)
        ps = parents[i]
        p_best = max(ps, key=lambda p: (best[p], str(p))) if ps else None
        best[i] = w + (best[p_best] if p_best is not None else 0.0)
        prev[i] = p_best
        for c in sorted(children[i], key=str):
            indeg[c] -= 1
            if indeg[c] == 0:
                order.append(c)
    path: list[uuid.UUID] = []
    if best:
        end: uuid.UUID | None = max(best, key=lambda i: (best[i], str(i)))
        while end is not None:
            path.append(end)
            end = prev[end]
        path.reverse()
    on_path = set(path)
    total = best[path[-1]] if path else None
    cands: list[dict[str, Any]] = []
    for i in path:
        for reason, v in (("duration", dur[i]), ("wait", wait[i])):
            if v:
                share = f" ({v / total:.0%} of the path)" if total else ""
                text = (f"ran {_ms(v)}{share}" if reason == "duration"
                        else f"waited {_ms(v)} to start{share}")
                cands.append({"jobId": str(i), "jobType": node[i]["job_type"],
                              "reason": text, "ms": v})
    cands.sort(key=lambda b: -b["ms"])
    return {
        "jobId": str(job_id),
        "nodes": [{"jobId": str(i), "jobType": r["job_type"], "queue": r["queue_name"],
                   "status": r["status"], "startedAt": r["started_at"],
                   "completedAt": r["completed_at"], "durationMs": dur[i], "waitMs": wait[i],
                   "onCriticalPath": i in on_path}
                  for i, r in sorted(node.items(), key=lambda kv: str(kv[0]))],
        "edges": [{"from": str(e["depends_on"]), "to": str(e["job_id"])}
                  for e in sorted(edges, key=lambda e: (str(e["depends_on"]), str(e["job_id"])))],
        "path": [str(i) for i in path],
        "totalMs": total,
        "bottlenecks": cands[:3],
    }
