"""Job events: the versioned envelope, the outbox and its relay to the event bus.

Every committed job transition already has its event row: triggers on ``jobs`` write them into
the ``job_events`` outbox inside the transition's own statement (migration 0006). The outbox is
also the audit log (partitioned by day, migration 0011). Events that do not come from a job row
(workers, queue backlog, alerts) are written by :func:`emit`. The relay (:func:`relay_once`,
looped by :class:`Relay`) copies rows past its cursor to the bus in ``seq`` order and moves the
cursor in the same transaction that read them: a crash after the bus accepted them but before
the commit re-publishes them, so delivery is at-least-once and consumers skip what their
watermark already covers (:func:`apply_once`). A relay may be given a *fold* (``jobline relay``
folds the analytics rollups and the alert rules, :mod:`jobline.analytics.fold`): it runs on the
batch the relay already holds, in the cursor's transaction, behind a watermark of its own, so its
effect lands exactly once without anyone reading the stream back. See docs/events.md for the envelope and the table of event types.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

from jobline.shared.platform.clock import from_dt, to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.security.masking import mask

if TYPE_CHECKING:
    from jobline.shared.events.bus import EventBus

log = logging.getLogger("jobline.events")

#: Envelope version; bumped only for incompatible changes (new optional fields keep it).
ENVELOPE_VERSION = 1

JOB_EVENT_TYPES = ("jobs.submitted", "jobs.started", "jobs.completed", "jobs.failed",
                   "jobs.retries", "jobs.dead_letter", "jobs.cancelled")
OTHER_EVENT_TYPES = ("workers.started", "workers.stopped", "workers.heartbeat_lost",
                     "workers.scaled", "workers.command", "queues.backlog", "alerts.fired",
                     "ai.anomaly")
EVENT_TYPES = JOB_EVENT_TYPES + OTHER_EVENT_TYPES

#: Postgres NOTIFY channel the outbox triggers signal; the relay LISTENs instead of polling.
NOTIFY_CHANNEL = "jobline_events"
#: A bus that lost its data (Redis flushed) gets this window of events again. (The outbox keeps
#: rows for ``audit_retention_days``: it is the audit log.)
RETENTION_MS = 24 * 3_600_000
#: One relay at a time publishes (keeps order); the lock is per transaction.
RELAY_LOCK_KEY = 0x6A6F626C696E65  # "jobline"
#: The relay's fold watermark: ``consumer_watermarks (FOLD_WATERMARK, '')``.
FOLD_WATERMARK = "relay.fold"



@dataclass(frozen=True, slots=True)
class Event:
    """One event as it travels on the bus (see docs/events.md, envelope v1)."""

    id: uuid.UUID
    type: str
    time_ms: int
    job_id: uuid.UUID | None = None
    queue: str | None = None
    job_type: str | None = None
    attempt: int | None = None
    duration_ms: int | None = None
    wait_ms: int | None = None
    error_type: str | None = None
    error: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    #: Outbox sequence number (relay order); None for events never stored in the outbox.
    seq: int | None = None
    #: Position in its outbox row: 0..n-1 in a statement row (several events share its ``seq``),
    #: 0 otherwise. ``(seq, idx)`` orders and identifies an event on the bus.
    idx: int = 0

    @property
    def key(self) -> str:
        """Partitioning key: events of one job (or worker, queue) stay in order."""
        if self.job_id is not None:
            return str(self.job_id)
        return str(self.data.get("workerId") or self.queue or self.type)

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": ENVELOPE_VERSION, "id": str(self.id), "type": self.type,
            "time": datetime.fromtimestamp(self.time_ms / 1000, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "timeMs": self.time_ms, "seq": self.seq,
            "jobId": str(self.job_id) if self.job_id else None, "queue": self.queue,
            "jobType": self.job_type, "attempt": self.attempt, "durationMs": self.duration_ms,
            "waitMs": self.wait_ms, "errorType": self.error_type, "error": self.error,
            "data": self.data, "i": self.idx,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_json(cls, raw: bytes | str) -> Event:
        return cls.from_dict(orjson.loads(raw))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        return cls(id=uuid.UUID(d["id"]), type=d["type"], time_ms=d["timeMs"],
                   job_id=uuid.UUID(d["jobId"]) if d.get("jobId") else None,
                   queue=d.get("queue"), job_type=d.get("jobType"), attempt=d.get("attempt"),
                   duration_ms=d.get("durationMs"), wait_ms=d.get("waitMs"),
                   error_type=d.get("errorType"), error=d.get("error"),
                   data=d.get("data") or {}, seq=d.get("seq"), idx=d.get("i") or 0)


#: The three events every job has are written one outbox row per statement (migration 0019);
#: on the bus such a row travels as one *statement record* (docs/events.md).
STATEMENT_TYPES = ("jobs.submitted", "jobs.started", "jobs.completed")


def _iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def unpack(d: dict[str, Any]) -> list[Event]:
    """The events of one bus record: an envelope (one event), or a statement record (``jobIds``
    and the other per-job arrays, migration 0019) expanded in its order. Event ``i`` of a
    statement record has id ``id + i`` and ``idx`` ``i``."""
    ids = d.get("jobIds")
    if ids is None:
        return [Event.from_dict(d)]
    typ, seq, queue, job_type = d["type"], d["seq"], d.get("queue"), d.get("jobType")
    base = uuid.UUID(d["id"]).int
    at: list[int] = d["atMs"]
    attempts: list[int] | None = d.get("attempts")
    ms: list[int] | None = d.get("ms")
    out: list[Event] = []
    if typ == "jobs.submitted":
        status, batch = d.get("status"), d.get("batchId")
        prio: list[int] = d["priorities"]
        due: list[int] = d["dueMs"]
        for i, j in enumerate(ids):
            out.append(Event(
                uuid.UUID(int=base + i), typ, at[i], uuid.UUID(j), queue, job_type,
                data={"status": status, "priority": prio[i], "scheduledFor": _iso_ms(due[i]),
                      "batchId": batch}, seq=seq, idx=i))
        return out
    started = typ == "jobs.started"
    for i, j in enumerate(ids):
        m = ms[i] if ms is not None else None
        out.append(Event(uuid.UUID(int=base + i), typ, at[i], uuid.UUID(j), queue, job_type,
                         attempt=attempts[i] if attempts is not None else None,
                         duration_ms=None if started else m, wait_ms=m if started else None,
                         seq=seq, idx=i))
    return out


def unpack_json(raw: bytes | str) -> list[Event]:
    return unpack(orjson.loads(raw))


@dataclass(frozen=True, slots=True)
class Record:
    """One outbox row on its way to the bus: one stream entry / Kafka message.

    A statement row (``n`` set) carries ``n`` events of one type, queue and job type whose
    times fall in one minute; its wire form ``raw`` is built by PostgreSQL, and the fold reads
    ``n`` and ``millis`` without expanding it. Any other row carries one ``event``."""

    seq: int
    type: str
    #: the row's ``occurred_at`` (a statement row: its earliest event)
    time_ms: int
    queue: str | None
    job_type: str | None
    raw: bytes
    #: Bus partitioning key: a statement row's queue (one job's events all share it), else
    #: the event's own key.
    key: str
    n: int = 1
    #: statement rows: wait (started) or run duration (completed) per event, ms
    millis: list[int] | None = None
    #: statement rows: the newest event time
    last_ms: int | None = None
    event: Event | None = None
    #: jobs.completed statement rows: each job's attempt number, and its created -> completed
    #: time in ms (None on rows written before migration 0023)
    attempts: list[int] | None = None
    e2e_ms: list[int] | None = None

    @property
    def packed(self) -> bool:
        return self.event is None

    def events(self) -> list[Event]:
        return [self.event] if self.event is not None else unpack_json(self.raw)

    @classmethod
    def of(cls, e: Event) -> Record:
        return cls(seq=e.seq or 0, type=e.type, time_ms=e.time_ms, queue=e.queue,
                   job_type=e.job_type, raw=e.to_json(), key=e.key, event=e)


def record_from_row(r: Any) -> Record:
    """A relay row (:data:`UNPUBLISHED`) as a bus record."""
    if r["n"] is None:
        return Record.of(event_from_row(r))
    return Record(seq=r["seq"], type=r["type"], time_ms=from_dt(r["occurred_at"]),
                  queue=r["queue_name"], job_type=r["job_type"], raw=r["packed"].encode(),
                  key=r["queue_name"] or r["type"], n=r["n"], millis=r["millis"],
                  last_ms=r["last_ms"], attempts=r["attempt_nos"], e2e_ms=r["e2e_ms"])


#: What a relay folds each batch into (``conn``: the cursor's transaction; rows in seq order).
Fold = Callable[[Any, list[Record]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event that does not come from a job row, for :func:`emit`."""

    type: str
    queue: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    job_id: uuid.UUID | None = None
    job_type: str | None = None


# --- SQL ---------------------------------------------------------------------------------------

INSERT_EVENTS = """
INSERT INTO job_events (type, occurred_at, queue_name, job_id, job_type, data)
SELECT u.t, $6, u.q, u.j, u.jt, u.d::jsonb
  FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::text[]) AS u(t, q, j, jt, d)
"""
# A writer of job_events must hold a transaction id before it takes a seq (the relay's settled
# bound relies on it, migration 0011); the triggers already have one (they run after the jobs
# write), emit asks for it.
TAKE_XID = "SELECT pg_current_xact_id()"
NOTIFY = "SELECT pg_notify('jobline_events', '')"
# Read before NEW_XID (a separate, later statement).
LAST_SEQ = "SELECT coalesce(pg_sequence_last_value('job_events_seq'), 0)"
# A transaction id of our own, newer than any a writer of seq <= LAST_SEQ holds; the statement
# commits at once. (Not pg_snapshot_xmax: a snapshot's xmax is the latest *completed* id + 1,
# so a running writer holding the newest id of all is above it and left out of its xmin.)
NEW_XID = "SELECT pg_current_xact_id()::text::bigint"
XMIN = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
CURSOR = "SELECT published_through FROM event_relay_state WHERE id = 1 FOR UPDATE"
# A statement row's wire form is built here, by PostgreSQL (the arrays straight to JSON): the
# relay hands it to the bus as it is (see Record).
PACKED = """
CASE WHEN n IS NOT NULL THEN json_build_object(
    'v', 1, 'seq', seq, 'id', event_id, 'type', type, 'queue', queue_name,
    'jobType', job_type, 'n', n, 'jobIds', job_ids, 'atMs', at_ms, 'attempts', attempts,
    'ms', millis, 'status', status, 'batchId', batch_id, 'priorities', priorities,
    'dueMs', due_ms)::text END AS packed
"""
UNPUBLISHED = f"""
SELECT seq, event_id, type, occurred_at, job_id, queue_name, job_type, attempt, duration_ms,
       wait_ms, error_type, error, data, status, priority, scheduled_for, batch_id, n,
       CASE WHEN type <> 'jobs.submitted' THEN millis END AS millis,
       CASE WHEN type = 'jobs.completed' THEN attempts END AS attempt_nos,
       CASE WHEN type = 'jobs.completed' THEN e2e_ms END AS e2e_ms,
       CASE WHEN n IS NOT NULL THEN (SELECT max(x) FROM unnest(at_ms) AS x) END AS last_ms,
       {PACKED}
  FROM job_events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3
"""
SET_FOLDED_THROUGH = """
INSERT INTO consumer_watermarks AS w (consumer, part, seq) VALUES ($1, '', $2)
ON CONFLICT (consumer, part) DO UPDATE SET seq = greatest(w.seq, EXCLUDED.seq)
"""
SET_CURSOR = "UPDATE event_relay_state SET published_through = $1 WHERE id = 1"
# The lock first (the CTE), then the cursor only if it was taken, and where the fold stopped:
# one round trip. A database that ran the analytics consumer before the relay folded starts
# from that consumer's watermark, so the upgrade neither loses nor repeats rollups (exact for
# Redis's single partition; for Kafka the lowest partition mark).
# The relay's lock is taken by a statement of its own: a statement's snapshot is taken before
# it runs, so a lock taken inside the read would let it see the fold watermark as it was before
# the previous holder committed, and fold that holder's rows a second time.
TRY_LOCK = "SELECT pg_try_advisory_xact_lock($1)"
CURSOR_AND_FOLDED = """
SELECT c.published_through AS cursor, coalesce(
    (SELECT seq FROM consumer_watermarks WHERE consumer = $1 AND part = ''),
    (SELECT seq FROM consumer_watermarks WHERE consumer = 'analytics' AND part = ''),
    (SELECT min(seq) FROM consumer_watermarks WHERE consumer = 'analytics'), 0) AS folded
  FROM event_relay_state c WHERE c.id = 1 FOR UPDATE
"""
SET_CURSOR_AND_FOLDED = """
WITH f AS (
    INSERT INTO consumer_watermarks AS w (consumer, part, seq) VALUES ($2, '', $1)
    ON CONFLICT (consumer, part) DO UPDATE SET seq = greatest(w.seq, EXCLUDED.seq))
UPDATE event_relay_state SET published_through = $1 WHERE id = 1
"""
# A bus that lost its data (Redis flushed) gets the retained window again; consumers skip what
# they applied (their watermarks).
REPLAY_FROM = """
UPDATE event_relay_state SET published_through = least(published_through, coalesce(
    (SELECT min(seq) - 1 FROM job_events WHERE occurred_at >= $1), published_through))
 WHERE id = 1 AND EXISTS (SELECT 1 FROM job_events WHERE seq <= published_through)
"""
OUTBOX_BACKLOG = """
SELECT coalesce(sum(coalesce(n, 1)), 0)::bigint AS n, min(occurred_at) AS oldest FROM job_events
 WHERE seq > (SELECT published_through FROM event_relay_state WHERE id = 1)
"""
ENSURE_PARTITIONS = "SELECT jobline_ensure_event_partitions($1, $2)"
DROP_PARTITIONS = """
SELECT jobline_drop_event_partitions(
    $1, (SELECT published_through FROM event_relay_state WHERE id = 1))
"""
WATERMARKS = """
SELECT part, seq FROM consumer_watermarks WHERE consumer = $1 AND part = ANY($2::text[])
   FOR UPDATE
"""
SET_WATERMARKS = """
INSERT INTO consumer_watermarks AS w (consumer, part, seq)
SELECT $1, u.p, u.s FROM unnest($2::text[], $3::bigint[]) AS u(p, s)
ON CONFLICT (consumer, part) DO UPDATE SET seq = greatest(w.seq, EXCLUDED.seq)
"""


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_from_row(r: Any) -> Event:
    data = r["data"]
    if data is None and r["type"] == "jobs.submitted" and r["status"] is not None:
        # Since migration 0009 the trigger stores these as columns (building jsonb per
        # submitted job was a quarter of PostgreSQL's cost of a bulk submit); same fields.
        data = {"status": r["status"], "priority": r["priority"],
                "scheduledFor": _iso(r["scheduled_for"]),
                "batchId": str(r["batch_id"]) if r["batch_id"] is not None else None}
    return Event(id=r["event_id"], type=r["type"], time_ms=from_dt(r["occurred_at"]),
                 job_id=r["job_id"], queue=r["queue_name"], job_type=r["job_type"],
                 attempt=r["attempt"], duration_ms=r["duration_ms"], wait_ms=r["wait_ms"],
                 error_type=r["error_type"], error=r["error"], data=data or {},
                 seq=r["seq"])


def row_events(r: Any) -> list[Event]:
    """The events of a ``job_events`` row read with its columns (``SELECT *``): one, or a
    statement row's ``n`` in order."""
    if r["n"] is None:
        return [event_from_row(r)]
    return unpack({
        "seq": r["seq"], "id": str(r["event_id"]), "type": r["type"], "queue": r["queue_name"],
        "jobType": r["job_type"], "jobIds": [str(j) for j in r["job_ids"]], "atMs": r["at_ms"],
        "attempts": r["attempts"], "ms": r["millis"], "status": r["status"],
        "batchId": str(r["batch_id"]) if r["batch_id"] is not None else None,
        "priorities": r["priorities"], "dueMs": r["due_ms"]})


# --- emit --------------------------------------------------------------------------------------


async def emit(deps: Deps, events: Sequence[NewEvent], *, conn: Any = None) -> None:
    """Write events that no job row produces into the outbox (``conn``: inside the caller's
    transaction, so the event commits with whatever caused it). ``data`` is masked. Nothing is
    written with ``JOBLINE_EVENTS=off``."""
    if not events or not deps.settings.events:
        return
    for e in events:
        if e.type not in OTHER_EVENT_TYPES and e.type not in JOB_EVENT_TYPES:
            raise ValueError(f"unknown event type {e.type!r}")
    args = ([e.type for e in events], [e.queue for e in events], [e.job_id for e in events],
            [e.job_type for e in events],
            [orjson.dumps(mask(e.data, deps.settings.mask_keys)).decode() for e in events], to_dt(deps.clock.now_ms()))
    if conn is not None:
        await conn.execute(TAKE_XID)
        await conn.execute(INSERT_EVENTS, *args)
        await conn.execute(NOTIFY)
        return
    async with deps.pool.acquire() as c, c.transaction():
        await c.execute(TAKE_XID)
        await c.execute(INSERT_EVENTS, *args)
        await c.execute(NOTIFY)


# --- relay -------------------------------------------------------------------------------------


async def settled_seq(deps: Deps, *, timeout_s: float = 1.0) -> int | None:
    """The highest ``seq`` below which no outbox row can still commit, or None if a
    transaction older than the call is still open after ``timeout_s``.

    Read the sequence's last value L, then (a later statement) take a transaction id X of our
    own, committed at once. Every transaction that took a seq <= L had its id before that
    (writers take their id first, migration 0011), so its id is < X; once the oldest running
    id (the snapshot's xmin, which now counts every id up to X since X completed) is > X, each
    of them has committed or aborted: the rows with seq <= L are all there is.

    X must be an id actually assigned after L was read. The snapshot's xmax is not: it is the
    latest completed id + 1, so a writer holding the newest id of all (nothing committed after
    it took one) is above xmax, missing from xmin, and was taken for settled while still open
    (``test_the_newest_open_transaction_is_not_skipped_either``). It costs one transaction id
    per relay pass.
    """
    async with deps.pool.acquire() as conn:
        last = int(await conn.fetchval(LAST_SEQ))
        mine = int(await conn.fetchval(NEW_XID))
        if await conn.fetchval(XMIN) > mine:
            return last
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        delay = 0.0005
        while True:
            # Waiting for a commit already under way (short job transactions); polling is the
            # only way: PostgreSQL has no "wait until these xids end" for a plain session.
            await asyncio.sleep(delay)
            if await conn.fetchval(XMIN) > mine:
                return last
            if loop.time() > deadline:
                return None
            delay = min(delay * 2, 0.02)


async def relay_once(deps: Deps, bus: EventBus, *, limit: int = 500,
                     after_publish: Callable[[], Awaitable[None]] | None = None,
                     settle_timeout_s: float = 1.0, fold: Fold | None = None) -> int:
    """Publish up to ``limit`` outbox rows past the cursor, in ``seq`` order; returns how many
    events they carried (a statement row carries several, migration 0019).

    One read, one bus batch (pipeline / produce batch, acknowledged), one commit that moves the
    cursor (``event_relay_state``). A crash between the bus's acknowledgement and the commit
    (``after_publish`` lets a test raise exactly there, after the fold) leaves the cursor where
    it was and the next pass publishes the rows again: at-least-once. Only one relay publishes
    at a time.

    ``fold`` runs on the rows past its own watermark (``FOLD_WATERMARK``), in this transaction,
    and the watermark moves with it: rolled back with the cursor on a crash, and not run again
    on rows re-published after a bus lost its data (the cursor moves back, the watermark does
    not). Rows published before without a fold are folded first (:func:`_fold_catch_up`). So
    the fold's effect lands exactly once per outbox row. The cursor only passes settled rows
    (:func:`settled_seq`), so a transaction that commits a lower ``seq`` after a higher one is
    never skipped.
    """
    return (await _relay_pass(deps, bus, limit=limit, after_publish=after_publish,
                              settle_timeout_s=settle_timeout_s, fold=fold))[1]


async def _relay_pass(deps: Deps, bus: EventBus, *, limit: int,
                      after_publish: Callable[[], Awaitable[None]] | None = None,
                      settle_timeout_s: float = 1.0, fold: Fold | None = None,
                      bound: int | None = None, conn: Any = None,
                      check_bus: bool = True) -> tuple[int, int]:
    """:func:`relay_once`, returning (rows, events). For :class:`Relay`: ``bound`` is a settled
    bound it already has (:class:`Settler`) instead of waiting for one, ``conn`` its
    connection, and ``check_bus=False`` skips asking the bus whether it lost its data (it asks
    once a second; a replay then re-publishes what went to the empty bus meanwhile)."""
    if bound is None:
        bound = await settled_seq(deps, timeout_s=settle_timeout_s)
        if bound is None:
            log.info("relay: an open transaction holds the outbox back; retrying")
            return 0, 0
    if conn is None:
        async with deps.pool.acquire() as c:
            return await _relay_pass(deps, bus, limit=limit, after_publish=after_publish,
                                     fold=fold, bound=bound, conn=c, check_bus=check_bus)
    async with conn.transaction():
        if not await conn.fetchval(TRY_LOCK, RELAY_LOCK_KEY):
            return 0, 0
        got = await conn.fetchrow(CURSOR_AND_FOLDED, FOLD_WATERMARK)
        assert got is not None
        cursor = int(got["cursor"])
        if check_bus and await bus.lost_state():
            # The bus came back empty (Redis flushed): hand it the retained window again.
            n = await conn.execute(REPLAY_FROM, to_dt(deps.clock.now_ms() - RETENTION_MS))
            log.warning("event bus lost its data; replaying retained events (%s)", n)
            await bus.mark_state()
            cursor = int(await conn.fetchval(CURSOR))
        folded = 0
        if fold is not None:
            folded = await _fold_catch_up(conn, fold, cursor, limit, int(got["folded"]))
        if bound <= cursor:
            return 0, 0
        rows = await conn.fetch(UNPUBLISHED, cursor, bound, limit)
        # Every seq <= bound is settled, so the cursor may pass the gaps of rolled-back rows.
        upto = rows[-1]["seq"] if len(rows) == limit else bound
        events = 0
        if rows:
            records = [record_from_row(r) for r in rows]
            events = sum(r.n for r in records)
            await bus.publish(records)
            if fold is not None:
                fresh = [r for r in records if r.seq > folded]
                if fresh:
                    await fold(conn, fresh)
        if after_publish is not None and rows:
            await after_publish()
        if fold is not None and upto > folded:
            # Everything up to the new cursor is folded now (gaps included): the next pass
            # needs no catch-up. (One statement for both marks: a round trip per pass.)
            await conn.execute(SET_CURSOR_AND_FOLDED, upto, FOLD_WATERMARK)
        else:
            await conn.execute(SET_CURSOR, upto)
    return len(rows), events


async def _fold_catch_up(conn: Any, fold: Fold, cursor: int, limit: int, folded: int) -> int:
    """Fold the rows the bus already has but the fold has not seen (past ``folded``, the fold
    watermark read with the cursor), in chunks of ``limit``, in the relay's transaction;
    returns the fold watermark (now >= ``cursor``).

    Nothing to do in steady state (each pass leaves the watermark at its cursor). There is a
    backlog after a relay ran without a fold, or on a database whose analytics consumer had not
    applied everything the relay had published (the watermark starts from that consumer's).
    """
    start = folded
    while folded < cursor:
        rows = await conn.fetch(UNPUBLISHED, folded, cursor, limit)
        if rows:
            await fold(conn, [record_from_row(r) for r in rows])
        folded = rows[-1]["seq"] if len(rows) == limit else cursor
    if folded > start:
        await conn.execute(SET_FOLDED_THROUGH, FOLD_WATERMARK, folded)
        log.info("relay: folded %s..%s, published before without a fold", start + 1, folded)
    return folded


async def maintain_partitions(deps: Deps) -> int:
    """Daily outbox partitions ahead of time, and the audit retention: whole published days
    older than ``audit_retention_days`` are dropped. Returns the partitions dropped."""
    from jobline.shared.platform.migrate import EVENT_PARTITION_DAYS_AHEAD

    now = deps.clock.now_ms()
    await deps.pool.execute(ENSURE_PARTITIONS, to_dt(now - 86_400_000),
                            EVENT_PARTITION_DAYS_AHEAD + 2)
    cutoff = now - deps.settings.audit_retention_days * 86_400_000
    return int(await deps.pool.fetchval(DROP_PARTITIONS, to_dt(cutoff)))


SETTLE_STEP = """
SELECT coalesce(pg_sequence_last_value('job_events_seq'), 0) AS last,
       pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin
"""


class Settler:
    """:func:`settled_seq` without waiting, for a relay that passes again and again.

    Each :meth:`step` reads the sequence's last value L and the oldest running transaction id
    in one statement, then takes a transaction id X of its own (a later statement, committed at
    once), and keeps (L, X) for the next step. The bound (L, X) of step k is settled once a
    later step sees the oldest running id above X (the reasoning of :func:`settled_seq`), so
    step k+1 confirms it, with no polling: under load the polling of :func:`settled_seq` cost
    the relay more than publishing (many transactions are always open for a moment). A third
    round trip checks whether (L, X) is settled at once, which it usually is, so rows are
    published in the pass that first sees them, else in the next one."""

    def __init__(self) -> None:
        self.bound = 0
        self._pending: tuple[int, int] | None = None

    async def step(self, conn: Any) -> tuple[int, bool]:
        """(the settled bound, whether rows past it exist or may still commit). ``conn``
        outside a transaction."""
        row = await conn.fetchrow(SETTLE_STEP)
        assert row is not None
        if self._pending is not None and row["xmin"] > self._pending[1]:
            self.bound = max(self.bound, self._pending[0])
        last = int(row["last"])
        mine = int(await conn.fetchval(NEW_XID))
        self._pending = (last, mine)
        if last > self.bound and await conn.fetchval(XMIN) > mine:
            # Usually settled already (job transactions are short): publish in this pass
            # instead of the next one, a round trip for up to an interval of latency.
            self.bound = last
        return self.bound, last > self.bound


class Relay:
    """The relay loop: publish whenever the outbox triggers NOTIFY (plus a slow safety pass for a
    notification lost with a dropped connection), at most once per ``relay_interval_ms``."""

    def __init__(self, deps: Deps, bus: EventBus, *, batch: int = 500,
                 safety_s: float = 1.0, fold: Fold | None = None) -> None:
        self.deps = deps
        self.bus = bus
        self.fold = fold
        self.batch = batch
        self.safety_s = safety_s
        self.published = 0
        self.passes = 0
        #: the cursor this relay last left (-1: unknown); a pass with nothing settled past it
        #: has nothing to do
        self._cursor = -1
        self._cpu = 0.0
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()

    def request_stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    async def run(self) -> None:
        listener: asyncpg.Connection = await asyncpg.connect(self.deps.settings.database_url)
        await listener.add_listener(NOTIFY_CHANNEL, self._on_notify)
        maintained_at = checked_bus_at = -1e9
        loop = asyncio.get_running_loop()
        base = self.deps.settings.relay_interval_ms / 1000
        interval = base
        last_pass = prev_pass = -1e9
        settler = Settler()
        try:
            while not self._stop.is_set():
                # A pass gathers what committed since the last one (relay_interval_ms). A pass
                # costs about the same CPU for 10 events as for 500 (~1 ms: a dozen round
                # trips), so above 10,000 events/s the interval stretches with the rate, up to
                # 5x. (Stretching from 2,500/s on put 100 ms passes, p95, under a 1,000 jobs/s
                # dashboard: its commit -> DOM p99 was 305 ms.)
                gap = last_pass + interval - loop.time()
                if gap > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), gap)
                    if self._stop.is_set():
                        break
                prev_pass, last_pass = last_pass, loop.time()
                self._wake.clear()
                try:
                    if loop.time() - maintained_at > 60:
                        maintained_at = loop.time()
                        await maintain_partitions(self.deps)
                    check_bus = loop.time() - checked_bus_at >= 1.0
                    if check_bus:
                        checked_bus_at = loop.time()
                    _c0 = time.process_time()
                    async with self.deps.pool.acquire() as conn:
                        bound, behind = await settler.step(conn)
                        n, events = (0, 0)
                        if bound > self._cursor or check_bus:
                            n, events = await _relay_pass(
                                self.deps, self.bus, limit=self.batch, fold=self.fold,
                                bound=bound, conn=conn, check_bus=check_bus)
                            self._cursor = bound if n < self.batch else -1
                    self.published += events
                    self.passes += 1
                    self._cpu += time.process_time() - _c0
                    rate = events / max(1e-3, loop.time() - prev_pass)
                    interval = min(5 * base, max(base, base * rate / 10_000))
                except Exception:
                    log.exception("relay pass failed")
                    n, behind, self._cursor = 0, False, -1
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), 1.0)
                if n >= self.batch:
                    last_pass = -1e9  # a backlog: the next pass at once
                    continue
                if behind:
                    continue  # rows the next step will settle: pass again after the interval
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.safety_s)
            await self._last_passes(loop.time() + min(10.0, self.deps.settings.shutdown_grace_s))
        finally:
            log.info("relay: %d events published in %d passes (%.3f s of CPU in passes, "
                     "%.3f s in all)", self.published, self.passes, self._cpu,
                     time.process_time())
            with contextlib.suppress(Exception):
                await listener.close()

    async def _last_passes(self, deadline: float) -> None:
        """On a graceful stop, publish what committed before it (the processes stopped
        before the relay leave nothing behind), until ``deadline``."""
        loop = asyncio.get_running_loop()
        try:
            while loop.time() < deadline:
                n, events = await asyncio.wait_for(
                    _relay_pass(self.deps, self.bus, limit=self.batch, fold=self.fold,
                                settle_timeout_s=max(0.1, deadline - loop.time())),
                    max(0.1, deadline - loop.time()))
                self.published += events
                if n < self.batch:
                    return
        except Exception as e:  # the next start publishes them: nothing is lost
            log.warning("relay: last pass at stop failed (%s)", e)


# --- consumers: exactly-once application -------------------------------------------------------


async def apply_once(deps: Deps, consumer: str, items: Sequence[tuple[str, Event]],
                     apply: Callable[[Any, list[Event]], Awaitable[None]]) -> list[Event]:
    """Apply the events of ``items`` (``(bus partition, event)`` in delivery order) that
    ``consumer`` has not applied yet, in one transaction with its watermarks.

    The relay publishes in ``seq`` order, so on one bus partition an event whose ``seq`` is at
    or below the partition's watermark was applied already (a redelivery after a consumer died
    between its commit and its ack, or a re-publication after a relay died between publishing
    and its commit, or a replay to a flushed Redis) and is skipped. The watermark moves in the
    transaction of the effect: a consumer that dies before the commit leaves nothing behind.
    Either way each event's effect lands exactly once, with one small row per (group, bus
    partition) instead of a receipt per event. The events of a statement record share its
    ``seq``: pass a fetch's deliveries whole (a record is never split across fetches), so a
    record is applied entirely or not at all. It relies on one consumer per group at a time
    (the caller holds a lock per group). Jobline's own effects need no consumer (the relay folds
    them); this is for a consumer of the bus that writes to this database. Returns the events
    applied now.
    """
    if not items:
        return []
    parts = sorted({p for p, _ in items})
    async with deps.pool.acquire() as conn, conn.transaction():
        marks: dict[str, int] = {r["part"]: r["seq"] for r in await conn.fetch(
            WATERMARKS, consumer, parts)}
        moved: dict[str, int] = {}
        fresh: list[Event] = []
        seen: set[uuid.UUID] = set()
        taken: set[tuple[str, int, int]] = set()
        for part, e in items:
            if e.seq is None:  # never stored in the outbox: nothing to order it by
                if e.id not in seen:
                    seen.add(e.id)
                    fresh.append(e)
                continue
            # The events of one statement record share its seq and arrive together (a record
            # is one entry / message): compare with the watermark as it was before this call,
            # and drop a second copy of the same (seq, idx) within the call.
            if e.seq <= marks.get(part, 0) or (part, e.seq, e.idx) in taken:
                continue
            taken.add((part, e.seq, e.idx))
            moved[part] = max(moved.get(part, 0), e.seq)
            fresh.append(e)
        if fresh:
            await apply(conn, fresh)
        if moved:
            keys = sorted(moved)
            await conn.execute(SET_WATERMARKS, consumer, keys, [moved[k] for k in keys])
    return fresh


# --- lag -----------------------------------------------------------------------------------------


async def lag(deps: Deps, bus: EventBus, groups: Sequence[str]) -> dict[str, Any]:
    """How far behind things are: the outbox (committed, not yet on the bus) and each consumer
    group (on the bus, not yet processed). What ``/api/v1/events/lag`` and /metrics report."""
    row = await deps.pool.fetchrow(OUTBOX_BACKLOG)
    assert row is not None
    oldest = row["oldest"]
    outbox = {"pending": row["n"],
              "oldestAgeMs": max(0, deps.clock.now_ms() - from_dt(oldest)) if oldest else 0}
    return {"backend": bus.name, "outbox": outbox,
            "groups": [g.to_dict() for g in await bus.lag(groups)]}
