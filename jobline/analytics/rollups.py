"""Rollups per (time bucket, queue, job type) in three grains (minute, hour, day: migration 0022),
folded by the relay (:mod:`jobline.analytics.fold`) inside its cursor transaction.

What is counted where is the contract of docs/analytics.md ("Rollups"), shared with
:mod:`jobline.analytics.rebuild`, which recomputes the same rows from ``jobs`` + ``job_attempts``
(a test holds the two equal row for row):

* ``job_rollups*``: submitted, started, completed, failed (counted failed attempts: retried or
  dead-lettered), retries (failed attempts that were retried: not releases, snoozes or manual
  retries), dead_letter, cancelled; duration (completed attempts), wait (started attempts),
  e2e (completed jobs) and failed_ms (failed attempts) sums.
* ``job_rollup_histograms*``: the same four times in the sketch's buckets.
* ``job_rollup_errors*``: failed attempts by error type (NULL -> ``unknown``).
* ``job_rollup_attempts*``: completed / failed attempts by attempt number.

A batch is aggregated in Python at minute grain (a statement record of migration 0019 without
expanding it: its events share type, queue, job type and minute) and written in ONE statement,
one round trip per relay pass: the four families' minute rows, and the hour/day rows of only
those minutes already compacted (late events).

Compaction (migration 0030): the live fold writes minute rows only, because re-writing the same
hot hour and day rows on every pass cost the shipped stack ~10% of its throughput (issue 14).
Closed minutes (older than :data:`GRACE_MS`) are summed into the hour and day rows once, by
:func:`compact`, which moves ``rollup_watermark.compacted_through`` (W) in the same statement.
Invariants:

* an hour/day row is the exact sum of its minutes before W: compaction adds minutes
  ``[W, W')`` and moves W to W' atomically; the fold adds an event of a minute before W to all
  three grains and an event of a later minute to the minute rows only;
* W moves only under the relay's advisory lock (the fold runs under it too, so a fold reads a W
  that cannot move before it commits) and :data:`COMPACT_LOCK_KEY` (which
  :mod:`jobline.analytics.rebuild` holds shared while it rewrites hour/day rows before W);
* readers take hour/day rows only for spans ending at or before W and minute rows after it
  (:func:`jobline.analytics.query.decompose`), and retention never deletes a minute row from
  W's hour on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from jobline.shared.events.outbox import RELAY_LOCK_KEY, Event, Record
from jobline.shared.observe.rollups import (
    MAX_BUCKET,
    Histogram,
    bucket,
    bucket_bounds,
    histogram,
    minute_of,
    summary,
)
from jobline.shared.platform.clock import from_dt, to_dt

# The reads and the bucket layout live in jobline.shared.observe.rollups (monitoring reads them
# without importing analytics); re-exported for the consumer's callers.
__all__ = ["COLUMNS", "COMPACT_LOCK_KEY", "COUNTED", "GRACE_MS", "GRAINS", "MAX_BUCKET", "SUMS",
           "Histogram", "apply", "apply_records", "bucket", "bucket_bounds", "compact",
           "compact_now", "compaction_due", "histogram", "minute_of", "summary"]

#: Event type -> rollup column.
COUNTED = {"jobs.submitted": "submitted", "jobs.started": "started",
           "jobs.completed": "completed", "jobs.failed": "failed", "jobs.retries": "retries",
           "jobs.dead_letter": "dead_letter", "jobs.cancelled": "cancelled"}
COLUMNS = ("submitted", "started", "completed", "failed", "retries", "dead_letter", "cancelled")
SUMS = ("duration_sum_ms", "wait_sum_ms", "e2e_sum_ms", "failed_ms")
#: (grain, bucket width ms, table suffix, time column)
GRAINS = (("minute", 60_000, "", "minute"), ("hour", 3_600_000, "_hour", "at"),
          ("day", 86_400_000, "_day", "at"))

#: (table, key columns after the time and its SQL types, value columns; all values bigint)
_FAMILIES: tuple[tuple[str, tuple[tuple[str, str], ...], tuple[str, ...]], ...] = (
    ("job_rollups", (("queue_name", "text"), ("job_type", "text")), COLUMNS + SUMS),
    ("job_rollup_histograms", (("queue_name", "text"), ("job_type", "text"), ("metric", "text"),
                               ("bucket", "smallint")), ("n",)),
    ("job_rollup_errors", (("queue_name", "text"), ("job_type", "text"),
                           ("error_type", "text")), ("n",)),
    ("job_rollup_attempts", (("queue_name", "text"), ("job_type", "text"),
                             ("attempt", "integer")), ("completed", "failed")),
)


WATERMARK = "(SELECT compacted_through FROM rollup_watermark WHERE id = 1)"


def _write_all() -> tuple[str, int]:
    """The one statement writing every family's minute rows, plus the hour/day rows of the
    minutes before the compaction watermark, and its parameter count. It returns the watermark.

    Each family's minute rows arrive once, as parallel arrays (the minute start in epoch ms, the
    keys, the values); the hour and day rows are the same rows re-keyed and summed in SQL, so
    the relay encodes and sends each row once. Values are added to an existing row."""
    ctes: list[str] = []
    p = 1
    for fi, (table, keys, vals) in enumerate(_FAMILIES):
        names = [k for k, _ in keys]
        arrays = [f"${p}::bigint[]"] + [f"${p + 1 + i}::{t}[]" for i, (_, t) in enumerate(keys)]
        arrays += [f"${p + 1 + len(keys) + i}::bigint[]" for i in range(len(vals))]
        p += 1 + len(keys) + len(vals)
        cols = ", ".join((*names, *vals))
        ctes.append(f"u{fi} AS (SELECT to_timestamp(t / 1000) AS t, {cols}\n"
                    f"  FROM unnest({', '.join(arrays)}) AS u(t, {cols}))")
        k = ", ".join(names)
        for grain, _, suffix, tcol in GRAINS:
            if grain == "minute":
                src = f"SELECT t, {cols} FROM u{fi}"
            else:
                src = (f"SELECT date_trunc('{grain}', t, 'UTC'), {k}, "
                       + ", ".join(f"sum({v})::bigint" for v in vals)
                       + f" FROM u{fi} WHERE t < (SELECT w FROM wm) GROUP BY 1, {k} "
                       f"ORDER BY 1, {k}")
            ctes.append(
                f"w{fi}{grain[0]} AS (INSERT INTO {table}{suffix} AS r ({tcol}, {cols})\n"
                f"{src}\nON CONFLICT ({tcol}, {k}) DO UPDATE SET "
                + ", ".join(f"{v} = r.{v} + EXCLUDED.{v}" for v in vals) + ")")
    return ("WITH wm AS (SELECT " + WATERMARK + " AS w),\n" + ",\n".join(ctes)
            + "\nSELECT w FROM wm", p - 1)


def _compact() -> str:
    """Sum the minute rows of ``[W, $1)`` into the hour and day rows and move W to ``$1``, in one
    statement (one snapshot: the minutes summed are exactly those the watermark passes). No-op
    unless ``$1`` is past W. Returns the new watermark, or nothing."""
    ctes = ["wm AS (SELECT compacted_through AS w FROM rollup_watermark "
            "WHERE id = 1 AND compacted_through < $1 FOR UPDATE)"]
    for fi, (table, keys, vals) in enumerate(_FAMILIES):
        k = ", ".join(n for n, _ in keys)
        cols = ", ".join((*(n for n, _ in keys), *vals))
        for grain, _, suffix, tcol in GRAINS[1:]:
            ctes.append(
                f"c{fi}{grain[0]} AS (INSERT INTO {table}{suffix} AS r ({tcol}, {cols})\n"
                f"SELECT date_trunc('{grain}', minute, 'UTC'), {k}, "
                + ", ".join(f"sum({v})::bigint" for v in vals)
                + f" FROM {table}, wm WHERE minute >= wm.w AND minute < $1 GROUP BY 1, {k} "
                f"ORDER BY 1, {k}\nON CONFLICT ({tcol}, {k}) DO UPDATE SET "
                + ", ".join(f"{v} = r.{v} + EXCLUDED.{v}" for v in vals) + ")")
    return ("WITH " + ",\n".join(ctes) + "\nUPDATE rollup_watermark SET compacted_through = $1 "
            "FROM wm WHERE id = 1 RETURNING compacted_through")


UPSERT_ALL, UPSERT_ALL_PARAMS = _write_all()
COMPACT = _compact()
#: Minutes closed this long ago are compacted (a later event of one is still counted: it goes
#: to every grain); the margin only keeps that path rare.
GRACE_MS = 120_000
#: At most this much is compacted per call, so a relay pass after a long idle stays short.
MAX_COMPACT_MS = 86_400_000
#: Held (transaction-scoped) by :func:`compact` exclusively and by a rebuild shared.
COMPACT_LOCK_KEY = 0x6A6C726F6C6C  # "jlroll"

_Key = tuple[int, str, str]  # (minute ms, queue, job type)


class _Folding:
    """One batch's rows at minute grain (keys start with the minute, epoch ms)."""

    def __init__(self) -> None:
        self.counts: dict[_Key, Counter[str]] = {}
        self.hist: Counter[tuple[int, str, str, str, int]] = Counter()
        self.errors: Counter[tuple[int, str, str, str]] = Counter()
        self.attempts: dict[tuple[int, str, str, int], list[int]] = {}

    def _row(self, key: _Key) -> Counter[str]:
        c = self.counts.get(key)
        if c is None:
            c = self.counts[key] = Counter()
        return c

    def _times(self, key: _Key, metric: str, col: str, values: Iterable[int]) -> None:
        vs = list(values)
        self._row(key)[col] += sum(vs)
        hist = self.hist
        for b, k in Counter(map(bucket, vs)).items():
            hist[(*key, metric, b)] += k

    def _attempt(self, key: _Key, attempt: int | None, i: int) -> None:
        if attempt is None:
            return
        a = self.attempts.get((*key, attempt))
        if a is None:
            a = self.attempts[(*key, attempt)] = [0, 0]
        a[i] += 1

    def event(self, e: Event) -> None:
        col = COUNTED.get(e.type)
        if col is None or e.queue is None or e.job_type is None:
            return
        if col == "retries" and (e.data.get("manual") or e.data.get("attemptCounted") is False):
            return  # a manual retry or a given-back attempt is not a failed attempt retried
        key = (e.time_ms // 60_000 * 60_000, e.queue, e.job_type)
        self._row(key)[col] += 1
        if col == "completed":
            if e.duration_ms is not None:
                self._times(key, "duration", "duration_sum_ms", (e.duration_ms,))
            self._attempt(key, e.attempt, 0)
        elif col == "started" and e.wait_ms is not None:
            self._times(key, "wait", "wait_sum_ms", (e.wait_ms,))
        elif col == "failed":
            if e.duration_ms is not None:
                self._times(key, "failed", "failed_ms", (e.duration_ms,))
            self.errors[(*key, e.error_type or "unknown")] += 1
            self._attempt(key, e.attempt, 1)

    def statement(self, r: Record) -> None:
        """A statement record as a whole: its events share type, queue, job type and minute
        (migration 0019), so it is one counter increment plus its values' buckets."""
        col = COUNTED.get(r.type)
        if col is None or r.queue is None or r.job_type is None:
            return
        key = (r.time_ms // 60_000 * 60_000, r.queue, r.job_type)
        self._row(key)[col] += r.n
        if col == "started" and r.millis:
            self._times(key, "wait", "wait_sum_ms", r.millis)
        elif col == "completed":
            if r.millis:
                self._times(key, "duration", "duration_sum_ms", r.millis)
            if r.e2e_ms:
                self._times(key, "e2e", "e2e_sum_ms", r.e2e_ms)
            for a, k in Counter(r.attempts or ()).items():
                row = self.attempts.get((*key, a))
                if row is None:
                    row = self.attempts[(*key, a)] = [0, 0]
                row[0] += k

    def _params(self) -> list[list[Any]]:
        """The statement's parameters: every family's minute rows as parallel arrays, in a
        fixed (sorted) order, so concurrent writers cannot deadlock on rows."""
        counts, hist, errors, attempts = self.counts, self.hist, self.errors, self.attempts
        out: list[list[Any]] = []
        ck = sorted(counts)
        out += [[k[0] for k in ck], [k[1] for k in ck], [k[2] for k in ck]]
        out += [[counts[k][c] for k in ck] for c in (*COLUMNS, *SUMS)]
        hk = sorted(hist)
        out += [[k[i] for k in hk] for i in range(5)] + [[hist[k] for k in hk]]
        ek = sorted(errors)
        out += [[k[i] for k in ek] for i in range(4)] + [[errors[k] for k in ek]]
        ak = sorted(attempts)
        out += [[k[i] for k in ak] for i in range(4)]
        out += [[attempts[k][0] for k in ak], [attempts[k][1] for k in ak]]
        return out

    async def write(self, conn: Any) -> int | None:
        if not (self.counts or self.hist or self.errors or self.attempts):
            return None
        w = await conn.fetchval(UPSERT_ALL, *self._params())
        return None if w is None else from_dt(w)


async def apply(conn: Any, events: list[Event]) -> int | None:
    """Fold ``events`` into the rollups (on ``conn``, in the caller's transaction, which holds
    the relay lock or is the only writer). Events expanded from a statement record carry no e2e
    time: fold records (:func:`apply_records`). Returns the compaction watermark (epoch ms), or
    None when nothing was written."""
    f = _Folding()
    for e in events:
        f.event(e)
    return await f.write(conn)


async def apply_records(conn: Any, records: list[Record]) -> int | None:
    """Fold the relay's ``records`` into the rollups (inside the relay's cursor transaction,
    under its lock); statement records are folded without expanding them into events. Returns
    the compaction watermark (epoch ms), or None when nothing was written."""
    f = _Folding()
    for r in records:
        if r.event is not None:
            f.event(r.event)
        else:
            f.statement(r)
    return await f.write(conn)


def compaction_due(watermark_ms: int | None, now_ms: int) -> int | None:
    """The minute to compact through, if the watermark is behind ``now - GRACE_MS``."""
    if watermark_ms is None:
        return None
    target = min((now_ms - GRACE_MS) // 60_000 * 60_000, watermark_ms + MAX_COMPACT_MS)
    return target if target > watermark_ms else None


async def compact(conn: Any, through_ms: int) -> int | None:
    """Compact the minutes before ``through_ms`` (whole minutes) into the hour and day rows.

    The caller's transaction must hold the relay's advisory lock (the relay's fold does;
    :func:`compact_now` takes it), so no fold runs meanwhile. Skipped (None) while a rebuild
    holds :data:`COMPACT_LOCK_KEY`; otherwise returns the new watermark, or None when it was
    already there."""
    if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", COMPACT_LOCK_KEY):
        return None
    w = await conn.fetchval(COMPACT, to_dt(through_ms // 60_000 * 60_000))
    return None if w is None else from_dt(w)


async def compact_now(pool: Any, through_ms: int) -> int | None:
    """:func:`compact` in its own transaction, waiting for the relay's lock (a relay pass is
    short). For tests and tools; the relay compacts as it folds."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", RELAY_LOCK_KEY)
        return await compact(conn, through_ms)
