"""Batch loads behind the DataLoaders: one statement per relation per request, whatever the
number of jobs in the response (no N+1)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import orjson

from jobline.shared.core.jobs import _job_from_row
from jobline.shared.core.models import Attempt, Job
from jobline.shared.flow.batches import BatchStatus
from jobline.shared.platform.clock import from_dt
from jobline.shared.platform.connections import Deps

ATTEMPTS = """
SELECT job_id, attempt, worker_id, started_at, finished_at, outcome, error_type, error,
       duration_ms, retry_decision::text AS retry_decision
  FROM job_attempts WHERE job_id = ANY($1::uuid[]) ORDER BY job_id, lease_token
"""

JOBS = """
SELECT id, queue_name, job_type, payload, status, priority, attempts, max_attempts, result, error,
       error_type, created_at, started_at, completed_at, scheduled_for, timeout_ms,
       idempotency_key, worker_id, batch_id, seq, result_ttl_s, result_expires_at,
       result_expired_at
  FROM jobs WHERE id = ANY($1::uuid[])
"""

DEPENDS_ON = """
SELECT job_id, depends_on FROM job_dependencies WHERE job_id = ANY($1::uuid[])
 ORDER BY job_id, depends_on
"""

BATCHES = """
SELECT id, name, total, on_complete_job_id, created_at, completed_at
  FROM job_batches WHERE id = ANY($1::uuid[])
"""

BATCH_COUNTS = """
SELECT batch_id, status, count(*)::int AS n FROM jobs WHERE batch_id = ANY($1::uuid[])
 GROUP BY batch_id, status
"""


async def attempts(deps: Deps, ids: Sequence[uuid.UUID]) -> list[list[Attempt]]:
    by: dict[uuid.UUID, list[Attempt]] = {i: [] for i in ids}
    for a in await deps.pool.fetch(ATTEMPTS, list(ids)):
        by[a["job_id"]].append(Attempt(
            attempt=a["attempt"], worker_id=a["worker_id"], started_ms=from_dt(a["started_at"]),
            finished_ms=from_dt(a["finished_at"]), outcome=a["outcome"],
            error_type=a["error_type"], error=a["error"], duration_ms=a["duration_ms"],
            retry_decision=orjson.loads(a["retry_decision"])
            if a["retry_decision"] is not None else None))
    return [by[i] for i in ids]


async def jobs(deps: Deps, ids: Sequence[uuid.UUID]) -> list[Job | None]:
    by = {r["id"]: _job_from_row(r) for r in await deps.pool.fetch(JOBS, list(ids))}
    return [by.get(i) for i in ids]


async def depends_on(deps: Deps, ids: Sequence[uuid.UUID]) -> list[list[uuid.UUID]]:
    by: dict[uuid.UUID, list[uuid.UUID]] = {i: [] for i in ids}
    for r in await deps.pool.fetch(DEPENDS_ON, list(ids)):
        by[r["job_id"]].append(r["depends_on"])
    return [by[i] for i in ids]


async def batches(deps: Deps, ids: Sequence[uuid.UUID]) -> list[BatchStatus | None]:
    rows = await deps.pool.fetch(BATCHES, list(ids))
    counts: dict[uuid.UUID, dict[str, int]] = {}
    for r in await deps.pool.fetch(BATCH_COUNTS, list(ids)):
        counts.setdefault(r["batch_id"], {})[r["status"]] = r["n"]
    by = {r["id"]: BatchStatus.of(r, counts.get(r["id"], {})) for r in rows}
    return [by.get(i) for i in ids]


RECENT_BATCHES = "SELECT id FROM job_batches ORDER BY created_at DESC, id DESC LIMIT $1"


async def recent_batch_ids(deps: Deps, first: int) -> list[uuid.UUID]:
    """The newest ``first`` batches (the dashboard's batch list)."""
    return [r["id"] for r in await deps.pool.fetch(RECENT_BATCHES, first)]
