"""The dead-letter queue: jobs whose last attempt failed (retries exhausted or unrecoverable).

A dead-lettered job is a ``jobs`` row with ``status = 'dead_letter'``; its error history is in
``job_attempts``. Every operation here selects jobs with one :class:`DlqFilter` (ids and/or
queue, job type, error type, dead-lettered-at range) and is set-based: one SQL statement for the
whole selection, then one Redis script per affected queue (pipelined), so retrying 10,000 jobs
costs the same two round trips as retrying one.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, NoReturn

import redis.exceptions

from jobline.shared.core import sql
from jobline.shared.core.jobs import JobPage, _job_from_row, translate_errors
from jobline.shared.core.models import Job, Status
from jobline.shared.dispatch.redis_dispatch import DispatchEntry
from jobline.shared.platform.clock import to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import IllegalTransition, NotFound, ValidationFailed

log = logging.getLogger("jobline.dlq")

#: Most ids one request may name; a larger selection is expressed as a filter.
MAX_IDS = 100_000


@dataclass(frozen=True, slots=True)
class DlqFilter:
    """Which dead-lettered jobs an operation applies to; None fields match anything.

    ``from_ms``/``to_ms`` bound when the job was dead-lettered (``completed_at``), as [from, to).
    """

    ids: tuple[uuid.UUID, ...] | None = None
    queue: str | None = None
    job_type: str | None = None
    error_type: str | None = None
    from_ms: int | None = None
    to_ms: int | None = None

    def args(self) -> list[Any]:
        if self.ids is not None and len(self.ids) > MAX_IDS:
            raise ValidationFailed("ids", f"at most {MAX_IDS} ids per request")
        if self.from_ms is not None and self.to_ms is not None and self.from_ms > self.to_ms:
            raise ValidationFailed("to", "must not be before from")
        return [list(self.ids) if self.ids is not None else None, self.queue, self.job_type,
                self.error_type, to_dt(self.from_ms) if self.from_ms is not None else None,
                to_dt(self.to_ms) if self.to_ms is not None else None]


@translate_errors
async def list_dead_letters(deps: Deps, f: DlqFilter = DlqFilter(), *,
                            cursor: uuid.UUID | None = None, limit: int = 50) -> JobPage:
    """Newest first; ``cursor`` is the previous page's ``next_cursor`` (keyset paging)."""
    rows = await deps.pool.fetch(sql.LIST_DEAD_LETTERS, *f.args(), cursor, limit)
    jobs = [_job_from_row(r) for r in rows]
    nxt = str(jobs[-1].id) if len(jobs) == limit else None
    return JobPage(jobs, None, nxt)


@translate_errors
async def count_dead_letters(deps: Deps, f: DlqFilter = DlqFilter()) -> int:
    """How many jobs ``f`` selects now (a bulk action's confirmation states it)."""
    n: int = await deps.pool.fetchval(sql.COUNT_DEAD_LETTERS, *f.args())
    return n


async def iter_dead_letters(deps: Deps, f: DlqFilter = DlqFilter(), *,
                            page: int = 1_000) -> AsyncIterator[list[Job]]:
    """Every matching job, a page at a time (for exports: memory stays at one page)."""
    cursor: uuid.UUID | None = None
    while True:
        p = await list_dead_letters(deps, f, cursor=cursor, limit=page)
        if p.jobs:
            yield p.jobs
        if p.next_cursor is None:
            return
        cursor = uuid.UUID(p.next_cursor)


@translate_errors
async def retry_dead_letters(deps: Deps, f: DlqFilter) -> list[uuid.UUID]:
    """Send every matching dead-lettered job back to pending with fresh attempts.

    One UPDATE for the whole selection, then one enqueue script per queue in one pipeline.
    Returns the ids retried (a job retried concurrently by someone else is not among them).
    """
    now = deps.clock.now_ms()
    rows = await deps.pool.fetch(sql.RETRY_DEAD_LETTERS, *f.args(), to_dt(now))
    by_q: dict[str, list[DispatchEntry]] = {}
    for r in rows:
        by_q.setdefault(r["queue_name"], []).append(
            DispatchEntry(r["id"], r["priority"], r["seq"], now))
    try:
        await deps.dispatch.enqueue_many(by_q, now)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        # Committed as pending in Postgres; reconcile puts them back in ready.
        log.warning("retried %d dead-lettered jobs; Redis unavailable, reconcile will dispatch",
                    len(rows))
    return [r["id"] for r in rows]


async def retry_from_dlq(deps: Deps, job_id: uuid.UUID) -> Status:
    """Retry one dead-lettered job; 404 if unknown, 409 if it is not dead-lettered."""
    if await retry_dead_letters(deps, DlqFilter(ids=(job_id,))):
        return Status.PENDING
    await _refuse(deps, job_id, "retry-from-dlq")


@translate_errors
async def delete_dead_letters(deps: Deps, f: DlqFilter) -> list[uuid.UUID]:
    """Delete every matching dead-lettered job with its attempt history (one statement)."""
    rows = await deps.pool.fetch(sql.DELETE_DEAD_LETTERS, *f.args())
    with contextlib.suppress(redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        # Normally nothing of theirs is in Redis; a stale lease entry would only cost the sweep
        # a lookup, but removing it keeps the dispatch state exact.
        await deps.dispatch.remove([(r["queue_name"], r["id"]) for r in rows])
    return [r["id"] for r in rows]


async def _refuse(deps: Deps, job_id: uuid.UUID, action: str) -> NoReturn:
    cur = await deps.pool.fetchrow(sql.JOB_STATUS, job_id)
    if cur is None:
        raise NotFound(f"job {job_id} not found")
    raise IllegalTransition(str(job_id), cur["status"], action)

