"""The audit log: every event stored in ``audit_events`` (partitioned by month) and its query.

Written by the ``audit`` consumer through :func:`jobline.shared.events.outbox.apply_once`; the primary
key (occurred_at, event_id) also ignores a redelivered event on its own.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any

from jobline.shared.events.outbox import EVENT_TYPES, Event
from jobline.shared.platform.clock import from_dt, to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import ValidationFailed

#: The consumer group (and receipt name) of the audit log.
GROUP = "audit"

INSERT_AUDIT = """
INSERT INTO audit_events (occurred_at, event_id, type, job_id, queue_name, envelope, recorded_at)
SELECT u.t, u.id, u.ty, u.j, u.q, u.e::jsonb, $7
  FROM unnest($1::timestamptz[], $2::uuid[], $3::text[], $4::uuid[], $5::text[], $6::text[])
       AS u(t, id, ty, j, q, e)
ON CONFLICT DO NOTHING
"""

# Newest first, keyset-paged on (occurred_at, event_id). NULL parameters mean "any".
LIST_AUDIT = """
SELECT occurred_at, event_id, envelope FROM audit_events
 WHERE ($1::uuid IS NULL OR job_id = $1)
   AND ($2::text IS NULL OR type = $2)
   AND ($3::timestamptz IS NULL OR occurred_at >= $3)
   AND ($4::timestamptz IS NULL OR occurred_at < $4)
   AND ($5::timestamptz IS NULL OR (occurred_at, event_id) < ($5, $6::uuid))
 ORDER BY occurred_at DESC, event_id DESC
 LIMIT $7
"""

ENSURE_PARTITIONS = "SELECT jobline_ensure_audit_partitions($1, $2)"


async def store(conn: Any, events: list[Event], now_ms: int) -> None:
    """Append ``events`` to the audit log (inside the consumer's transaction)."""
    await conn.execute(
        INSERT_AUDIT, [to_dt(e.time_ms) for e in events], [e.id for e in events],
        [e.type for e in events], [e.job_id for e in events], [e.queue for e in events],
        [e.to_json().decode() for e in events], to_dt(now_ms))


async def ensure_partitions(deps: Deps, months_ahead: int = 3) -> int:
    """Monthly partitions from last month to ``months_ahead`` ahead (idempotent)."""
    start = deps.clock.now_ms() - 31 * 86_400_000
    return int(await deps.pool.fetchval(ENSURE_PARTITIONS, to_dt(start), months_ahead + 2))


@dataclass(frozen=True, slots=True)
class AuditPage:
    events: list[dict[str, Any]]
    next_cursor: str | None


def _encode(ms: int, event_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{ms}:{event_id}".encode()).decode()


def _decode(cursor: str) -> tuple[int, uuid.UUID]:
    try:
        ms, eid = base64.urlsafe_b64decode(cursor.encode()).decode().split(":", 1)
        return int(ms), uuid.UUID(eid)
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed("cursor", "invalid cursor") from None


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
        to_dt(to_ms) if to_ms is not None else None, to_dt(after[0]) if after else None,
        after[1] if after else None, limit)
    events = [r["envelope"] for r in rows]
    nxt = (_encode(from_dt(rows[-1]["occurred_at"]), rows[-1]["event_id"])
           if len(rows) == limit else None)
    return AuditPage(events, nxt)
