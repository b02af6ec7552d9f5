"""The audit log: the ``job_events`` outbox itself (partitioned by day, kept for
``JOBLINE_AUDIT_RETENTION_DAYS``, migration 0011) and its query.

No consumer copies events anywhere: every committed event is in the outbox from its commit on,
so the audit log is complete even before the relay published it.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jobline.shared.events.outbox import EVENT_TYPES, Event, row_events
from jobline.shared.platform.clock import to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import ValidationFailed

# Events with their own times (imports, tests); the live path is the triggers and emit().
INSERT_EVENTS = """
INSERT INTO job_events (occurred_at, event_id, type, job_id, queue_name, job_type, attempt,
                        duration_ms, wait_ms, error_type, error, data)
SELECT * FROM unnest($1::timestamptz[], $2::uuid[], $3::text[], $4::uuid[], $5::text[],
                     $6::text[], $7::int[], $8::int[], $9::int[], $10::text[], $11::text[],
                     $12::jsonb[])
"""

# Newest first, keyset-paged on (occurred_at, event_id) of the row; a statement row's events
# (migration 0019) follow its row's place, newest id first, and each keeps its own time. NULL
# parameters mean "any". Every event of a statement row is within the minute after the row's
# occurred_at, hence the minute of slack on "from" (the events themselves are filtered exactly).
LIST_AUDIT = """
SELECT seq, event_id, type, occurred_at, job_id, queue_name, job_type, attempt, duration_ms,
       wait_ms, error_type, error, data, status, priority, scheduled_for, batch_id, n, job_ids,
       at_ms, attempts, millis, priorities, due_ms
  FROM job_events
 WHERE ($1::uuid IS NULL OR job_id = $1 OR job_ids @> ARRAY[$1::uuid])
   AND ($2::text IS NULL OR type = $2)
   AND ($3::timestamptz IS NULL OR occurred_at >= $3 - interval '1 minute')
   AND ($4::timestamptz IS NULL OR occurred_at < $4)
   AND ($5::timestamptz IS NULL OR (occurred_at, event_id) <= ($5, $6::uuid))
 ORDER BY occurred_at DESC, event_id DESC
 LIMIT $7
"""


async def store(conn: Any, events: list[Event]) -> None:
    """Write ``events`` with their own ids and times into the outbox (and so the audit log);
    the relay publishes them like any other row. For imports and tests."""
    await conn.execute("SELECT pg_current_xact_id()")  # see outbox.TAKE_XID
    await conn.execute(
        INSERT_EVENTS, [to_dt(e.time_ms) for e in events], [e.id for e in events],
        [e.type for e in events], [e.job_id for e in events], [e.queue for e in events],
        [e.job_type for e in events], [e.attempt for e in events],
        [e.duration_ms for e in events], [e.wait_ms for e in events],
        [e.error_type for e in events], [e.error for e in events], [e.data for e in events])


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class AuditPage:
    events: list[dict[str, Any]]
    next_cursor: str | None


def _encode(at: datetime, event_id: uuid.UUID) -> str:
    # microseconds: a row's place is its exact occurred_at (rows of one millisecond differ)
    us = (at - EPOCH) // timedelta(microseconds=1)
    return base64.urlsafe_b64encode(f"u{us}:{event_id}".encode()).decode()


def _decode(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        t, eid = base64.urlsafe_b64decode(cursor.encode()).decode().split(":", 1)
        at = (EPOCH + timedelta(microseconds=int(t[1:])) if t.startswith("u")
              else to_dt(int(t)))  # a cursor from before 0019: milliseconds
        return at, uuid.UUID(eid)
    except (ValueError, UnicodeDecodeError, OverflowError):
        raise ValidationFailed("cursor", "invalid cursor") from None


def _row_events(r: Any) -> list[Event]:
    """A row's events, newest id first (the page order)."""
    return row_events(r)[::-1]


async def query(deps: Deps, *, job_id: uuid.UUID | None = None, type_: str | None = None,
                from_ms: int | None = None, to_ms: int | None = None, limit: int = 100,
                cursor: str | None = None) -> AuditPage:
    """Audit events matching every given filter, newest first; ``[from, to)`` on event time."""
    if type_ is not None and type_ not in EVENT_TYPES:
        raise ValidationFailed("type", f"unknown event type {type_!r}")
    if not 1 <= limit <= deps.settings.max_page_size:
        raise ValidationFailed("limit", f"must be between 1 and {deps.settings.max_page_size}")
    if from_ms is not None and to_ms is not None and from_ms > to_ms:
        raise ValidationFailed("from", "must not be after to")
    after = _decode(cursor) if cursor else None
    rows = await deps.pool.fetch(
        LIST_AUDIT, job_id, type_, to_dt(from_ms) if from_ms is not None else None,
        to_dt(to_ms) if to_ms is not None else None, after[0] if after else None,
        after[1] if after else None, limit)
    events: list[dict[str, Any]] = []
    last: tuple[datetime, uuid.UUID] | None = None
    for r in rows:
        at = r["occurred_at"]
        for e in _row_events(r):
            if after is not None and (at, e.id) >= after:
                continue  # shown on an earlier page (the rest of a statement row)
            if ((job_id is not None and e.job_id != job_id)
                    or (from_ms is not None and e.time_ms < from_ms)
                    or (to_ms is not None and e.time_ms >= to_ms)):
                continue
            events.append(e.to_dict())
            last = (at, e.id)
            if len(events) == limit:
                return AuditPage(events, _encode(*last))
    if len(rows) == limit:
        # more rows may follow; resume after the last row read (its events all came or were
        # filtered out)
        return AuditPage(events, _encode(rows[-1]["occurred_at"], rows[-1]["event_id"]))
    return AuditPage(events, None)
