"""Job events: the versioned envelope, the outbox and its relay to the event bus.

Every committed job transition already has its event row: triggers on ``jobs`` write them into
the ``job_events`` outbox inside the transition's own statement (migration 0006). Events that do
not come from a job row (workers, queue backlog, alerts) are written by :func:`emit`. The relay
(:func:`relay_once`, looped by :class:`Relay`) copies unpublished rows to the bus in ``seq`` order
and marks them published in the same transaction that read them: a crash after the bus accepted
them but before the mark re-publishes them, so delivery is at-least-once and consumers dedupe by
event id (:func:`apply_once`). See docs/events.md for the envelope and the table of event types.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
                     "queues.backlog", "alerts.fired")
EVENT_TYPES = JOB_EVENT_TYPES + OTHER_EVENT_TYPES

#: Postgres NOTIFY channel the outbox triggers signal; the relay LISTENs instead of polling.
NOTIFY_CHANNEL = "jobline_events"
#: Published outbox rows are kept this long, so a bus that lost its data can be refilled.
RETENTION_MS = 24 * 3_600_000
#: One relay at a time publishes (keeps order); the lock is per transaction.
RELAY_LOCK_KEY = 0x6A6F626C696E65  # "jobline"



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
            "data": self.data,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_json(cls, raw: bytes | str) -> Event:
        d = orjson.loads(raw)
        return cls(id=uuid.UUID(d["id"]), type=d["type"], time_ms=d["timeMs"],
                   job_id=uuid.UUID(d["jobId"]) if d.get("jobId") else None,
                   queue=d.get("queue"), job_type=d.get("jobType"), attempt=d.get("attempt"),
                   duration_ms=d.get("durationMs"), wait_ms=d.get("waitMs"),
                   error_type=d.get("errorType"), error=d.get("error"),
                   data=d.get("data") or {}, seq=d.get("seq"))


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
NOTIFY = "SELECT pg_notify('jobline_events', '')"
TRY_RELAY_LOCK = "SELECT pg_try_advisory_xact_lock($1)"
UNPUBLISHED = """
SELECT seq, event_id, type, occurred_at, job_id, queue_name, job_type, attempt, duration_ms,
       wait_ms, error_type, error, data, status, priority, scheduled_for, batch_id
  FROM job_events WHERE published_at IS NULL ORDER BY seq LIMIT $1
"""
MARK_PUBLISHED = "UPDATE job_events SET published_at = $2 WHERE seq = ANY($1::bigint[])"
PRUNE_PUBLISHED = """
DELETE FROM job_events WHERE seq IN (
    SELECT seq FROM job_events WHERE published_at < $1 LIMIT $2)
"""
ANY_PUBLISHED = "SELECT EXISTS (SELECT 1 FROM job_events WHERE published_at IS NOT NULL)"
# A bus that lost its data (Redis flushed) gets the retained window again; consumers dedupe.
REPLAY_PUBLISHED = "UPDATE job_events SET published_at = NULL WHERE published_at >= $1"
OUTBOX_BACKLOG = """
SELECT count(*) AS n, min(occurred_at) AS oldest FROM job_events WHERE published_at IS NULL
"""
CLAIM_RECEIPTS = """
INSERT INTO event_receipts (consumer, event_id, received_at)
SELECT $1, unnest($2::uuid[]), $3
ON CONFLICT DO NOTHING
RETURNING event_id
"""
PRUNE_RECEIPTS = """
DELETE FROM event_receipts WHERE ctid IN (
    SELECT ctid FROM event_receipts WHERE received_at < $1 LIMIT $2)
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


# --- emit --------------------------------------------------------------------------------------


async def emit(deps: Deps, events: Sequence[NewEvent], *, conn: Any = None) -> None:
    """Write events that no job row produces into the outbox (``conn``: inside the caller's
    transaction, so the event commits with whatever caused it). ``data`` is masked."""
    if not events:
        return
    for e in events:
        if e.type not in OTHER_EVENT_TYPES and e.type not in JOB_EVENT_TYPES:
            raise ValueError(f"unknown event type {e.type!r}")
    args = ([e.type for e in events], [e.queue for e in events], [e.job_id for e in events],
            [e.job_type for e in events],
            [orjson.dumps(mask(e.data, deps.settings.mask_keys)).decode() for e in events], to_dt(deps.clock.now_ms()))
    if conn is not None:
        await conn.execute(INSERT_EVENTS, *args)
        await conn.execute(NOTIFY)
        return
    async with deps.pool.acquire() as c, c.transaction():
        await c.execute(INSERT_EVENTS, *args)
        await c.execute(NOTIFY)


# --- relay -------------------------------------------------------------------------------------


async def relay_once(deps: Deps, bus: EventBus, *, limit: int = 1000,
                     after_publish: Callable[[], Awaitable[None]] | None = None) -> int:
    """Publish up to ``limit`` unpublished outbox rows in order; returns how many.

    The rows are marked in the transaction that read them, after the bus acknowledged them. A
    crash in between (``after_publish`` lets a test raise exactly there) rolls the mark back and
    the next pass publishes them again: at-least-once. Only one relay publishes at a time.
    """
    async with deps.pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval(TRY_RELAY_LOCK, RELAY_LOCK_KEY):
            return 0
        if await bus.lost_state():
            # The bus came back empty (Redis flushed): hand it the retained window again.
            if await conn.fetchval(ANY_PUBLISHED):
                n = await conn.execute(REPLAY_PUBLISHED,
                                       to_dt(deps.clock.now_ms() - RETENTION_MS))
                log.warning("event bus lost its data; replaying retained events (%s)", n)
            await bus.mark_state()
        rows = await conn.fetch(UNPUBLISHED, limit)
        if not rows:
            return 0
        await bus.publish([event_from_row(r) for r in rows])
        if after_publish is not None:
            await after_publish()
        await conn.execute(MARK_PUBLISHED, [r["seq"] for r in rows], to_dt(deps.clock.now_ms()))
    return len(rows)


async def prune_outbox(deps: Deps, *, limit: int = 10_000) -> int:
    cutoff = to_dt(deps.clock.now_ms() - RETENTION_MS)
    res = await deps.pool.execute(PRUNE_PUBLISHED, cutoff, limit)
    return int(res.split()[-1])


class Relay:
    """The relay loop: publish whenever the outbox triggers NOTIFY (plus a slow safety pass for a
    notification lost with a dropped connection)."""

    def __init__(self, deps: Deps, bus: EventBus, *, batch: int = 1000,
                 safety_s: float = 1.0) -> None:
        self.deps = deps
        self.bus = bus
        self.batch = batch
        self.safety_s = safety_s
        self.published = 0
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
        pruned_at = 0.0
        loop = asyncio.get_running_loop()
        try:
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    n = await relay_once(self.deps, self.bus, limit=self.batch)
                    self.published += n
                    if loop.time() - pruned_at > 60:
                        pruned_at = loop.time()
                        await prune_outbox(self.deps)
                except Exception:
                    log.exception("relay pass failed")
                    n = 0
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), 1.0)
                if n >= self.batch:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.safety_s)
        finally:
            with contextlib.suppress(Exception):
                await listener.close()


# --- consumers: idempotent application ----------------------------------------------------------


async def apply_once(deps: Deps, consumer: str, events: Sequence[Event],
                     apply: Callable[[Any, list[Event]], Awaitable[None]]) -> list[Event]:
    """Apply ``events`` not yet applied by ``consumer``, in one transaction with their receipts.

    A redelivered event (the consumer died after this commit, before acknowledging the bus)
    finds its receipt and is skipped; a consumer that dies before the commit leaves nothing
    behind. Either way each event's effect lands exactly once. Returns the events applied now.
    """
    if not events:
        return []
    unique = list({e.id: e for e in events}.values())
    async with deps.pool.acquire() as conn, conn.transaction():
        fresh_ids = {r["event_id"] for r in await conn.fetch(
            CLAIM_RECEIPTS, consumer, [e.id for e in unique], to_dt(deps.clock.now_ms()))}
        fresh = [e for e in unique if e.id in fresh_ids]
        if fresh:
            await apply(conn, fresh)
    return fresh


async def prune_receipts(deps: Deps, older_than_ms: int = 7 * 86_400_000,
                         limit: int = 10_000) -> int:
    res = await deps.pool.execute(PRUNE_RECEIPTS, to_dt(deps.clock.now_ms() - older_than_ms),
                                  limit)
    return int(res.split()[-1])


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
