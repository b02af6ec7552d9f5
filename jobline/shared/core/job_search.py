"""Job search for the dashboard: the filters ``list_jobs`` has plus error type, a creation-time
window, a payload match and a text search on id/error, with keyset (cursor) paging.

The time window becomes an id range (ids are UUIDv7), so it prunes partitions and walks the
primary key; the other filters apply to the rows that range yields, newest first.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from jobline.shared.core.jobs import JobPage, _job_from_row, translate_errors
from jobline.shared.core.models import Status
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import ValidationFailed
from jobline.shared.platform.ids import uuid7_floor

MAX_PAGE = 500


@dataclass(frozen=True, slots=True)
class JobSearch:
    queue: str | None = None
    status: str | None = None
    job_type: str | None = None
    error_type: str | None = None
    from_ms: int | None = None
    to_ms: int | None = None
    #: JSON containment (``payload @> match``)
    payload_match: dict[str, Any] | None = None
    #: An id (exact) or a substring of the error message
    text: str | None = None


@translate_errors
async def search_jobs(deps: Deps, f: JobSearch, *, first: int = 50,
                      after: str | None = None) -> JobPage:
    if not 1 <= first <= MAX_PAGE:
        raise ValidationFailed("first", f"must be 1-{MAX_PAGE}")
    if f.status is not None and f.status not in Status.__members__.values():
        raise ValidationFailed("status", f"unknown status {f.status!r}")
    if f.from_ms is not None and f.to_ms is not None and f.from_ms >= f.to_ms:
        raise ValidationFailed("to", "must be after from")
    where: list[str] = []
    args: list[Any] = []

    def add(clause: str, value: Any) -> None:
        args.append(value)
        where.append(clause.replace("?", f"${len(args)}"))

    if f.queue is not None:
        add("queue_name = ?", f.queue)
    if f.status is not None:
        add("status = ?", f.status)
    if f.job_type is not None:
        add("job_type = ?", f.job_type)
    if f.error_type is not None:
        add("error_type = ?", f.error_type)
    if f.from_ms is not None:
        add("id >= ?", uuid7_floor(f.from_ms))
    if f.to_ms is not None:
        add("id < ?", uuid7_floor(f.to_ms))
    if f.payload_match is not None:
        add("payload @> ?::jsonb", f.payload_match)
    if f.text:
        try:
            add("id = ?", uuid.UUID(f.text))
        except ValueError:
            if len(f.text) > 200:
                raise ValidationFailed("search", "at most 200 characters") from None
            escaped = f.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            add("error ILIKE ?", f"%{escaped}%")
    if after:
        try:
            add("id < ?", uuid.UUID(after))
        except ValueError:
            raise ValidationFailed("after", "invalid cursor") from None
    args.append(first + 1)
    rows = await deps.pool.fetch(
        f"""SELECT id, queue_name, job_type, payload, status, priority, attempts, max_attempts,
                   result, error, error_type, created_at, started_at, completed_at,
                   scheduled_for, timeout_ms, idempotency_key, worker_id, batch_id, seq,
                   result_ttl_s, result_expires_at, result_expired_at
              FROM jobs WHERE {" AND ".join(where) or "TRUE"}
             ORDER BY id DESC LIMIT ${len(args)}""", *args)
    jobs = [_job_from_row(r) for r in rows[:first]]
    return JobPage(jobs, None, str(jobs[-1].id) if len(rows) > first else None)
