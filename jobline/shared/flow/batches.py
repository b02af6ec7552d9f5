"""Batches: many jobs submitted together, tracked as one, with an optional ``onComplete`` job.

``create_batch`` stores the batch row, its jobs and the onComplete job in one transaction. The
onComplete job is stored ``waiting`` from the start and released by whichever transaction makes
the batch's last job terminal (``dependencies.settle``), so it runs exactly once, whether the
batch's jobs succeeded or not. Counts are read from the jobs themselves
(``jobs_batch_status`` index), so they cannot drift; the only counter is the monotone
``finished_events`` that lets a completion skip the "is the batch done?" probe until the batch
can possibly be done. The argument is in ``docs/batches.md``.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from jobline.shared.core import jobs
from jobline.shared.core.jobs import SubmitResult, translate_errors
from jobline.shared.core.models import JobSpec
from jobline.shared.platform.clock import from_dt, to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import NotFound, ValidationFailed
from jobline.shared.platform.ids import uuid7

INSERT_BATCH = """
INSERT INTO job_batches (id, name, total, on_complete_job_id, created_at)
VALUES ($1, $2, $3, $4, $5)
"""

GET_BATCH = """
SELECT id, name, total, on_complete_job_id, created_at, completed_at
  FROM job_batches WHERE id = $1
"""

# An index range scan over the batch's entries in jobs_batch_status: O(batch size) per read,
# nothing per completion. Reads are rare next to completions, so that is the right side to pay.
BATCH_COUNTS = """
SELECT status, count(*)::int AS n FROM jobs WHERE batch_id = $1 GROUP BY status
"""

MAX_NAME = 255

_UNFINISHED = ("waiting", "pending", "scheduled", "processing")
_FAILED = ("failed", "dead_letter", "cancelled")


@dataclass(frozen=True, slots=True)
class BatchCreated:
    id: uuid.UUID
    name: str
    total: int
    #: One per job of the batch, in order.
    jobs: list[SubmitResult]
    on_complete_job_id: uuid.UUID | None


#: ``running`` until every job is terminal, then ``completed`` (all succeeded) or
#: ``completed_with_failures``.
BatchState = Literal["running", "completed", "completed_with_failures"]


@dataclass(frozen=True, slots=True)
class BatchStatus:
    """A batch's progress. The one declaration of its output shape: the REST and GraphQL shells
    derive theirs from it (:mod:`jobline.shared.platform.wire`)."""

    id: uuid.UUID
    name: str
    total: int
    completed: int
    #: dead_letter + failed + cancelled
    failed: int
    #: waiting + pending + scheduled
    pending: int
    processing: int
    status: BatchState
    created_ms: int
    #: When every job was first terminal; None while running.
    completed_ms: int | None
    on_complete_job_id: uuid.UUID | None

    @classmethod
    def of(cls, row: Any, counts: dict[str, int]) -> BatchStatus:
        """From a ``job_batches`` row and its jobs' counts by status."""
        completed = counts.get("completed", 0)
        failed = sum(counts.get(s, 0) for s in _FAILED)
        processing = counts.get("processing", 0)
        pending = sum(counts.get(s, 0) for s in _UNFINISHED) - processing
        running = pending + processing > 0
        status: BatchState = ("running" if running else "completed_with_failures" if failed
                              else "completed")
        return cls(
            id=row["id"], name=row["name"], total=row["total"], completed=completed,
            failed=failed, pending=pending, processing=processing, status=status,
            created_ms=from_dt(row["created_at"]),
            completed_ms=(from_dt(row["completed_at"])
                          if row["completed_at"] is not None and not running else None),
            on_complete_job_id=row["on_complete_job_id"])


@translate_errors
async def create_batch(deps: Deps, name: str, specs: Sequence[JobSpec],
                       on_complete: JobSpec | None = None) -> BatchCreated:
    """Submit ``specs`` as one batch, all or nothing. Jobs may depend on existing jobs or on
    earlier jobs of the batch (``depends_on`` index). Idempotency keys are refused inside a
    batch: a duplicate would belong to some other batch (or none) and break the total.

    The submit limits apply as to any bulk submission (``jobs.submit_many``): more than
    ``max_bulk_jobs`` jobs is refused (field ``jobs``; onComplete is not counted), and so is a
    batch that would push a queue over its backlog cap (:class:`Unavailable`)."""
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME or "\x00" in name:
        raise ValidationFailed("name", f"must be 1-{MAX_NAME} characters")
    if not specs:
        raise ValidationFailed("jobs", "a batch needs at least one job")
    for i, spec in enumerate(specs):
        if spec.idempotency_key is not None:
            raise ValidationFailed(f"jobs[{i}].idempotencyKey", "not supported inside a batch")
    if on_complete is not None:
        if on_complete.idempotency_key is not None:
            raise ValidationFailed("onComplete.idempotencyKey", "not supported on onComplete")
        if on_complete.depends_on:
            raise ValidationFailed("onComplete.dependsOn",
                                   "onComplete runs when the batch is finished; no dependsOn")
    now = deps.clock.now_ms()
    batch_id = uuid7(now)
    n = len(specs)
    all_specs = [dataclasses.replace(s, batch_id=batch_id) for s in specs]
    if on_complete is not None:
        all_specs.append(dataclasses.replace(on_complete, batch_id=None))

    async def insert_batch(conn: Any, ids: list[uuid.UUID | None]) -> None:
        await conn.execute(INSERT_BATCH, batch_id, name, n,
                           ids[n] if on_complete is not None else None, to_dt(now))

    results = await jobs.submit_many(
        deps, all_specs, positions=False,
        where=lambda i: f"jobs[{i}]." if i < n else "onComplete.",
        hold=frozenset({n}) if on_complete is not None else frozenset(),
        before_insert=insert_batch)
    return BatchCreated(batch_id, name, n, results[:n],
                        results[n].submitted.id if on_complete is not None else None)


@translate_errors
async def get_batch(deps: Deps, batch_id: uuid.UUID) -> BatchStatus:
    row = await deps.pool.fetchrow(GET_BATCH, batch_id)
    if row is None:
        raise NotFound(f"batch {batch_id} not found")
    counts = {r["status"]: r["n"] for r in await deps.pool.fetch(BATCH_COUNTS, batch_id)}
    return BatchStatus.of(row, counts)
