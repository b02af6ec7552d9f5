"""Job dependencies (``dependsOn``): waiting, atomic release, transitive cancellation, races,
the graph, and the seed's "dependencies enforced (no premature execution)" with a real Worker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from jobline.client import Client
from jobline.shared.core import jobs
from jobline.shared.core.maintenance import reconcile
from jobline.shared.core.models import JobSpec, Outcome, Status
from jobline.shared.platform.clock import FakeClock
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect
from jobline.shared.platform.errors import ValidationFailed
from jobline.testing import drain
from jobline.worker.registry import Registry


@pytest.fixture
async def clock() -> FakeClock:
    return FakeClock()


def spec(job_type: str = "t", *, depends_on: tuple[Any, ...] = (), **kw: Any) -> JobSpec:
    return JobSpec(queue=kw.pop("queue", "q"), job_type=job_type, payload=kw.pop("payload", {}),
                   depends_on=depends_on, **kw)


async def submit(deps: Deps, *specs: JobSpec) -> list[uuid.UUID]:
    return [r.submitted.id for r in await jobs.submit_many(deps, list(specs))]


async def status(deps: Deps, job_id: uuid.UUID) -> Status:
    return Status(await deps.pool.fetchval("SELECT status FROM jobs WHERE id = $1", job_id))


async def in_redis(deps: Deps, queue: str, job_id: uuid.UUID) -> bool:
    k = deps.dispatch.keys(queue)
    return any([await deps.redis.zscore(k.ready, str(job_id)) is not None,
                await deps.redis.zscore(k.delayed, str(job_id)) is not None])


async def run_one(deps: Deps, job_id: uuid.UUID, *, ok: bool = True, queue: str = "q") -> None:
    """Claim exactly ``job_id`` (it must be the only claimable job) and finish it."""
    claimed = await jobs.claim(deps, "w", [queue], 10)
    assert [c.id for c in claimed] == [job_id]
    c = claimed[0]
    if ok:
        assert (await jobs.complete(deps, [Outcome(c.id, c.token, ok=True)])).accepted == [c.id]
    else:
        rep = await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error="boom",
                                             error_type="boom", final=True)], [c.attempt])
        assert rep.statuses == {c.id: Status.DEAD_LETTER}


async def test_dependent_waits_outside_redis_then_is_released_by_the_completion(
        deps: Deps) -> None:
    [a] = await submit(deps, spec())
    [b] = await jobs.submit_many(deps, [spec(depends_on=(a,))])
    assert b.submitted.status == Status.WAITING and b.queue_position is None
    assert not await in_redis(deps, "q", b.submitted.id)
    # only A is claimable: B must not run before A completed
    await run_one(deps, a)
    assert await status(deps, b.submitted.id) == Status.PENDING
    assert await in_redis(deps, "q", b.submitted.id)
    await run_one(deps, b.submitted.id)


async def test_fan_in_released_only_by_the_last_dependency(deps: Deps) -> None:
    a1, a2, a3 = await submit(deps, spec(), spec(), spec())
    [b] = await submit(deps, spec("b", depends_on=(a1, a2, a3, a2)))  # a repeat counts once
    assert await deps.pool.fetchval("SELECT deps_remaining FROM jobs WHERE id = $1", b) == 3
    claimed = {c.id: c for c in await jobs.claim(deps, "w", ["q"], 10)}
    assert set(claimed) == {a1, a2, a3}
    for n, a in enumerate((a1, a2)):
        await jobs.complete(deps, [Outcome(a, claimed[a].token, ok=True)])
        assert await status(deps, b) == Status.WAITING
        assert await deps.pool.fetchval(
            "SELECT deps_remaining FROM jobs WHERE id = $1", b) == 2 - n
    await jobs.complete(deps, [Outcome(a3, claimed[a3].token, ok=True)])
    assert await status(deps, b) == Status.PENDING


async def test_dependencies_already_completed_start_pending(deps: Deps) -> None:
    [a] = await submit(deps, spec())
    await run_one(deps, a)
    [b] = await jobs.submit_many(deps, [spec(depends_on=(a,))], positions=True)
    assert b.submitted.status == Status.PENDING and b.queue_position == 1


async def test_released_job_due_later_becomes_scheduled(deps: Deps, clock: FakeClock) -> None:
    [a] = await submit(deps, spec())
    [b] = await submit(deps, spec(depends_on=(a,), scheduled_for_ms=clock.now_ms() + 60_000))
    assert await status(deps, b) == Status.WAITING
    await run_one(deps, a)
    assert await status(deps, b) == Status.SCHEDULED
    assert await jobs.claim(deps, "w", ["q"], 10) == []  # not due yet
    clock.advance(60_000)
    assert [c.id for c in await jobs.claim(deps, "w", ["q"], 10)] == [b]


async def test_unknown_dependency_is_rejected_naming_the_field_and_nothing_is_stored(
        deps: Deps) -> None:
    [a] = await submit(deps, spec())
    ghost = uuid.uuid4()
    with pytest.raises(ValidationFailed) as e:
        await jobs.submit_many(deps, [spec(idempotency_key="k1"),
                                      spec(depends_on=(a, ghost))])
    assert e.value.field == "jobs[1].dependsOn[1]" and str(ghost) in e.value.message
    with pytest.raises(ValidationFailed) as e:
        await jobs.submit(deps, spec(depends_on=(ghost,)))
    assert e.value.field == "dependsOn[0]"
    assert await deps.pool.fetchval("SELECT count(*) FROM jobs") == 1
    assert await deps.pool.fetchval("SELECT count(*) FROM job_dependencies") == 0
    assert await deps.pool.fetchval("SELECT count(*) FROM idempotency_keys") == 0
    # an index must point at an earlier item of the same request
    with pytest.raises(ValidationFailed) as e:
        await jobs.submit_many(deps, [spec(depends_on=(1,)), spec()])
    assert e.value.field == "jobs[0].dependsOn[0]"


async def test_dependencies_within_one_bulk_request(deps: Deps) -> None:
    res = await jobs.submit_many(deps, [spec("a"), spec("b", depends_on=(0,)),
                                        spec("c", depends_on=(0, 1))])
    a, b, c = (r.submitted.id for r in res)
    assert [r.submitted.status for r in res] == [Status.PENDING, Status.WAITING, Status.WAITING]
    await run_one(deps, a)
    assert (await status(deps, b), await status(deps, c)) == (Status.PENDING, Status.WAITING)
    await run_one(deps, b)
    assert await status(deps, c) == Status.PENDING


async def test_index_dependency_on_an_idempotency_duplicate(deps: Deps) -> None:
    [old] = await submit(deps, spec(idempotency_key="old"))
    res = await jobs.submit_many(deps, [
        spec(idempotency_key="new"), spec(idempotency_key="new"), spec(idempotency_key="old"),
        spec(depends_on=(1,)), spec(depends_on=(2,))])
    first = res[0].submitted.id
    assert res[1].submitted.id == first and res[2].submitted.id == old
    assert (await jobs.get_job(deps, res[3].submitted.id)).depends_on == [first]
    assert (await jobs.get_job(deps, res[4].submitted.id)).depends_on == [old]
    assert [r.submitted.status for r in res[3:]] == [Status.WAITING, Status.WAITING]
    claimed = {c.id: c for c in await jobs.claim(deps, "w", ["q"], 10)}
    assert set(claimed) == {old, first}
    await jobs.complete(deps, [Outcome(i, c.token, ok=True) for i, c in claimed.items()])
    assert {c.id for c in await jobs.claim(deps, "w", ["q"], 10)} == {
        res[3].submitted.id, res[4].submitted.id}


async def test_dead_letter_cancels_dependents_transitively_with_the_reason(deps: Deps) -> None:
    [a, other] = await submit(deps, spec(), spec(queue="other"))
    [b] = await submit(deps, spec(depends_on=(a,)))
    [c] = await submit(deps, spec(depends_on=(b, other)))
    [d] = await submit(deps, spec(depends_on=(c,)))
    await run_one(deps, a, ok=False)
    for job, cause, how in ((b, a, "dead_letter"), (c, b, "cancelled"), (d, c, "cancelled")):
        j = await jobs.get_job(deps, job)
        assert j.status == Status.CANCELLED
        assert (j.error, j.error_type) == (f"dependency {cause} {how}", "dependency_failed")
        assert j.completed_ms is not None
    # the unrelated dependency of c is untouched
    assert await status(deps, other) == Status.PENDING


async def test_cancelling_a_dependency_cancels_its_dependents(deps: Deps) -> None:
    [a] = await submit(deps, spec())
    [b] = await submit(deps, spec(depends_on=(a,)))
    assert await jobs.cancel(deps, a) == Status.CANCELLED
    j = await jobs.get_job(deps, b)
    assert (j.status, j.error) == (Status.CANCELLED, f"dependency {a} cancelled")


async def test_dependency_that_already_failed_cancels_the_new_job_at_birth(deps: Deps) -> None:
    [a] = await submit(deps, spec())
    await run_one(deps, a, ok=False)
    b, c = await jobs.submit_many(deps, [spec(depends_on=(a,)), spec(depends_on=(0,))])
    assert (b.submitted.status, c.submitted.status) == (Status.CANCELLED, Status.CANCELLED)
    j = await jobs.get_job(deps, b.submitted.id)
    assert (j.status, j.error) == (Status.CANCELLED, f"dependency {a} dead_letter")
    assert (await jobs.get_job(deps, c.submitted.id)).error == f"dependency {b.submitted.id} cancelled"
    assert not await in_redis(deps, "q", b.submitted.id)
    assert await jobs.claim(deps, "w", ["q"], 10) == []


async def test_retried_dependency_completing_does_not_revive_cancelled_dependents(
        deps: Deps) -> None:
    [a] = await submit(deps, spec())
    [b] = await submit(deps, spec(depends_on=(a,)))
    await run_one(deps, a, ok=False)
    await jobs.retry_now(deps, a)
    await run_one(deps, a)
    assert await status(deps, b) == Status.CANCELLED


async def test_reconcile_never_puts_waiting_jobs_into_redis(deps: Deps) -> None:
    [a] = await submit(deps, spec())
    [b] = await submit(deps, spec(depends_on=(a,)))
    # Redis loses everything of ours
    keys = [k async for k in deps.redis.scan_iter(match=f"*{deps.settings.redis_prefix}*")]
    await deps.redis.unlink(*keys)
    await reconcile(deps)
    assert await in_redis(deps, "q", a)
    assert not await in_redis(deps, "q", b)
    await run_one(deps, a)  # b is not claimable alongside a
    await run_one(deps, b)


async def test_no_race_between_completing_a_dependency_and_submitting_a_dependent(
        deps: Deps) -> None:
    """The completion and the dependent's submit run concurrently, many times over: whichever
    wins, the dependent never stays waiting on a completed dependency."""
    rounds = 40
    firsts = await submit(deps, *[spec() for _ in range(rounds)])
    claimed = {c.id: c for c in await jobs.claim(deps, "w", ["q"], rounds)}
    assert set(claimed) == set(firsts)
    dependents = []
    for a in firsts:
        _, [sub] = await asyncio.gather(
            jobs.complete(deps, [Outcome(a, claimed[a].token, ok=True)]),
            jobs.submit_many(deps, [spec("b", depends_on=(a,))]))
        dependents.append(sub.submitted.id)
    stuck = await deps.pool.fetchval(
        "SELECT count(*) FROM jobs WHERE id = ANY($1::uuid[]) AND status <> 'pending'",
        dependents)
    assert stuck == 0
    assert await deps.pool.fetchval(
        "SELECT count(*) FROM jobs WHERE id = ANY($1::uuid[]) AND deps_remaining <> 0",
        dependents) == 0
    # and every one of them is dispatchable
    assert {c.id for c in await jobs.claim(deps, "w", ["q"], rounds)} == set(dependents)


async def test_no_race_between_the_last_two_dependencies_completing(deps: Deps) -> None:
    """Two dependencies of one job completing in concurrent transactions: exactly one of them
    releases it (a recount in each would see the other uncommitted and release none)."""
    rounds = 30
    pairs = []
    for _ in range(rounds):
        a1, a2 = await submit(deps, spec(), spec())
        [b] = await submit(deps, spec("b", depends_on=(a1, a2)))
        pairs.append((a1, a2, b))
    claimed = {c.id: c for c in await jobs.claim(deps, "w", ["q"], 2 * rounds)}
    for a1, a2, _ in pairs:
        await asyncio.gather(jobs.complete(deps, [Outcome(a1, claimed[a1].token, ok=True)]),
                             jobs.complete(deps, [Outcome(a2, claimed[a2].token, ok=True)]))
    bs = [b for _, _, b in pairs]
    assert await deps.pool.fetchval(
        "SELECT count(*) FROM jobs WHERE id = ANY($1::uuid[]) AND status = 'pending'",
        bs) == rounds
    assert {c.id for c in await jobs.claim(deps, "w", ["q"], 2 * rounds)} == set(bs)


async def test_no_race_between_a_dependency_failing_and_a_dependent_being_submitted(
        deps: Deps) -> None:
    rounds = 30
    firsts = await submit(deps, *[spec() for _ in range(rounds)])
    claimed = {c.id: c for c in await jobs.claim(deps, "w", ["q"], rounds)}
    subs = []
    for a in firsts:
        _, [sub] = await asyncio.gather(
            jobs.fail(deps, [Outcome(a, claimed[a].token, ok=False, error="x",
                                     error_type="x", final=True)], [1]),
            jobs.submit_many(deps, [spec("b", depends_on=(a,))]))
        subs.append(sub.submitted.id)
    assert await deps.pool.fetchval(
        "SELECT count(*) FROM jobs WHERE id = ANY($1::uuid[]) AND status = 'cancelled'"
        " AND error LIKE 'dependency % dead_letter'", subs) == rounds


async def test_graph_shows_ancestors_and_descendants(deps: Deps) -> None:
    a, x = await submit(deps, spec("a"), spec("x"))
    [b] = await submit(deps, spec("b", depends_on=(a, x)))
    [c] = await submit(deps, spec("c", depends_on=(b,)))
    [unrelated] = await submit(deps, spec("u", depends_on=(x,)))
    from jobline.shared.flow.dag import job_graph

    g = await job_graph(deps, b)
    assert g.nodes[0].id == b
    assert {n.id: n.job_type for n in g.nodes} == {a: "a", x: "x", b: "b", c: "c"}
    assert {n.id: n.status for n in g.nodes}[c] == Status.WAITING
    assert set(g.edges) == {(a, b), (x, b), (b, c)}
    assert unrelated not in {n.id for n in g.nodes} and not g.truncated
    small = await job_graph(deps, b, max_nodes=2)
    assert small.truncated and len(small.nodes) == 2 and small.nodes[0].id == b


async def test_waiting_job_detail_lists_its_dependencies(deps: Deps) -> None:
    a, x = await submit(deps, spec(), spec())
    [b] = await submit(deps, spec(depends_on=(x, a)))
    assert (await jobs.get_job(deps, b)).depends_on == sorted([a, x])


# --- with a real worker ---------------------------------------------------------------------


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[Deps]:
    d = await connect(settings.with_(lease_ms=10_000))
    yield d
    await d.close()


async def test_worker_never_runs_a_job_before_its_dependencies_completed(live: Deps) -> None:
    """Seed criterion "Job dependencies enforced (no premature execution)": a DAG of 60 jobs
    (layers with fan-in and fan-out) run by a real Worker with concurrency 16. Each handler
    checks in Postgres, as it starts, that every dependency of its job is completed."""
    reg = Registry()
    violations: list[str] = []
    order: list[str] = []

    @reg.job("step", queue="dag")
    async def step(payload: dict[str, Any]) -> None:
        name = payload["name"]
        bad = await live.pool.fetch(
            "SELECT p.id, p.status FROM job_dependencies d JOIN jobs p ON p.id = d.depends_on"
            " JOIN jobs j ON j.id = d.job_id WHERE j.payload->>'name' = $1"
            " AND p.status <> 'completed'", name)
        if bad:
            violations.append(f"{name} started before {[r['status'] for r in bad]}")
        order.append(name)
        await asyncio.sleep(0)  # let other runs interleave

    # 4 layers of 15; each job depends on 2 jobs of the previous layer (all in one bulk request)
    specs: list[JobSpec] = []
    for layer in range(4):
        for k in range(15):
            deps_idx: tuple[int, ...] = ()
            if layer:
                base = (layer - 1) * 15
                deps_idx = (base + k, base + (k + 7) % 15)
            specs.append(JobSpec(queue="dag", job_type="step", payload={"name": f"{layer}.{k}"},
                                 depends_on=deps_idx))
    # the last layer waits for an external job submitted separately, which runs first
    [gate] = await jobs.submit_many(live, [JobSpec(queue="dag", job_type="step",
                                                   payload={"name": "gate"})])
    specs.append(JobSpec(queue="dag", job_type="step", payload={"name": "tail"},
                         depends_on=(gate.submitted.id, *range(45, 60))))
    await jobs.submit_many(live, specs)
    assert await live.pool.fetchval(
        "SELECT count(*) FROM jobs WHERE status = 'waiting'") == 46
    await drain(live, reg, queues=["dag"], concurrency=16)
    assert violations == []
    assert len(order) == 62
    assert await live.pool.fetchval(
        "SELECT count(*) FROM jobs WHERE status <> 'completed'") == 0
    pos = {n: i for i, n in enumerate(order)}
    for layer in range(1, 4):
        for k in range(15):
            assert pos[f"{layer}.{k}"] > pos[f"{layer - 1}.{k}"]
    assert pos["tail"] == len(order) - 1


async def test_client_and_rest_submit_with_dependencies(live: Deps, http: Any) -> None:
    async with Client(live) as client:
        a = await client.submit("t", {}, queue="q")
        b = await client.submit("t", {}, queue="q", depends_on=[str(a.id)])
        assert b.status == Status.WAITING
        many = await client.submit_many([{"job_type": "t", "queue": "q"},
                                         {"job_type": "t", "queue": "q", "depends_on": [0, a.id]}])
        assert [m.status for m in many] == [Status.PENDING, Status.WAITING]
        with pytest.raises(ValidationFailed) as e:
            await client.submit("t", {}, depends_on=[uuid.uuid4()])
        assert e.value.field == "dependsOn[0]"
        g = await client.graph(a.id)
        assert {n.id for n in g.nodes} == {a.id, b.id, many[1].id}

    r = await http.post("/api/v1/jobs", json={"jobType": "t", "dependsOn": [str(a.id)]})
    assert r.status_code == 201 and r.json()["status"] == "waiting"
    assert r.json()["queuePosition"] is None
    child = r.json()["jobId"]
    detail = (await http.get(f"/api/v1/jobs/{child}")).json()
    assert detail["dependsOn"] == [str(a.id)] and detail["status"] == "waiting"

    ghost = str(uuid.uuid4())
    before = await live.pool.fetchval("SELECT count(*) FROM jobs")
    r = await http.post("/api/v1/jobs", json={"jobType": "t", "dependsOn": [str(a.id), ghost]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "dependsOn[1]"
    r = await http.post("/api/v1/jobs/bulk", json={"jobs": [
        {"jobType": "t"}, {"jobType": "t", "dependsOn": [0, ghost]}]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "jobs[1].dependsOn[1]"
    r = await http.post("/api/v1/jobs", json={"jobType": "t", "dependsOn": ["nope"]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "dependsOn[0]"
    # a single submission cannot use an index (group commit mixes callers' jobs)
    r = await http.post("/api/v1/jobs", json={"jobType": "t", "dependsOn": [0]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "dependsOn[0]"
    assert await live.pool.fetchval("SELECT count(*) FROM jobs") == before

    r = await http.post("/api/v1/jobs/bulk", json={"jobs": [
        {"jobType": "t"}, {"jobType": "t", "dependsOn": [0]}]})
    assert r.status_code == 201
    assert [j["status"] for j in r.json()["jobs"]] == ["pending", "waiting"]

    r = await http.get(f"/api/v1/jobs/{a.id}/graph")
    assert r.status_code == 200
    body = r.json()
    from jobline.api.batches import GraphOut

    GraphOut.model_validate(body)
    assert {"from": str(a.id), "to": child} in body["edges"]
    assert {n["id"]: n["status"] for n in body["nodes"]}[child] == "waiting"
    assert (await http.get(f"/api/v1/jobs/{uuid.uuid4()}/graph")).status_code == 404
