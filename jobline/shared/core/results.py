"""Result expiry: completed jobs' results are removed once their TTL has passed.

The TTL of a job is, first set wins: its submission's ``resultTtl``, its handler's
``@job(result_ttl=...)``, the global ``JOBLINE_RESULT_TTL_S``; 0 (the default) keeps the result.
``COMPLETE_JOBS`` turns it into ``result_expires_at`` when the job completes, so nothing here
needs to know the levels. The scheduler calls :func:`expire_results`; a read of an expired job
says so (``resultExpired``) instead of showing a bare null.

Invariants: a batch is one statement over rows taken with ``SKIP LOCKED`` through the partial
index on ``result_expires_at`` (only jobs with a result still to expire are in it), so peers
never block each other and the sweep never scans the table. The job's status is untouched, so
no event is emitted. Progress and log rows of the job go with its result. A result offloaded to
S3 loses its pointer; the object itself is left to the bucket's lifecycle rule.
"""

from __future__ import annotations

from jobline.shared.core.jobs import translate_errors
from jobline.shared.core.progress import DELETE_PROGRESS
from jobline.shared.platform.clock import to_dt
from jobline.shared.platform.connections import Deps

#: $1 now, $2 batch size.
EXPIRE_RESULTS = """
WITH due AS (
    SELECT id FROM jobs
     WHERE result_expires_at <= $1
     ORDER BY result_expires_at
     LIMIT $2
       FOR UPDATE SKIP LOCKED
)
UPDATE jobs j
   SET result = NULL, result_expires_at = NULL, result_expired_at = $1
  FROM due
 WHERE j.id = due.id
RETURNING j.id
"""

#: Rows per statement; the sweep repeats until a batch comes back short (or ``max_batches``).
BATCH = 1_000


@translate_errors
async def expire_results(deps: Deps, *, batch: int = BATCH, max_batches: int = 50) -> int:
    """Remove every result whose expiry time has come (up to ``batch * max_batches`` per call);
    returns how many."""
    now = to_dt(deps.clock.now_ms())
    total = 0
    for _ in range(max_batches):
        async with deps.pool.acquire() as conn, conn.transaction():
            ids = [r["id"] for r in await conn.fetch(EXPIRE_RESULTS, now, batch)]
            if ids:
                await conn.execute(DELETE_PROGRESS, ids)
        total += len(ids)
        if len(ids) < batch:
            break
    return total
