"""Job batches: counts, status, and the onComplete job submitted exactly once when every job of
the batch has finished, also under concurrent completions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from jobline.api.batches import BatchCreatedOut, BatchOut
from jobline.client import Client
from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec, Outcome, Status
from jobline.shared.flow import batches
from jobline.shared.platform.clock import FakeClock
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect
from jobline.shared.platform.errors import NotFound, ValidationFailed
from jobline.testing import drain, wait_until
from jobline.worker.registry import Registry


@pytest.fixture
async def clock() -> FakeClock:
    return FakeClock()


def spec(job_type: str = "t", **kw: Any) -> JobSpec:
    return JobSpec(queue=kw.pop("queue", "q"), job_type=job_type, payload=kw.pop("payload", {}),
                   **kw)


async def claim_all(deps: Deps, queue: str = "q") -> dict[uuid.UUID, Any]:
    return {c.id: c for c in await jobs.claim(deps, "w", [queue], 1000)}


async def counts(deps: Deps, batch_id: uuid.UUID) -> tuple[int, int, int, int, str]:
    b = await batches.get_batch(deps, batch_id)
    return b.completed, b.failed, b.pending, b.processing, b.status


async def test_batch_counts_follow_its_jobs_and_on_complete_runs_after_the_last(
        deps: Deps, clock: FakeClock) -> None:
    created = await batches.create_batch(
        deps, "monthly", [spec(payload={"n": i}) for i in range(5)],
        on_complete=spec("report", queue="after"))
    assert created.total == 5 and len(created.jobs) == 5
    done_id = created.on_complete_job_id
    assert done_id is not None
    assert (await jobs.get_job(deps, done_id)).status == Status.WAITING
    assert await counts(deps, created.id) == (0, 0, 5, 0, "running")
    b = await batches.get_batch(deps, created.id)
    assert (b.name, b.total, b.created_ms, b.completed_ms) == ("monthly", 5, clock.now_ms(), None)

    claimed = await claim_all(deps)
    assert len(claimed) == 5
    assert await counts(deps, created.id) == (0, 0, 0, 5, "running")
    ids = list(claimed)
    await jobs.complete(deps, [Outcome(i, claimed[i].token, ok=True) for i in ids[:3]])
    await jobs.fail(deps, [Outcome(ids[3], claimed[ids[3]].token, ok=False, error="x",
                                   error_type="x", final=True)], [1])
    assert await counts(deps, created.id) == (3, 1, 0, 1, "running")
    assert (await jobs.get_job(deps, done_id)).status == Status.WAITING
    assert await jobs.claim(deps, "w", ["after"], 10) == []
    clock.advance(1000)
    await jobs.complete(deps, [Outcome(ids[4], claimed[ids[4]].token, ok=True)])
    assert await counts(deps, created.id) == (4, 1, 0, 0, "completed_with_failures")
    b = await batches.get_batch(deps, created.id)
    assert b.completed_ms == clock.now_ms()
    assert (await jobs.get_job(deps, done_id)).status == Status.PENDING
    assert [c.id for c in await jobs.claim(deps, "w", ["after"], 10)] == [done_id]


async def test_all_succeeded_is_completed_and_cancelled_jobs_count_as_failed(
        deps: Deps) -> None:
    ok = await batches.create_batch(deps, "ok", [spec(), spec()])
    claimed = await claim_all(deps)
    await jobs.complete(deps, [Outcome(i, c.token, ok=True) for i, c in claimed.items()])
    assert await counts(deps, ok.id) == (2, 0, 0, 0, "completed")
    assert ok.on_complete_job_id is None

    mixed = await batches.create_batch(deps, "mixed", [spec(), spec(scheduled_for_ms=10**13)],
                                       on_complete=spec("done"))
    first, later = (r.submitted.id for r in mixed.jobs)
    assert await jobs.cancel(deps, later) == Status.CANCELLED
    assert await counts(deps, mixed.id) == (0, 1, 1, 0, "running")
    await jobs.cancel(deps, first)
    assert await counts(deps, mixed.id) == (0, 2, 0, 0, "completed_with_failures")
    assert mixed.on_complete_job_id is not None
    assert (await jobs.get_job(deps, mixed.on_complete_job_id)).status == Status.PENDING


async def test_dlq_retry_reopens_the_batch_but_on_complete_stays_single(deps: Deps) -> None:
    created = await batches.create_batch(deps, "b", [spec(), spec()], on_complete=spec("done"))
    claimed = await claim_all(deps)
    a, b = claimed
    await jobs.fail(deps, [Outcome(a, claimed[a].token, ok=False, error="x", error_type="x",
                                   final=True)], [1])
    await jobs.retry_now(deps, a)  # a leaves its terminal state: the batch is open again
    assert await counts(deps, created.id) == (0, 0, 1, 1, "running")
    # b finishing while a runs again must not fire onComplete (a is not terminal any more)
    await jobs.complete(deps, [Outcome(b, claimed[b].token, ok=True)])
    assert created.on_complete_job_id is not None
    assert (await jobs.get_job(deps, created.on_complete_job_id)).status == Status.WAITING
    [again] = await jobs.claim(deps, "w", ["q"], 10)
    await jobs.complete(deps, [Outcome(a, again.token, ok=True)])
    assert await counts(deps, created.id) == (2, 0, 0, 0, "completed")
    assert (await jobs.get_job(deps, created.on_complete_job_id)).status == Status.PENDING
    assert await deps.pool.fetchval("SELECT count(*) FROM jobs WHERE job_type = 'done'") == 1


async def test_batch_jobs_can_depend_on_each_other_and_a_doomed_batch_finishes_at_once(
        deps: Deps) -> None:
    created = await batches.create_batch(
        deps, "chain", [spec("a"), spec("b", depends_on=(0,))], on_complete=spec("done"))
    a, b = (r.submitted.id for r in created.jobs)
    assert [r.submitted.status for r in created.jobs] == [Status.PENDING, Status.WAITING]
    [c] = await jobs.claim(deps, "w", ["q"], 10)
    assert c.id == a
    await jobs.fail(deps, [Outcome(a, c.token, ok=False, error="x", error_type="x",
                                   final=True)], [1])
    # b was cancelled by the cascade, in the same transaction: the batch is finished
    assert (await jobs.get_job(deps, b)).error == f"dependency {a} dead_letter"
    assert await counts(deps, created.id) == (0, 2, 0, 0, "completed_with_failures")
    assert created.on_complete_job_id is not None
    assert (await jobs.get_job(deps, created.on_complete_job_id)).status == Status.PENDING

    # every job born cancelled (its dependency already failed): onComplete released at once
    doomed = await batches.create_batch(deps, "doomed", [spec(depends_on=(a,))],
                                        on_complete=spec("done2", queue="after"))
    assert doomed.jobs[0].submitted.status == Status.CANCELLED
    assert doomed.on_complete_job_id is not None
    assert (await jobs.get_job(deps, doomed.on_complete_job_id)).status == Status.PENDING
    assert [x.id for x in await jobs.claim(deps, "w", ["after"], 10)] == [
        doomed.on_complete_job_id]


async def test_on_complete_runs_exactly_once_under_concurrent_completions(
        settings: Settings) -> None:
    """200 jobs completed by 20 concurrent completers (one transaction each, many committing
    at the same moment), repeated over 5 batches: each onComplete job is released exactly once
    and only after the last job of its batch."""
    deps = await connect(settings.with_(pg_pool_size=24), FakeClock())
    try:
        made = [await batches.create_batch(deps, f"b{k}", [spec() for _ in range(40)],
                                           on_complete=spec("done", queue="after",
                                                            payload={"batch": k}))
                for k in range(5)]
        claimed = list((await claim_all(deps)).values())
        assert len(claimed) == 200
        # interleave batches so every completer touches several batches per transaction
        chunks = [claimed[i::20] for i in range(20)]

        async def completer(chunk: list[Any]) -> None:
            for part in (chunk[:5], chunk[5:]):
                await jobs.complete(deps, [Outcome(c.id, c.token, ok=True) for c in part])

        await asyncio.gather(*(completer(c) for c in chunks))
        for m in made:
            assert await counts(deps, m.id) == (40, 0, 0, 0, "completed")
        assert await deps.pool.fetchval(
            "SELECT count(*) FROM jobs WHERE job_type = 'done' AND status = 'pending'") == 5
        assert sorted(c.payload["batch"] for c in await jobs.claim(deps, "w", ["after"], 10)
                      ) == [0, 1, 2, 3, 4]
        # exactly one released per batch: nothing else left in Redis for "after"
        assert await jobs.claim(deps, "w", ["after"], 10) == []
    finally:
        await deps.close()


async def test_rejected_batches_store_nothing(deps: Deps) -> None:
    [existing] = await jobs.submit_many(deps, [spec()])
    bad: list[tuple[dict[str, Any], str]] = [
        ({"name": "", "specs": [spec()]}, "name"),
        ({"name": "x", "specs": []}, "jobs"),
        ({"name": "x", "specs": [spec(), spec(idempotency_key="k")]}, "jobs[1].idempotencyKey"),
        ({"name": "x", "specs": [spec(), spec(depends_on=(uuid.uuid4(),))]},
         "jobs[1].dependsOn[0]"),
        ({"name": "x", "specs": [spec()], "on_complete": spec(depends_on=(
            existing.submitted.id,))}, "onComplete.dependsOn"),
        ({"name": "x", "specs": [spec()], "on_complete": spec(priority=11)},
         "onComplete.priority"),
    ]
    for kw, field in bad:
        with pytest.raises(ValidationFailed) as e:
            await batches.create_batch(deps, kw["name"], kw["specs"], kw.get("on_complete"))
        assert e.value.field == field
    assert await deps.pool.fetchval("SELECT count(*) FROM jobs") == 1
    assert await deps.pool.fetchval("SELECT count(*) FROM job_batches") == 0
    with pytest.raises(NotFound):
        await batches.get_batch(deps, uuid.uuid4())


# --- REST, client and a real worker ------------------------------------------------------------


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[Deps]:
    d = await connect(settings.with_(lease_ms=10_000))
    yield d
    await d.close()


async def test_rest_batch_round_trip_with_a_worker(live: Deps, http: Any) -> None:
    reg = Registry()
    ran: list[str] = []

    @reg.job("piece", queue="reports")
    async def piece(payload: dict[str, Any]) -> None:
        if payload.get("fail"):
            from jobline import Unrecoverable

            raise Unrecoverable("bad input")
        ran.append(f"piece{payload['n']}")

    @reg.job("summary", queue="reports")
    async def summary(payload: dict[str, Any]) -> None:
        ran.append("summary")

    body = {"name": "Monthly Report Generation",
            "jobs": [{"queue": "reports", "jobType": "piece", "payload": {"n": i,
                                                                          "fail": i == 7}}
                     for i in range(100)],
            "onComplete": {"queue": "reports", "jobType": "summary"}}
    r = await http.post("/api/v1/job-batches", json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    BatchCreatedOut.model_validate(out)
    assert out["total"] == 100 and len(out["jobs"]) == 100
    batch_id = out["id"]
    got = (await http.get(f"/api/v1/job-batches/{batch_id}")).json()
    BatchOut.model_validate(got)
    assert {k: got[k] for k in ("total", "completed", "failed", "pending", "processing",
                                "status")} == {"total": 100, "completed": 0, "failed": 0,
                                               "pending": 100, "processing": 0,
                                               "status": "running"}
    assert got["completedAt"] is None and got["onCompleteJobId"] == out["onCompleteJobId"]
    await drain(live, reg, queues=["reports"], concurrency=10)
    got = (await http.get(f"/api/v1/job-batches/{batch_id}")).json()
    assert {k: got[k] for k in ("completed", "failed", "pending", "processing", "status")} == {
        "completed": 99, "failed": 1, "pending": 0, "processing": 0,
        "status": "completed_with_failures"}
    assert got["completedAt"] is not None
    assert ran.count("summary") == 1 and ran[-1] == "summary" and len(ran) == 100

    r = await http.post("/api/v1/job-batches", json={"name": "x", "jobs": []})
    assert r.status_code == 422 and r.json()["error"]["field"] == "jobs"
    r = await http.post("/api/v1/job-batches", json={"name": "x", "jobs": [
        {"jobType": "t"}, {"jobType": "t", "dependsOn": [str(uuid.uuid4())]}]})
    assert r.status_code == 422 and r.json()["error"]["field"] == "jobs[1].dependsOn[0]"
    r = await http.post("/api/v1/job-batches", json={"name": "x", "jobs": [{"jobType": "t"}],
                                                     "onComplete": {"jobType": "1bad"}})
    assert r.status_code == 422 and r.json()["error"]["field"] == "onComplete.jobType"
    assert (await http.get(f"/api/v1/job-batches/{uuid.uuid4()}")).status_code == 404
    assert await live.pool.fetchval("SELECT count(*) FROM job_batches") == 1


async def test_client_batch_methods(live: Deps) -> None:
    async with Client(live) as client:
        made = await client.submit_batch(
            "nightly", [{"job_type": "t", "queue": "c"},
                        {"job_type": "t", "queue": "c", "depends_on": [0]}],
            on_complete={"job_type": "t", "queue": "c", "payload": {"final": True}})
        assert [j.submitted.status for j in made.jobs] == [Status.PENDING, Status.WAITING]
        b = await client.batch(made.id)
        assert (b.total, b.pending, b.status) == (2, 2, "running")
        with pytest.raises(ValidationFailed) as e:
            await client.submit_batch("x", [{"job_type": "t", "priority": 99}])
        assert e.value.field == "jobs[0].priority"
        reg = Registry()

        @reg.job("t", queue="c")
        async def t(payload: dict[str, Any]) -> None:
            return None

        await drain(live, reg, queues=["c"])

        async def finished() -> bool:
            return (await client.batch(made.id)).status == "completed"

        await wait_until(finished)
        assert made.on_complete_job_id is not None
        assert (await client.get(made.on_complete_job_id)).status == Status.COMPLETED
