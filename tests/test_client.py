"""The in-process client against real PostgreSQL + Valkey."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

import jobline
from jobline.client import Client, SubmittedJob
from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec, Outcome, Status
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect
from jobline.shared.platform.errors import IllegalTransition, NotFound, ValidationFailed
from jobline.worker.registry import Registry, default_registry


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with Client.connect(settings) as c:
        yield c


async def count_jobs(deps: Deps) -> int:
    n = await deps.pool.fetchval("SELECT count(*) FROM jobs")
    assert isinstance(n, int)
    return n


async def test_exported_from_package() -> None:
    assert jobline.Client is Client


async def test_submit_get_list_cancel(client: Client) -> None:
    sub = await client.submit("send_email", {"to": "a@example.com"}, queue="email", priority=8)
    assert isinstance(sub, SubmittedJob)
    assert (sub.status, sub.queue, sub.queue_position, sub.duplicate) == (
        Status.PENDING, "email", 1, False)

    job = await client.get(sub.id)
    assert (job.id, job.queue, job.job_type, job.priority) == (sub.id, "email", "send_email", 8)
    assert job.payload == {"to": "a@example.com"}
    assert (await client.get(str(sub.id))).id == sub.id

    other = await client.submit("send_email", {"to": "b@example.com"}, queue="email")
    page = await client.list(queue="email")
    assert [j.id for j in page.jobs] == [other.id, sub.id] and page.total == 2
    assert (await client.list(status="completed")).jobs == []
    assert [j.id for j in (await client.list(queue="email", page_size=1)).jobs] == [other.id]

    assert await client.cancel(sub.id) is Status.CANCELLED
    assert (await client.get(sub.id)).status is Status.CANCELLED
    with pytest.raises(IllegalTransition):
        await client.cancel(sub.id)
    with pytest.raises(NotFound):
        await client.get(uuid.uuid4())


async def test_wait_returns_when_a_worker_completes_the_job(client: Client) -> None:
    sub = await client.submit("report", {"month": "2026-01"})
    waiter = asyncio.create_task(client.wait(sub.id, timeout=10))
    (claimed,) = await jobs.claim(client.deps, "worker-1", ["default"], 1)
    await jobs.complete(client.deps, [Outcome(id=claimed.id, token=claimed.token, ok=True,
                                              result={"rows": 3})])
    job = await waiter
    assert job.status is Status.COMPLETED and job.result == {"rows": 3}
    assert [a.outcome for a in job.attempts_history] == ["completed"]


async def test_wait_times_out_on_a_job_nobody_runs(client: Client) -> None:
    sub = await client.submit("never_run", {})
    with pytest.raises(TimeoutError):
        await client.wait(sub.id, timeout=0.05)


async def test_retry_after_failure(client: Client) -> None:
    sub = await client.submit("flaky", {})
    with pytest.raises(IllegalTransition):
        await client.retry(sub.id)
    (claimed,) = await jobs.claim(client.deps, "w", ["default"], 1)
    await jobs.fail(client.deps, [Outcome(id=claimed.id, token=claimed.token, ok=False,
                                          error="boom", final=True)], [1])
    assert (await client.wait(sub.id)).status is Status.DEAD_LETTER
    assert await client.retry(sub.id) is Status.PENDING
    assert (await client.get(sub.id)).status is Status.PENDING


async def test_delays_and_schedules(client: Client) -> None:
    delayed = await client.submit("t", {}, delay=60)
    assert (delayed.status, delayed.queue_position) == (Status.SCHEDULED, None)
    td = await client.submit("t", {}, delay=timedelta(minutes=5))
    job = await client.get(td.id)
    assert job.scheduled_for_ms - job.created_ms == 300_000
    when = datetime.now(UTC) + timedelta(hours=2)
    at = await client.submit("t", {}, scheduled_for=when)
    assert at.status is Status.SCHEDULED
    assert abs((await client.get(at.id)).scheduled_for_ms - int(when.timestamp() * 1000)) <= 1
    with pytest.raises(ValidationFailed) as e:
        await client.submit("t", {}, delay=1, scheduled_for=when)
    assert e.value.field == "delay"


async def test_defaults_come_from_the_registered_handler(settings: Settings) -> None:
    reg = Registry()

    @reg.job("mail.send", queue="email", max_attempts=7, timeout="30s")
    def send(payload: dict[str, object]) -> None: ...

    deps = await connect(settings)
    async with Client(deps, owns_deps=True, registry=reg) as c:
        sub = await c.submit("mail.send", {"to": "x"})
        job = await c.get(sub.id)
        assert (job.queue, job.max_attempts, job.timeout_ms) == ("email", 7, 30_000)
        # Explicit arguments win over the handler's defaults.
        sub = await c.submit("mail.send", {}, queue="bulk", max_attempts=2, timeout=1.5)
        job = await c.get(sub.id)
        assert (job.queue, job.max_attempts, job.timeout_ms) == ("bulk", 2, 1500)
        # Unknown job types land on "default" with the settings' attempts.
        job = await c.get((await c.submit("unknown.type", {})).id)
        assert (job.queue, job.max_attempts, job.timeout_ms) == (
            "default", settings.default_max_attempts, None)


async def test_default_registry_is_used_by_default(client: Client) -> None:
    name = f"test_client.handler_{uuid.uuid4().hex[:8]}"

    @default_registry.job(name, queue="reports")
    def handler(payload: dict[str, object]) -> None: ...

    assert (await client.submit(name, {})).queue == "reports"


async def test_submit_many_all_or_nothing(client: Client) -> None:
    spec = JobSpec(queue="images", job_type="resize", payload={"w": 10})
    out = await client.submit_many([
        spec, {"job_type": "resize", "payload": {"w": 20}, "queue": "images", "priority": 9},
        {"job_type": "resize", "delay": 30, "queue": "images"}])
    assert [s.status for s in out] == [Status.PENDING, Status.PENDING, Status.SCHEDULED]
    assert out[1].queue_position == 1  # priority 9 goes first
    assert await count_jobs(client.deps) == 3

    with pytest.raises(ValidationFailed) as e:
        await client.submit_many([spec, {"job_type": "resize", "priority": 11}])
    assert e.value.field == "jobs[1].priority"
    with pytest.raises(ValidationFailed) as e:
        await client.submit_many([spec, {"payload": {}}])
    assert e.value.field == "jobs[1].jobType"
    with pytest.raises(ValidationFailed) as e:
        await client.submit_many([{"job_type": "t", "colour": "red"}])
    assert e.value.field == "jobs[0].colour"
    assert await count_jobs(client.deps) == 3


async def test_invalid_submit_raises_and_stores_nothing(client: Client) -> None:
    with pytest.raises(ValidationFailed) as e:
        await client.submit("t", {}, priority=42)
    assert e.value.field == "priority"
    with pytest.raises(ValidationFailed) as e:
        await client.submit("t", {}, queue="has space")
    assert e.value.field == "queue"
    assert await count_jobs(client.deps) == 0


async def test_concurrent_submits_with_same_key_make_one_job(settings: Settings) -> None:
    # Two clients: two committers, two transactions racing on the key's unique index.
    async with Client.connect(settings) as a, Client.connect(settings) as b:
        x, y = await asyncio.gather(a.submit("charge", {"n": 1}, idempotency_key="pay-1"),
                                    b.submit("charge", {"n": 1}, idempotency_key="pay-1"))
        assert x.id == y.id
        assert sorted([x.duplicate, y.duplicate]) == [False, True]
        # And within one client (one batch).
        p, q = await asyncio.gather(a.submit("charge", {}, idempotency_key="pay-2"),
                                    a.submit("charge", {}, idempotency_key="pay-2"))
        assert p.id == q.id
        assert await count_jobs(a.deps) == 2


async def test_many_concurrent_submits_share_flushes(client: Client) -> None:
    subs = await asyncio.gather(*(client.submit("t", {"i": i}) for i in range(100)))
    assert len({s.id for s in subs}) == 100
    assert await count_jobs(client.deps) == 100
    assert client.committer.flushes < 100


async def test_queues_and_await_connect(settings: Settings) -> None:
    c = await Client.connect(settings)
    try:
        await c.submit("t", {}, queue="email")
        stats = {q["name"]: q for q in await c.queues()}
        assert stats["email"]["pending"] == 1
    finally:
        await c.close()
        await c.close()  # idempotent
