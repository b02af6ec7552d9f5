"""Job dependencies at submit: what a new job's ``dependsOn`` makes of it, inside the submit's
Postgres transaction.

:func:`resolve` locks every dependency row ``FOR SHARE`` and decides the new job's state:
``waiting`` (with a counter of unfinished dependencies), ``pending``/``scheduled`` (all
completed) or ``cancelled`` (a dependency already ended badly). What a job's *end* does to the
jobs waiting on it (release, cascade of cancels, a batch's onComplete job) are transitions, so
they live with the others in the core: :mod:`jobline.shared.core.waiting` (:func:`settle`,
re-exported here for the transitions in ``core/jobs.py``).

Why there is no race between a dependency completing and a dependent being submitted is argued
in ``docs/dependencies.md``. Everything here takes the caller's connection (already in a
transaction) and never touches Redis.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import asyncpg

from jobline.shared.core import offload
from jobline.shared.core.waiting import Settled, settle
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import ValidationFailed

T = TypeVar("T")

__all__ = ["DOOMED", "Gate", "Settled", "in_transaction", "resolve", "retry_deadlock", "settle"]

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


# The results of a job's dependencies (a chain passing results on, opt-in per handler with
# ``@job(..., dependency_results=True)``). Only completed dependencies have one; a job runs only
# once all of its dependencies completed, so at run time that is all of them.
DEPENDENCY_RESULTS = """
SELECT d.depends_on AS id, j.result
  FROM job_dependencies d JOIN jobs j ON j.id = d.depends_on
 WHERE d.job_id = $1 AND j.status = 'completed'
 ORDER BY d.depends_on
"""


async def dependency_results(deps: Deps, job_id: uuid.UUID) -> dict[str, Any]:
    """``{dependency id: its result}`` for ``job_id`` (results offloaded to S3 fetched back)."""
    rows = await deps.pool.fetch(DEPENDENCY_RESULTS, job_id)
    values = await offload.resolve_many(deps.settings, [r["result"] for r in rows])
    return {str(r["id"]): v for r, v in zip(rows, values, strict=True)}
