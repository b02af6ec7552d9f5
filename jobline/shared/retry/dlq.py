"""The dead-letter queue: jobs whose last attempt failed (retries exhausted or unrecoverable).

A dead-lettered job is a ``jobs`` row with ``status = 'dead_letter'``; its error history is in
``job_attempts``. Every operation here selects jobs with one :class:`DlqFilter` (ids and/or
queue, job type, error type, dead-lettered-at range) and is set-based: one SQL statement for the
whole selection, then one Redis script per affected queue (pipelined), so retrying 10,000 jobs
costs the same two round trips as retrying one.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

from jobline.shared.core import counts, sql
from jobline.shared.core.jobs import JobPage, _job_from_row, refuse, retry, translate_errors
from jobline.shared.core.models import MAX_IDS, DlqFilter, Job, Status
from jobline.shared.dispatch.mirror import after_commit
from jobline.shared.platform.connections import Deps

__all__ = ["MAX_IDS", "DlqFilter", "count_dead_letters", "delete_dead_letters", "iter_dead_letters",
           "list_dead_letters", "retry_dead_letters", "retry_from_dlq"]

log = logging.getLogger("jobline.dlq")

#: The DLQ operations retry dead letters only (a legacy ``failed`` row is ``retry_now``'s).
DLQ_ONLY = (Status.DEAD_LETTER,)
#: The filter that matches every dead letter.
EVERY = DlqFilter()


@translate_errors
async def list_dead_letters(deps: Deps, f: DlqFilter = EVERY, *,
                            cursor: uuid.UUID | None = None, limit: int = 50) -> JobPage:
    """Newest first; ``cursor`` is the previous page's ``next_cursor`` (keyset paging)."""
    rows = await deps.pool.fetch(sql.LIST_DEAD_LETTERS, *f.args(), cursor, limit)
    jobs = [_job_from_row(r) for r in rows]
    nxt = str(jobs[-1].id) if len(jobs) == limit else None
    return JobPage(jobs, None, nxt)


@translate_errors
async def count_dead_letters(deps: Deps, f: DlqFilter = EVERY) -> int:
    """How many jobs ``f`` selects now (a bulk action's confirmation states it).

    With no filter but the queue (the dead-letter page's total) this is read from the maintained
    counts (:mod:`jobline.shared.core.counts`), not by counting ``jobs``; a finer filter counts
    the rows it selects through the ``status``-leading indexes."""
    if f.ids is None and f.job_type is None and f.error_type is None \
            and f.from_ms is None and f.to_ms is None:
        return await counts.status_count(deps, Status.DEAD_LETTER, f.queue)
    n: int = await deps.pool.fetchval(sql.COUNT_DEAD_LETTERS, *f.args())
    return n


async def iter_dead_letters(deps: Deps, f: DlqFilter = EVERY, *,
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


async def retry_dead_letters(deps: Deps, f: DlqFilter) -> list[uuid.UUID]:
    """Send every matching dead-lettered job back to pending with fresh attempts (one statement
    for the whole selection: :func:`jobline.shared.core.jobs.retry`). Returns the ids retried."""
    return await retry(deps, f, from_statuses=DLQ_ONLY)


async def retry_from_dlq(deps: Deps, job_id: uuid.UUID) -> Status:
    """Retry one dead-lettered job; 404 if unknown, 409 if it is not dead-lettered."""
    if await retry_dead_letters(deps, DlqFilter(ids=(job_id,))):
        return Status.PENDING
    await refuse(deps, job_id, "retry-from-dlq")


@translate_errors
async def delete_dead_letters(deps: Deps, f: DlqFilter) -> list[uuid.UUID]:
    """Delete every matching dead-lettered job with its attempt history (one statement)."""
    rows = await deps.pool.fetch(sql.DELETE_DEAD_LETTERS, *f.args())
    with after_commit("deleted %d dead-lettered jobs", len(rows)):
        # Normally nothing of theirs is in Redis; a stale lease entry would only cost the sweep
        # a lookup, but removing it keeps the dispatch state exact.
        await deps.dispatch.remove([(r["queue_name"], r["id"]) for r in rows])
    return [r["id"] for r in rows]

