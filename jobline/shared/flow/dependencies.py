"""Job dependencies and batch completion: what a job's submission or its end does to *other*
jobs, inside the same Postgres transaction.

- At submit, :func:`resolve` locks every dependency row ``FOR SHARE`` and decides the new job's
  state: ``waiting`` (with a counter of unfinished dependencies), ``pending``/``scheduled`` (all
  completed) or ``cancelled`` (a dependency already ended badly).
- When jobs end, :func:`settle` runs in the transaction of that transition: it decrements the
  counters of waiting dependents and releases those that reach 0, cancels the dependents of a
  job that ended ``dead_letter``/``failed``/``cancelled`` (level by level, so transitively), and
  counts the batch's terminal events, releasing the batch's ``onComplete`` job when every job of
  the batch is terminal.

Why there is no race between a dependency completing and a dependent being submitted, and why
the cascade runs one statement per level, is argued in ``docs/dependencies.md``; the batch
exactly-once argument is in ``docs/batches.md``. Everything here takes the caller's connection
(already in a transaction) and never touches Redis: callers mirror :class:`Settled` after commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import asyncpg

from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import ValidationFailed

T = TypeVar("T")

#: Statuses a dependency can end in that doom its dependents.
DOOMED = ("dead_letter", "failed", "cancelled")

# The first dependent of a job flags it: the UPDATE takes the row lock a completion needs too,
# so the flag and the completion are ordered, and a completion that comes second sees the flag
# (EvalPlanQual re-checks its WHERE on the newest row) and takes the transactional path.
MARK_DEPENDENCIES = """
UPDATE jobs SET has_dependents = true
 WHERE id = ANY($1::uuid[]) AND NOT has_dependents
RETURNING id, status
"""

# For dependencies already flagged. FOR SHARE conflicts with the FOR NO KEY UPDATE lock every
# status UPDATE takes, so a dependency cannot change status between this read and our commit;
# if it changed after our snapshot, READ COMMITTED re-reads the newest committed version.
# (FOR KEY SHARE would not conflict with a plain UPDATE, so it would not order us against the
# completion.)
LOCK_DEPENDENCIES = """
SELECT id, status FROM jobs WHERE id = ANY($1::uuid[]) ORDER BY id FOR SHARE
"""

DEPENDENCIES_OF = """
SELECT depends_on FROM job_dependencies WHERE job_id = $1 ORDER BY depends_on
"""

INSERT_EDGES = """
INSERT INTO job_dependencies (job_id, depends_on)
SELECT * FROM unnest($1::uuid[], $2::uuid[]) ON CONFLICT DO NOTHING
"""

# Jobs born cancelled because a dependency had already failed; $3 = now.
CANCEL_AT_BIRTH = """
UPDATE jobs SET error = u.reason, error_type = 'dependency_failed', completed_at = $3
  FROM unnest($1::uuid[], $2::text[]) AS u(id, reason)
 WHERE jobs.id = u.id AND jobs.status = 'cancelled'
"""

# $1 = ids that just completed, $2 = now. Each edge is decremented exactly once because a job
# completes exactly once (COMPLETE_JOBS is fenced). Rows are locked in id order first so two
# completers releasing overlapping dependents cannot deadlock; a dependent decremented by a
# concurrent, committed completion is re-read (EvalPlanQual), so the counter never loses one.
RELEASE_DEPENDENTS = """
WITH n AS (
    SELECT d.job_id, count(*)::int AS n
      FROM job_dependencies d
     WHERE d.depends_on = ANY($1::uuid[])
     GROUP BY d.job_id
), locked AS (
    SELECT j.id FROM jobs j JOIN n ON n.job_id = j.id
     WHERE j.status = 'waiting'
     ORDER BY j.id
       FOR UPDATE OF j
), upd AS (
    UPDATE jobs j
       SET deps_remaining = greatest(j.deps_remaining - n.n, 0),
           status = CASE WHEN j.deps_remaining - n.n > 0 THEN 'waiting'
                         WHEN j.scheduled_for <= $2 THEN 'pending'
                         ELSE 'scheduled' END,
           updated_at = $2
      FROM n JOIN locked ON locked.id = n.job_id
     WHERE j.id = n.job_id AND j.status = 'waiting'
    RETURNING j.id, j.queue_name, j.status, j.priority, j.seq, j.scheduled_for
)
SELECT * FROM upd WHERE status <> 'waiting'
"""

# One level of the cascade: the waiting dependents of $1 (which ended in status $2[i]) are
# cancelled with the reason. $3 = now. The caller feeds the returned ids back in as the next
# level; each level is a new statement, hence a new snapshot (see docs/dependencies.md).
CANCEL_DEPENDENTS = """
WITH c AS (
    SELECT DISTINCT ON (d.job_id) d.job_id, d.depends_on, s.status
      FROM job_dependencies d
      JOIN unnest($1::uuid[], $2::text[]) AS s(id, status) ON d.depends_on = s.id
     ORDER BY d.job_id, d.depends_on
), locked AS (
    SELECT j.id FROM jobs j JOIN c ON c.job_id = j.id
     WHERE j.status = 'waiting'
     ORDER BY j.id
       FOR UPDATE OF j
)
UPDATE jobs j
   SET status = 'cancelled', error = 'dependency ' || c.depends_on || ' ' || c.status,
       error_type = 'dependency_failed', completed_at = $3, updated_at = $3
  FROM c JOIN locked ON locked.id = c.job_id
 WHERE j.id = c.job_id AND j.status = 'waiting'
RETURNING j.id, j.queue_name, j.batch_id
"""

# $1 = one batch id per job that just became terminal (repeats allowed). The batch rows are
# locked in id order; the lock is held to commit, which is what serialises the batch's
# completers (docs/batches.md).
BUMP_BATCHES = """
WITH n AS (
    SELECT bid, count(*)::bigint AS n FROM unnest($1::uuid[]) AS bid GROUP BY bid
), locked AS (
    SELECT b.id FROM job_batches b JOIN n ON n.bid = b.id ORDER BY b.id FOR UPDATE OF b
)
UPDATE job_batches b SET finished_events = b.finished_events + n.n
  FROM n JOIN locked ON locked.id = n.bid
 WHERE b.id = n.bid
RETURNING b.id, b.finished_events >= b.total AS due
"""

# For batches whose event count reached the total: if no job of the batch is unfinished, stamp
# completed_at (first time) and release the onComplete job (only if still waiting: once).
# Must run as its own statement after BUMP_BATCHES, so its snapshot postdates the batch lock.
SETTLE_BATCHES = """
WITH done AS (
    SELECT b.id, b.on_complete_job_id
      FROM job_batches b
     WHERE b.id = ANY($1::uuid[])
       AND NOT EXISTS (SELECT 1 FROM jobs j
                        WHERE j.batch_id = b.id
                          AND j.status IN ('waiting', 'pending', 'scheduled', 'processing'))
), stamp AS (
    UPDATE job_batches b SET completed_at = coalesce(b.completed_at, $2)
      FROM done WHERE b.id = done.id
)
UPDATE jobs j
   SET status = CASE WHEN j.scheduled_for <= $2 THEN 'pending' ELSE 'scheduled' END,
       deps_remaining = 0, updated_at = $2
  FROM done
 WHERE j.id = done.on_complete_job_id AND j.status = 'waiting'
RETURNING j.id, j.queue_name, j.status, j.priority, j.seq, j.scheduled_for
"""


# --- submit ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Gate:
    """How a new job starts, given its dependencies."""

    #: Dependencies not completed yet (the job is ``waiting`` while > 0).
    remaining: int = 0
    #: Set when a dependency already ended badly: the job is stored ``cancelled`` with this error.
    cancel_reason: str | None = None


async def resolve(conn: Any, specs_deps: dict[int, list[tuple[int, uuid.UUID]]],
                  internal: dict[int, dict[uuid.UUID, int]], field: Callable[[int, int], str]
                  ) -> dict[int, Gate]:
    """Lock the dependencies of the specs being inserted and compute each one's :class:`Gate`.

    ``specs_deps[i]`` lists ``(position in dependsOn, job id)`` of spec ``i``; ``internal[i]``
    maps ids that are other *fresh* specs of the same request to their index (they are being
    inserted now, so they are not completed, and they can only be earlier specs). Unknown ids
    raise ``ValidationFailed`` naming ``field(i, position)``; the caller's transaction then rolls
    back, so nothing of the request is stored.
    """
    external = sorted({d for i, lst in specs_deps.items() for _, d in lst
                       if d not in internal.get(i, {})})
    status: dict[uuid.UUID, str] = {}
    if external:
        status = {r["id"]: r["status"] for r in await conn.fetch(MARK_DEPENDENCIES, external)}
        rest = [d for d in external if d not in status]
        if rest:  # already flagged (or unknown): a shared lock is enough
            status.update({r["id"]: r["status"]
                           for r in await conn.fetch(LOCK_DEPENDENCIES, rest)})
    gates: dict[int, Gate] = {}
    for i in sorted(specs_deps):
        remaining = 0
        reason: str | None = None
        for pos, d in specs_deps[i]:
            k = internal.get(i, {}).get(d)
            if k is not None:
                g = gates.get(k, Gate())
                if g.cancel_reason is not None and reason is None:
                    reason = f"dependency {d} cancelled"
                remaining += 1
                continue
            st = status.get(d)
            if st is None:
                raise ValidationFailed(field(i, pos), f"unknown job id {d}")
            if st in DOOMED and reason is None:
                reason = f"dependency {d} {st}"
            elif st != "completed":
                remaining += 1
        gates[i] = Gate(remaining, reason)
    return gates


async def insert_edges(conn: Any, edges: Sequence[tuple[uuid.UUID, uuid.UUID]],
                       inserted_targets: Sequence[uuid.UUID] = ()) -> None:
    """Store the edges; ``inserted_targets`` are dependencies inserted by this same transaction
    (in-request references), which still need their has_dependents flag."""
    if edges:
        await conn.execute(INSERT_EDGES, [e[0] for e in edges], [e[1] for e in edges])
    if inserted_targets:
        await conn.execute(MARK_DEPENDENCIES, sorted(set(inserted_targets)))


async def cancel_at_birth(conn: Any, born: Sequence[tuple[uuid.UUID, str]], now: datetime
                          ) -> None:
    if born:
        await conn.execute(CANCEL_AT_BIRTH, [b[0] for b in born], [b[1] for b in born], now)


# --- when jobs end -----------------------------------------------------------------------------


@dataclass(slots=True)
class Settled:
    """What :func:`settle` changed besides the caller's own jobs."""

    #: Jobs that became pending/scheduled (dependents released, onComplete jobs): to dispatch.
    released: list[Any] = field(default_factory=list)
    #: Waiting jobs cancelled because a dependency failed (never in Redis: nothing to remove).
    cancelled: list[Any] = field(default_factory=list)


async def settle(conn: Any, now: datetime, *, completed: Sequence[uuid.UUID] = (),
                 doomed: Sequence[tuple[uuid.UUID, str]] = (),
                 batch_ids: Sequence[uuid.UUID | None] = ()) -> Settled:
    """Apply the consequences of jobs having just ended, in the caller's transaction.

    ``completed``: ids now ``completed``; ``doomed``: ``(id, status)`` now dead_letter, failed or
    cancelled; ``batch_ids``: the batch of every job that just became terminal (None allowed).
    Must run after the statement that made those jobs terminal, as separate statements (a new
    snapshot each), never folded into it.
    """
    out = Settled()
    if completed:
        out.released += await conn.fetch(RELEASE_DEPENDENTS, list(completed), now)
    level = list(doomed)
    while level:
        rows = await conn.fetch(CANCEL_DEPENDENTS, [d[0] for d in level],
                                [d[1] for d in level], now)
        out.cancelled += rows
        level = [(r["id"], "cancelled") for r in rows]
    bids = [b for b in batch_ids if b is not None]
    bids += [r["batch_id"] for r in out.cancelled if r["batch_id"] is not None]
    if bids:
        due = [r["id"] for r in await conn.fetch(BUMP_BATCHES, bids) if r["due"]]
        if due:
            out.released += await conn.fetch(SETTLE_BATCHES, due, now)
    return out


#: A deadlock between a submitter's FOR SHARE locks and a cascade's row locks is possible in
#: principle (they take rows in different orders); Postgres aborts one side, which is retried.
_RETRIES = 5


async def retry_deadlock(fn: Callable[[], Awaitable[T]]) -> T:
    """Run a single statement (``fn``), retrying it if Postgres picked it as a deadlock victim."""
    for attempt in range(_RETRIES):
        try:
            return await fn()
        except asyncpg.exceptions.DeadlockDetectedError:
            if attempt == _RETRIES - 1:
                raise
    raise AssertionError("unreachable")


async def in_transaction(deps: Deps, fn: Callable[[Any], Awaitable[T]], conn: Any = None) -> T:
    """Run ``fn(conn)`` in a transaction, retrying on deadlock. With ``conn`` given, the caller
    owns the transaction (and its retries): ``fn`` just runs on it."""
    if conn is not None:
        return await fn(conn)
    for attempt in range(_RETRIES):
        try:
            async with deps.pool.acquire() as c, c.transaction():
                return await fn(c)
        except (asyncpg.exceptions.DeadlockDetectedError,
                asyncpg.exceptions.SerializationError):
            if attempt == _RETRIES - 1:
                raise
    raise AssertionError("unreachable")
