"""Every (state, operation) pair: legal edges of ``TRANSITIONS`` happen, illegal ones are refused
and leave the job untouched."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest

from jobline.shared.core import jobs
from jobline.shared.core.models import TRANSITIONS, JobSpec, Outcome, Status
from jobline.shared.dispatch.redis_dispatch import DispatchEntry
from jobline.shared.platform.clock import FakeClock, to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import IllegalTransition


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def job_in(deps: Deps, status: Status) -> uuid.UUID:
    [s] = await jobs.submit_many(deps, [JobSpec(queue="q", job_type="t", payload={})])
    now = deps.clock.now_ms()
    await deps.pool.execute(
        """UPDATE jobs SET status = $2, lease_token = 1, attempts = 1,
                  lease_expires_at = CASE WHEN $2 = 'processing' THEN $3::timestamptz END,
                  started_at = $4
            WHERE id = $1""",
        s.submitted.id, status.value, to_dt(now + 60_000), to_dt(now))
    # whatever Redis thinks, Postgres must decide: make the job poppable in every state
    await deps.dispatch.enqueue("q", [DispatchEntry(s.submitted.id, 5, s.submitted.seq, now)], now)
    return s.submitted.id


async def op_cancel(deps: Deps, job_id: uuid.UUID) -> bool:
    """Cancels a job that has not started; on a running job it only records the request (the job
    stays processing: not a transition), which ``fail_cancelled`` then carries out."""
    try:
        return await jobs.cancel(deps, job_id) == Status.CANCELLED
    except IllegalTransition:
        return False


async def op_fail_cancelled(deps: Deps, job_id: uuid.UUID) -> bool:
    rep = await jobs.fail(deps, [Outcome(job_id, 1, ok=False, error="stop", error_type="cancelled",
                                         cancelled=True)], [1])
    return rep.accepted == [job_id]


async def op_retry_now(deps: Deps, job_id: uuid.UUID) -> bool:
    try:
        await jobs.retry_now(deps, job_id)
        return True
    except IllegalTransition:
        return False


async def op_claim(deps: Deps, job_id: uuid.UUID) -> bool:
    return [c.id for c in await jobs.claim(deps, "w", ["q"], 10)] == [job_id]


async def op_complete(deps: Deps, job_id: uuid.UUID) -> bool:
    return (await jobs.complete(deps, [Outcome(job_id, 1, ok=True)])).accepted == [job_id]


async def op_fail_retry(deps: Deps, job_id: uuid.UUID) -> bool:
    rep = await jobs.fail(deps, [Outcome(job_id, 1, ok=False, error="e", error_type="e",
                                         retry_after_ms=5_000, burn_attempt=False)], [1])
    return rep.accepted == [job_id]


async def op_fail_final(deps: Deps, job_id: uuid.UUID) -> bool:
    rep = await jobs.fail(deps, [Outcome(job_id, 1, ok=False, error="e", error_type="e",
                                         final=True)], [1])
    return rep.accepted == [job_id]


async def op_release(deps: Deps, job_id: uuid.UUID) -> bool:
    return (await jobs.release(deps, [(job_id, 1)])).accepted == [job_id]


async def _last_dependency_completes(deps: Deps, job_id: uuid.UUID, due_in_ms: int) -> bool:
    """Make ``job_id`` wait on a fresh job D (edge + counter), then run D to completion."""
    [d] = await jobs.submit_many(deps, [JobSpec(queue="dq", job_type="t", payload={})])
    await deps.pool.execute(
        "INSERT INTO job_dependencies (job_id, depends_on) VALUES ($1, $2)", job_id,
        d.submitted.id)
    await deps.pool.execute(
        "UPDATE jobs SET has_dependents = true WHERE id = $1", d.submitted.id)
    await deps.pool.execute(
        "UPDATE jobs SET deps_remaining = 1, scheduled_for = $2 WHERE id = $1", job_id,
        to_dt(deps.clock.now_ms() + due_in_ms))
    [c] = await jobs.claim(deps, "w", ["dq"], 1)
    await jobs.complete(deps, [Outcome(c.id, c.token, ok=True)])
    return await deps.pool.fetchval(
        "SELECT deps_remaining FROM jobs WHERE id = $1", job_id) == 0


async def op_release_due(deps: Deps, job_id: uuid.UUID) -> bool:
    return await _last_dependency_completes(deps, job_id, 0)


async def op_release_later(deps: Deps, job_id: uuid.UUID) -> bool:
    return await _last_dependency_completes(deps, job_id, 60_000)


OPS: dict[str, tuple[Callable[[Deps, uuid.UUID], Awaitable[bool]], Status]] = {
    "cancel": (op_cancel, Status.CANCELLED),
    "retry_now": (op_retry_now, Status.PENDING),
    "claim": (op_claim, Status.PROCESSING),
    "complete": (op_complete, Status.COMPLETED),
    "fail_retry": (op_fail_retry, Status.SCHEDULED),
    "fail_final": (op_fail_final, Status.DEAD_LETTER),
    "release": (op_release, Status.PENDING),
    "fail_cancelled": (op_fail_cancelled, Status.CANCELLED),
    "release_due": (op_release_due, Status.PENDING),
    "release_later": (op_release_later, Status.SCHEDULED),
}

#: Which operation performs which edge; every legal edge must be covered by some operation.
EDGE_OPS = {
    "cancel": {s for s, t in TRANSITIONS if t == Status.CANCELLED} - {Status.PROCESSING},
    "retry_now": {Status.FAILED, Status.DEAD_LETTER},
    "claim": {Status.PENDING, Status.SCHEDULED},
    "complete": {Status.PROCESSING},
    "fail_retry": {Status.PROCESSING},
    "fail_final": {Status.PROCESSING},
    "release": {Status.PROCESSING},
    "fail_cancelled": {Status.PROCESSING},
    "release_due": {Status.WAITING},
    "release_later": {Status.WAITING},
}


def test_every_legal_edge_has_an_operation() -> None:
    covered = {(s, OPS[op][1]) for op, froms in EDGE_OPS.items() for s in froms}
    missing = TRANSITIONS - covered - {
        # edges whose producer lands with later features (promotion in PG)
        (Status.SCHEDULED, Status.PENDING), (Status.PROCESSING, Status.PENDING)}
    assert not missing
    assert covered <= TRANSITIONS


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("op", list(OPS))
async def test_state_operation_pair(deps: Deps, status: Status, op: str) -> None:
    fn, target = OPS[op]
    job_id = await job_in(deps, status)
    legal = status in EDGE_OPS[op]
    assert (status, target) in TRANSITIONS or not legal
    done = await fn(deps, job_id)
    after = Status(await deps.pool.fetchval("SELECT status FROM jobs WHERE id = $1", job_id))
    if legal:
        assert done, f"{op} from {status} should be allowed"
        assert after == target or (op == "fail_retry" and after == Status.SCHEDULED)
        assert (status, after) in TRANSITIONS
    else:
        assert not done, f"{op} from {status} must be refused"
        assert after == status, "an illegal transition must leave the job untouched"
