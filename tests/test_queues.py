"""Queue controls against real PostgreSQL + Valkey: pause/resume, the global in-flight cap, their
REST endpoints and client methods, and exact priority order after a resume."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from jobline.api import schemas
from jobline.client import Client
from jobline.shared.core import jobs, maintenance
from jobline.shared.core.models import JobSpec, Outcome
from jobline.shared.dispatch import queue_controls as queues
from jobline.shared.dispatch.redis_dispatch import QueueControls
from jobline.shared.platform.clock import FakeClock
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect
from jobline.shared.platform.errors import ValidationFailed
from jobline.testing import wait_until
from jobline.worker.registry import Registry
from jobline.worker.runtime import Worker


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    return settings.with_(lease_ms=10_000)


@pytest.fixture
async def fdeps(settings: Settings) -> AsyncIterator[Deps]:
    """Deps on a FakeClock, for the core-level tests."""
    d = await connect(settings.with_(lease_ms=10_000), FakeClock())
    yield d
    await d.close()


def spec(queue: str = "q", job_type: str = "t", **kw: Any) -> JobSpec:
    return JobSpec(queue=queue, job_type=job_type, payload=kw.pop("payload", {}), **kw)


async def test_pause_stops_claims_without_touching_running_jobs(fdeps: Deps) -> None:
    deps = fdeps
    subs = await jobs.submit_many(deps, [spec() for _ in range(3)])
    [running] = await jobs.claim(deps, "w", ["q"], 1)
    c = await queues.pause_queue(deps, "q")
    assert (c.paused, c.max_in_flight) == (True, None)
    assert (await deps.dispatch.queue_meta("q"))["paused"] == "1"
    assert await jobs.claim(deps, "w", ["q"], 10) == []
    # the running job keeps its lease: heartbeats and its completion are accepted
    assert await jobs.extend_leases(deps, [("q", running.id, running.token)]) == []
    rep = await jobs.complete(deps, [Outcome(running.id, running.token, ok=True)])
    assert rep.accepted == [running.id]
    assert await queues.pause_queue(deps, "q") == QueueControls("q", True, None, c.version + 1)
    await queues.resume_queue(deps, "q")
    assert "paused" not in await deps.dispatch.queue_meta("q")
    got = await jobs.claim(deps, "w", ["q"], 10)
    assert [g.id for g in got] == [s.submitted.id for s in subs[1:]]


async def test_resume_pushes_the_wake_list(fdeps: Deps) -> None:
    deps = fdeps
    await queues.pause_queue(deps, "q")
    await jobs.submit(deps, spec())
    k = deps.dispatch.keys("q")
    await deps.redis.delete(k.wake, k.group.wake_all)
    await queues.resume_queue(deps, "q")
    assert await deps.redis.llen(k.wake) == 1  # type: ignore[misc]
    assert await deps.redis.llen(k.group.wake_all) == 1  # type: ignore[misc]
    # nothing to wake for: an empty queue's resume pushes nothing
    await queues.pause_queue(deps, "empty")
    await queues.resume_queue(deps, "empty")
    assert await deps.redis.llen(deps.dispatch.keys("empty").wake) == 0  # type: ignore[misc]


async def test_resume_wakes_an_idle_worker_at_once(deps: Deps,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    reg = Registry()
    ran = asyncio.Event()

    @reg.job("t", queue="q")
    async def t(payload: dict[str, Any]) -> None:
        ran.set()

    await queues.pause_queue(deps, "q")
    await jobs.submit(deps, spec())
    worker = Worker(deps, reg, queues=["q"], concurrency=2)
    # An idle worker blocks up to 5 s between claims; here it blocks for an hour, so the job
    # can only start before the deadline below if the resume's wake-up reaches the worker.
    wait_and_claim = worker.backend.wait_and_claim

    async def long_wait(worker_id: str, wait_on: Any, timeout_s: float, *rest: Any) -> Any:
        return await wait_and_claim(worker_id, wait_on, 3600.0, *rest)

    monkeypatch.setattr(worker.backend, "wait_and_claim", long_wait)
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(worker.started.wait(), 30)
        await wait_until(lambda: _stat(worker.stats.claimed == 0), message="worker idle")
        assert not ran.is_set()
        await queues.resume_queue(deps, "q")
        await asyncio.wait_for(ran.wait(), 60)
    finally:
        worker.request_stop()
        await task


async def _stat(value: bool) -> bool:
    return value


async def test_cap_holds_across_two_workers(deps: Deps) -> None:
    reg = Registry()
    now = peak = done = 0
    full = asyncio.Event()

    @reg.job("t", queue="q")
    async def t(payload: dict[str, Any]) -> None:
        nonlocal now, peak, done
        now += 1
        peak = max(peak, now)
        if now == 3:
            full.set()  # the cap is reached: from here on runs may finish
        await full.wait()  # hold each run until three overlap, so the cap is really tested
        now -= 1
        done += 1

    await queues.set_queue_limits(deps, "q", max_in_flight=3)
    await jobs.submit_many(deps, [spec() for _ in range(60)])
    workers = [Worker(deps, reg, queues=["q"], concurrency=5) for _ in range(2)]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        await wait_until(lambda: _stat(done == 60), timeout=30, message="60 jobs done")
    finally:
        for w in workers:
            w.request_stop()
        await asyncio.gather(*tasks)
    assert peak == 3
    assert all(w.stats.claimed > 0 for w in workers), "both workers took part"


async def test_cap_is_enforced_inside_the_claim(fdeps: Deps) -> None:
    deps = fdeps
    await jobs.submit_many(deps, [spec() for _ in range(10)])
    await queues.set_queue_limits(deps, "q", max_in_flight=2)
    assert len(await jobs.claim(deps, "a", ["q"], 10)) == 2
    assert await jobs.claim(deps, "b", ["q"], 10) == []
    c = await queues.set_queue_limits(deps, "q", max_in_flight=5)
    assert (c.paused, c.max_in_flight) == (False, 5)
    assert len(await jobs.claim(deps, "b", ["q"], 10)) == 3
    await queues.set_queue_limits(deps, "q", max_in_flight=None)
    assert "maxInFlight" not in await deps.dispatch.queue_meta("q")
    assert len(await jobs.claim(deps, "b", ["q"], 10)) == 5


async def test_reconcile_restores_controls_after_redis_loses_them(fdeps: Deps) -> None:
    deps = fdeps
    await jobs.submit_many(deps, [spec("a"), spec("b"), spec("b")])
    await queues.pause_queue(deps, "a")
    await queues.set_queue_limits(deps, "b", max_in_flight=1)
    await deps.redis.flushall()
    await maintenance.reconcile(deps)
    assert (await deps.dispatch.queue_meta("a"))["paused"] == "1"
    assert (await deps.dispatch.queue_meta("b"))["maxInFlight"] == "1"
    assert await jobs.claim(deps, "w", ["a"], 10) == []
    assert len(await jobs.claim(deps, "w", ["b"], 10)) == 1


async def test_an_older_mirror_never_overwrites_a_newer_one(fdeps: Deps) -> None:
    deps = fdeps
    await queues.pause_queue(deps, "q")
    newer = await queues.resume_queue(deps, "q")
    # the pause's Redis write arriving late (a slow API process) is ignored
    assert await deps.dispatch.set_queue_meta([QueueControls("q", True, None, 1)]) == 0
    assert "paused" not in await deps.dispatch.queue_meta("q")
    assert (await deps.dispatch.queue_meta("q"))["ver"] == str(newer.version)


async def test_bad_names_and_caps_are_refused(fdeps: Deps) -> None:
    with pytest.raises(ValidationFailed) as e:
        await queues.pause_queue(fdeps, "bad name")
    assert e.value.field == "name"
    for bad in (-1, 1.5, True, "3", 10**7):
        with pytest.raises(ValidationFailed) as e:
            await queues.set_queue_limits(fdeps, "q", max_in_flight=bad)  # type: ignore[arg-type]
        assert e.value.field == "maxInFlight"
    assert await fdeps.pool.fetchval("SELECT count(*) FROM queues") == 0


# --- REST and client ---------------------------------------------------------------------------


async def test_rest_pause_resume_concurrency_and_listing(http: httpx.AsyncClient,
                                                         deps: Deps) -> None:
    resp = await http.post("/api/v1/queues/email/pause")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"name": "email", "paused": True, "maxInFlight": None}
    schemas.QueueControlsOut.model_validate(resp.json())
    resp = await http.put("/api/v1/queues/email/concurrency", json={"maxInFlight": 4})
    assert resp.json() == {"name": "email", "paused": True, "maxInFlight": 4}
    body = (await http.get("/api/v1/queues")).json()
    schemas.QueuesOut.model_validate(body)
    [q] = body["queues"]
    assert (q["name"], q["paused"], q["maxInFlight"]) == ("email", True, 4)
    resp = await http.post("/api/v1/queues/email/resume")
    assert resp.json() == {"name": "email", "paused": False, "maxInFlight": 4}
    resp = await http.put("/api/v1/queues/email/concurrency", json={"maxInFlight": None})
    assert resp.json() == {"name": "email", "paused": False, "maxInFlight": None}


@pytest.mark.parametrize(("path", "method", "body", "status", "field"), [
    ("/api/v1/queues/bad%20name/pause", "POST", None, 422, "name"),
    ("/api/v1/queues/q/concurrency", "PUT", {"maxInFlight": -1}, 422, "maxInFlight"),
    ("/api/v1/queues/q/concurrency", "PUT", {"maxInFlight": "3"}, 422, "maxInFlight"),
    ("/api/v1/queues/q/concurrency", "PUT", {}, 422, "maxInFlight"),
    ("/api/v1/queues/q/concurrency", "PUT", {"maxInFlight": 1, "x": 1}, 422, "x"),
    ("/api/v1/queues/q/concurrency", "PUT", None, 400, None),
])
async def test_rest_bad_input_is_4xx_naming_the_field(
        http: httpx.AsyncClient, deps: Deps, path: str, method: str, body: Any, status: int,
        field: str | None) -> None:
    resp = await http.request(method, path, json=body)
    assert resp.status_code == status, resp.text
    assert resp.json()["error"].get("field") == field
    assert await deps.pool.fetchval("SELECT count(*) FROM queues") == 0


async def test_client_queue_controls(settings: Settings) -> None:
    async with Client.connect(settings) as client:
        assert (await client.pause_queue("q")).paused
        assert (await client.set_queue_limits("q", max_in_flight=2)).max_in_flight == 2
        assert not (await client.resume_queue("q")).paused
        [q] = await client.queues()
        assert (q["paused"], q["maxInFlight"]) == (False, 2)


# --- exact priority order ----------------------------------------------------------------------


async def test_10k_random_priorities_start_in_exact_order_after_resume(deps: Deps) -> None:
    """Seed criterion: a paused backlog of 10,000 jobs with random priorities is started by one
    worker in exact (priority desc, submit order) order once the queue resumes."""
    n = 10_000
    rng = random.Random(42)
    prios = [rng.randint(0, 10) for _ in range(n)]
    started: list[int] = []
    reg = Registry()

    @reg.job("t", queue="q")
    async def t(payload: dict[str, Any]) -> None:
        started.append(payload["i"])  # first statement: records the start order

    await queues.pause_queue(deps, "q")
    ids: list[uuid.UUID] = []
    for lo in range(0, n, 1000):  # several submissions, in order: "submit order" spans them
        subs = await jobs.submit_many(deps, [spec(payload={"i": i}, priority=prios[i])
                                             for i in range(lo, lo + 1000)])
        ids += [s.submitted.id for s in subs]
    worker = Worker(deps, reg, queues=["q"], concurrency=50)
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(worker.started.wait(), 10)
        assert started == []
        await queues.resume_queue(deps, "q")
        await wait_until(lambda: _stat(len(started) == n), timeout=60, message="all started")
    finally:
        worker.request_stop()
        await task
    assert started == sorted(range(n), key=lambda i: (-prios[i], i))
