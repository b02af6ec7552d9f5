"""Every (state, operation) pair: legal edges of ``TRANSITIONS`` happen, illegal ones are refused
and leave the job untouched. The edges each statement declares (``core/edges.py``) are the
table, each is run by exactly one core function, and docs/state-machine.md lists the same."""

from __future__ import annotations

import ast
import re
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

import jobline
from jobline.shared.core import edges, jobs, sql, waiting
from jobline.shared.core.models import TRANSITIONS, JobSpec, Outcome, Status
from jobline.shared.dispatch.redis_dispatch import DispatchEntry
from jobline.shared.platform.clock import FakeClock, to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import IllegalTransition
from jobline.shared.retry import dlq


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


async def op_retry_from_dlq(deps: Deps, job_id: uuid.UUID) -> bool:
    try:
        return await dlq.retry_from_dlq(deps, job_id) == Status.PENDING
    except IllegalTransition:
        return False


async def op_retry_dead_letters(deps: Deps, job_id: uuid.UUID) -> bool:
    return await dlq.retry_dead_letters(deps, dlq.DlqFilter(ids=(job_id,))) == [job_id]


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


async def op_dependency_dead_letters(deps: Deps, job_id: uuid.UUID) -> bool:
    """Make ``job_id`` wait on a fresh job D, then dead-letter D: the cascade cancels it."""
    [d] = await jobs.submit_many(deps, [JobSpec(queue="dq", job_type="t", payload={})])
    await deps.pool.execute(
        "INSERT INTO job_dependencies (job_id, depends_on) VALUES ($1, $2)", job_id,
        d.submitted.id)
    await deps.pool.execute("UPDATE jobs SET deps_remaining = 1 WHERE id = $1", job_id)
    [c] = await jobs.claim(deps, "w", ["dq"], 1)
    await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error="e", error_type="e",
                                   final=True)], [1])
    return await deps.pool.fetchval(
        "SELECT error_type = 'dependency_failed' FROM jobs WHERE id = $1", job_id) is True


async def op_batch_finishes(deps: Deps, job_id: uuid.UUID) -> bool:
    """Make ``job_id`` the onComplete job of a one-job batch, then complete that job."""
    before = await deps.pool.fetchval("SELECT status FROM jobs WHERE id = $1", job_id)
    [b] = await jobs.submit_many(deps, [JobSpec(queue="bq", job_type="t", payload={})])
    batch = uuid.uuid4()
    await deps.pool.execute(
        "INSERT INTO job_batches (id, name, total, on_complete_job_id, created_at) "
        "VALUES ($1, 'b', 1, $2, now())", batch, job_id)
    await deps.pool.execute("UPDATE jobs SET batch_id = $2 WHERE id = $1", b.submitted.id, batch)
    [c] = await jobs.claim(deps, "w", ["bq"], 1)
    await jobs.complete(deps, [Outcome(c.id, c.token, ok=True)])
    return await deps.pool.fetchval("SELECT status FROM jobs WHERE id = $1", job_id) != before


async def op_release_due(deps: Deps, job_id: uuid.UUID) -> bool:
    return await _last_dependency_completes(deps, job_id, 0)


async def op_release_later(deps: Deps, job_id: uuid.UUID) -> bool:
    return await _last_dependency_completes(deps, job_id, 60_000)


OPS: dict[str, tuple[Callable[[Deps, uuid.UUID], Awaitable[bool]], Status]] = {
    "cancel": (op_cancel, Status.CANCELLED),
    "retry_now": (op_retry_now, Status.PENDING),
    "retry_from_dlq": (op_retry_from_dlq, Status.PENDING),
    "retry_dead_letters": (op_retry_dead_letters, Status.PENDING),
    "claim": (op_claim, Status.PROCESSING),
    "complete": (op_complete, Status.COMPLETED),
    "fail_retry": (op_fail_retry, Status.SCHEDULED),
    "fail_final": (op_fail_final, Status.DEAD_LETTER),
    "release": (op_release, Status.PENDING),
    "fail_cancelled": (op_fail_cancelled, Status.CANCELLED),
    "release_due": (op_release_due, Status.PENDING),
    "release_later": (op_release_later, Status.SCHEDULED),
    "dependency_dead_letters": (op_dependency_dead_letters, Status.CANCELLED),
    "batch_finishes": (op_batch_finishes, Status.PENDING),
}

#: Which operation starts from which states: the sources its statement declares (the DLQ
#: operations narrow the manual retry to dead letters); every legal edge must be covered.
EDGE_OPS: dict[str, set[Status]] = {
    "cancel": set(edges.CANCEL_OR_REQUEST.sources),
    "retry_now": set(edges.RETRY_JOBS.sources),
    "retry_from_dlq": {Status.DEAD_LETTER},
    "retry_dead_letters": {Status.DEAD_LETTER},
    "claim": set(edges.CLAIM_JOBS.sources),
    "complete": set(edges.COMPLETE_JOBS.sources),
    "fail_retry": set(edges.FAIL_JOBS.sources),
    "fail_final": set(edges.FAIL_JOBS.sources),
    "release": set(edges.FAIL_JOBS.sources),
    "fail_cancelled": set(edges.FAIL_JOBS.sources),
    "release_due": set(edges.RELEASE_DEPENDENTS.sources),
    "release_later": set(edges.RELEASE_DEPENDENTS.sources),
    "dependency_dead_letters": set(edges.CANCEL_DEPENDENTS.sources),
    "batch_finishes": set(edges.RELEASE_ON_COMPLETE.sources),
}


def test_every_legal_edge_has_an_operation() -> None:
    covered = {(s, OPS[op][1]) for op, froms in EDGE_OPS.items() for s in froms}
    covered.add((Status.PROCESSING, Status.PENDING))  # release: a retry due now
    assert TRANSITIONS - covered == edges.UNPRODUCED
    assert covered <= TRANSITIONS


def test_declared_edges_are_the_table() -> None:
    """What the statements may do is exactly TRANSITIONS (less the Redis-only promotion)."""
    declared = frozenset().union(*(e.pairs for e in edges.ALL))
    assert declared == TRANSITIONS - edges.UNPRODUCED
    assert edges.UNPRODUCED <= TRANSITIONS
    assert len({e.statement for e in edges.ALL}) == len(edges.ALL)
    with pytest.raises(ValueError, match="not in TRANSITIONS"):
        edges.Edges("X", (Status.COMPLETED,), (Status.PENDING,))


def test_every_illegal_pair_is_declared_by_no_statement() -> None:
    declared = frozenset().union(*(e.pairs for e in edges.ALL))
    illegal = {(a, b) for a in Status for b in Status} - TRANSITIONS
    assert len(illegal) == len(Status) ** 2 - len(TRANSITIONS)
    assert not declared & illegal


def test_each_statement_guards_on_its_declared_sources() -> None:
    """The guard is formatted from the declaration; no other status test filters the target."""
    for e in edges.ALL:
        text = getattr(sql, e.statement)
        also = (Status.PROCESSING,) if e is edges.CANCEL_OR_REQUEST else ()
        assert f"IN {e.guard(*also)}" in text, e.statement
        # every status guard of the statement names the declared sources (a subquery over other
        # jobs, the batch members in RELEASE_ON_COMPLETE, is not a guard of the updated row)
        for m in re.finditer(r"(\w+\.)?status(?: \|\| '')?\)? IN \(([^)]*)\)", text):
            states = {x.strip(" '") for x in m.group(2).split(",")}
            if e is edges.RELEASE_ON_COMPLETE and m.group(1) == "j." and len(states) > 1:
                continue
            assert states == {s.value for s in (*e.sources, *also)}, (e.statement, m.group(0))


def _users(name: str) -> set[str]:
    """Where jobline/ runs statement ``name`` (besides sql.py and edges.py): "module.function" of each
    top-level function (its closures included), or "module" for a mention outside functions."""
    root = Path(jobline.__file__).parent
    out: set[str] = set()
    for path in root.rglob("*.py"):
        if path.name in ("sql.py", "edges.py"):
            continue
        tree = ast.parse(path.read_text())
        mod = ".".join(("jobline", *path.relative_to(root).with_suffix("").parts))

        def mentions(node: ast.AST) -> bool:
            # sql.NAME, or NAME imported from sql (edges.NAME is the declaration, not a use)
            return any((isinstance(n, ast.Attribute) and n.attr == name
                       and isinstance(n.value, ast.Name) and n.value.id == "sql")
                       or (isinstance(n, ast.Name) and n.id == name) for n in ast.walk(node))

        for node in tree.body:
            if mentions(node):
                is_fn = isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef)
                out.add(f"{mod}.{node.name}" if is_fn else mod)
    return out


def test_one_core_function_per_statement() -> None:
    """Each status-changing statement is run by the one function that declares it, and named
    nowhere else in jobline/ (so no shell or other module can perform the edge by itself)."""
    assert waiting.settle and jobs.retry  # both modules imported: every declaration registered
    assert set(edges.PERFORMERS) == {e.statement for e in edges.ALL}
    for e in edges.ALL:
        assert _users(e.statement) == {edges.PERFORMERS[e.statement]}, e.statement


def test_docs_table_is_the_code() -> None:
    """docs/state-machine.md, "Edges in the code": one row per (edge, function, statement)."""
    doc = (Path(jobline.__file__).parent.parent / "docs" / "state-machine.md").read_text()
    section = doc.split("## Edges in the code", 1)[1].split("\n## ", 1)[0]
    rows = set()
    for line in section.splitlines():
        m = re.fullmatch(r"\| `(\w+)` → `(\w+)` \| `([\w.]+)` \| `(\w+)` \|", line.strip())
        if m:
            rows.add((Status(m.group(1)), Status(m.group(2)), m.group(3), m.group(4)))
    code = {(a, b, edges.PERFORMERS[e.statement], e.statement)
            for e in edges.ALL for a, b in e.pairs}
    assert rows == code


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
