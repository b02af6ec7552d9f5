"""The job-type registry (docs/job-types.md): workers publish their handlers' settings, every
submit path that omits them gets the registered values (resolved in SQL), explicit fields win, a
worker hands back a job it has no handler for without spending an attempt, and a type no live
worker serves is visible (REST, GraphQL, Prometheus)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from jobline.client import Client
from jobline.shared.core import job_types, jobs
from jobline.shared.core.jobs import COPY_MIN_JOBS
from jobline.shared.core.models import Status
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps
from jobline.testing import wait_until
from jobline.worker.registry import Registry
from jobline.worker.runtime import Worker

AVATAR_BACKOFF = {"baseMs": 1234, "factor": 3.0}


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    return settings.with_(lease_ms=5_000)


def avatar_registry(queue: str = "avatars") -> Registry:
    reg = Registry()

    @reg.job("resize_avatar", queue=queue, max_attempts=5, timeout="30s",
             backoff=AVATAR_BACKOFF, non_retryable=["bad_image"])
    async def resize(payload: dict[str, Any]) -> dict[str, Any]:
        return {"resized": payload.get("userId")}

    return reg


async def publish_avatar(deps: Deps) -> None:
    await job_types.publish(deps, Worker(deps, avatar_registry()).job_type_defaults())


async def row(deps: Deps, job_id: uuid.UUID | str) -> dict[str, Any]:
    r = await deps.pool.fetchrow(
        "SELECT queue_name, max_attempts, timeout_ms, backoff::text AS backoff FROM jobs "
        "WHERE id = $1", uuid.UUID(str(job_id)))
    assert r is not None
    return dict(r)


REGISTERED = {"queue_name": "avatars", "max_attempts": 5, "timeout_ms": 30_000,
              "backoff": '{"baseMs": 1234, "factor": 3.0}'}


async def test_registered_defaults_apply_on_rest_graphql_client_bulk_and_copy(
        deps: Deps, http: httpx.AsyncClient) -> None:
    await publish_avatar(deps)
    # REST, one job
    r = await http.post("/api/v1/jobs", json={"jobType": "resize_avatar", "payload": {"u": 1}})
    assert r.status_code == 201, r.text
    assert await row(deps, r.json()["jobId"]) == REGISTERED
    # REST bulk, small (INSERT) and large (binary COPY)
    for n in (3, COPY_MIN_JOBS):
        r = await http.post("/api/v1/jobs/bulk", json={"jobs": [
            {"jobType": "resize_avatar", "payload": {"i": i}} for i in range(n)]})
        assert r.status_code == 201, r.text
        ids = [j["jobId"] for j in r.json()["jobs"]]
        assert [await row(deps, ids[0]), await row(deps, ids[-1])] == [REGISTERED] * 2
    # GraphQL
    r = await http.post("/graphql", json={"query": """mutation {
        submit(input: {jobType: "resize_avatar"}) { id queue } }"""})
    sub = r.json()["data"]["submit"]
    assert sub["queue"] == "avatars" and await row(deps, sub["id"]) == REGISTERED
    # The Python client, in a process that has no handler for the type, and in one whose own
    # handler says otherwise: the registry (what the workers run) wins over the local handler.
    local = Registry()

    @local.job("resize_avatar", queue="local", max_attempts=2, timeout="1s")
    def stale(payload: dict[str, Any]) -> None: ...

    for reg in (Registry(), local):
        client = Client(deps, registry=reg)
        try:
            s = await client.submit("resize_avatar", {"u": 2})
        finally:
            await client.close()
        assert s.queue == "avatars" and await row(deps, s.id) == REGISTERED
    # Dispatched to the registered queue: a worker of queue "avatars" claims it.
    claimed = await jobs.claim(deps, "w", ["avatars"], 1)
    assert len(claimed) == 1 and claimed[0].job_type == "resize_avatar"
    assert claimed[0].timeout_ms == 30_000


async def test_explicit_fields_and_the_stored_policy_outrank_the_registry(
        deps: Deps, http: httpx.AsyncClient) -> None:
    await publish_avatar(deps)
    r = await http.post("/api/v1/jobs", json={
        "jobType": "resize_avatar", "queue": "manual", "maxAttempts": 2, "timeoutMs": 50,
        "backoff": {"baseMs": 7}})
    assert await row(deps, r.json()["jobId"]) == {
        "queue_name": "manual", "max_attempts": 2, "timeout_ms": 50,
        "backoff": '{"baseMs": 7, "factor": 3.0}'}  # merged key by key over the registry's
    # a stored retry policy ranks above the registry (and a queue named "default" is explicit)
    r = await http.put("/api/v1/retry-policies/resize_avatar", json={"maxAttempts": 9})
    assert r.status_code == 200, r.text
    r = await http.post("/api/v1/jobs", json={"jobType": "resize_avatar", "queue": "default"})
    got = await row(deps, r.json()["jobId"])
    assert (got["queue_name"], got["max_attempts"]) == ("default", 9)
    # an unregistered type keeps the old defaults
    r = await http.post("/api/v1/jobs", json={"jobType": "nobody_registered"})
    got = await row(deps, r.json()["jobId"])
    assert got == {"queue_name": "default", "max_attempts": deps.settings.default_max_attempts,
                   "timeout_ms": None, "backoff": None}


async def test_registered_non_retryable_dead_letters_at_once(deps: Deps) -> None:
    await publish_avatar(deps)
    client = Client(deps, registry=Registry())
    try:
        s = await client.submit("resize_avatar")
    finally:
        await client.close()
    [job] = await jobs.claim(deps, "w", ["avatars"], 1)
    from jobline.shared.core.models import Outcome
    rep = await jobs.fail(deps, [Outcome(job.id, job.token, ok=False, error="x",
                                         error_type="bad_image")], [job.attempt])
    assert rep.statuses[s.id] == Status.DEAD_LETTER


async def test_a_worker_hands_back_a_job_it_has_no_handler_for_without_spending_attempts(
        deps: Deps, http: httpx.AsyncClient) -> None:
    """The README tour's trap: a worker serving every queue, without the new handler, must not
    burn the job's attempts (max_attempts=1 here: the first claim used to dead-letter it)."""
    await publish_avatar(deps)
    r = await http.post("/api/v1/jobs", json={"jobType": "resize_avatar", "maxAttempts": 1,
                                              "payload": {"userId": 7}})
    job_id = uuid.UUID(r.json()["jobId"])
    other = Worker(deps, Registry(), concurrency=2)  # every queue, no handler for it
    other.unhandled_delay_ms = (100, 500)  # the growth is the same, the wait shorter
    other_task = asyncio.create_task(other.run())

    async def handed_back_twice() -> bool:
        n = await deps.pool.fetchval(
            "SELECT count(*) FROM job_attempts WHERE job_id = $1 "
            "AND error_type = 'unknown_job_type'", job_id)
        return bool(n >= 2)

    try:
        await wait_until(handed_back_twice, timeout=30, message="handed back twice")
        j = await jobs.get_job(deps, job_id)
        assert j.status in (Status.PENDING, Status.SCHEDULED, Status.PROCESSING)
        assert j.attempts == 0 or j.status == Status.PROCESSING  # none spent
        # visible as unserved: the registry lists it with no worker (the other worker does
        # not serve it), with its waiting job counted, and /metrics says so
        async def noted() -> bool:
            r = await http.get("/api/v1/job-types")
            t = {x["jobType"]: x for x in r.json()["jobTypes"]}["resize_avatar"]
            return bool(t["unhandledMs"] is not None and t["unservedJobs"] == 1)

        await wait_until(noted, timeout=30, message="unhandled type noted")
        r = await http.get("/api/v1/job-types")
        [t] = r.json()["jobTypes"]
        assert t["servedBy"] == [] and t["served"] is False and t["queue"] == "avatars"
        assert t["unservedQueues"] == ["avatars"]
        metrics = (await http.get("/metrics")).text
        assert 'jobline_job_type_unserved_jobs{job_type="resize_avatar"} 1.0' in metrics
        assert 'jobline_job_type_workers{job_type="resize_avatar"} 0.0' in metrics
        # a worker that has the handler takes it, with its one attempt intact
        done = await _run_until_terminal(deps, avatar_registry(), job_id, http)
    finally:
        other.request_stop()
        await other_task
    assert done.status == Status.COMPLETED and done.attempts == 1
    assert done.result == {"resized": 7}
    outcomes = [a.outcome for a in done.attempts_history]
    assert outcomes[-1] == "completed" and len(outcomes) >= 3


async def test_an_unregistered_type_lists_the_queues_its_waiting_jobs_are_in(
        deps: Deps, http: httpx.AsyncClient) -> None:
    """A type nobody registered has no queue of its own: the dashboard marks the queues its
    waiting jobs were submitted to (unservedQueues), not a registered one."""
    for q in ("inbox", "inbox", "outbox"):
        r = await http.post("/api/v1/jobs", json={"jobType": "typo_type", "queue": q})
        assert r.status_code == 201, r.text
    await job_types.note_unhandled(deps, ["typo_type"])  # what a worker without it does
    [t] = await job_types.list_job_types(deps)
    assert t.defaults.queue is None and not t.served
    assert (t.unserved_jobs, t.unserved_queues) == (3, ["inbox", "outbox"])


async def test_jobs_of_a_served_type_in_a_queue_its_workers_skip_are_unserved(
        deps: Deps, http: httpx.AsyncClient) -> None:
    """The tour's trap, second form: a job submitted before any worker registered its type goes
    to `default`, while the type's worker claims only from `avatars`. The type is served, but
    that job waits for nobody: it is counted, in its queue, once a worker has handed it back."""
    r = await http.post("/api/v1/jobs", json={"jobType": "resize_avatar", "payload": {}})
    assert r.status_code == 201 and r.json()["queue"] == "default", r.text
    worker = Worker(deps, avatar_registry(), queues=["avatars"], concurrency=1)
    task = asyncio.create_task(worker.run())
    try:
        await worker.started.wait()

        async def listed_as_served() -> bool:
            ts = {t.defaults.job_type: t for t in await job_types.list_job_types(deps)}
            return "resize_avatar" in ts and ts["resize_avatar"].served

        await wait_until(listed_as_served, timeout=30, message="the avatars worker registered")
        [t] = await job_types.list_job_types(deps)
        assert (t.unserved_jobs, t.unserved_queues) == (0, [])  # nothing handed back yet
        await job_types.note_unhandled(deps, ["resize_avatar"])  # a `default` worker did
        [t] = await job_types.list_job_types(deps)
        assert t.served and t.served_by == [worker.worker_id]
        assert (t.unserved_jobs, t.unserved_queues) == (1, ["default"])
        metrics = (await http.get("/metrics")).text
        assert 'jobline_job_type_unserved_jobs{job_type="resize_avatar"} 1.0' in metrics
    finally:
        worker.request_stop()
        await task


async def _run_until_terminal(deps: Deps, reg: Registry, job_id: uuid.UUID,
                              http: httpx.AsyncClient) -> Any:
    worker = Worker(deps, reg, queues=["avatars"], concurrency=1)
    task = asyncio.create_task(worker.run())
    try:
        await worker.started.wait()

        async def served() -> bool:
            r = await http.get("/api/v1/job-types")
            t = {x["jobType"]: x for x in r.json()["jobTypes"]}["resize_avatar"]
            return bool(t["servedBy"] == [worker.worker_id] and t["served"]
                        and t["unservedJobs"] == 0 and t["unservedQueues"] == [])

        await wait_until(served, timeout=30, message="served by the new worker")

        async def terminal() -> bool:
            return (await jobs.get_job(deps, job_id, history=False)).status in (
                Status.COMPLETED, Status.DEAD_LETTER, Status.FAILED)

        await wait_until(terminal, timeout=60, message="job finished")
    finally:
        worker.request_stop()
        await task
    return await jobs.get_job(deps, job_id)


async def test_a_starting_worker_publishes_its_handlers_and_graphql_lists_them(
        deps: Deps, http: httpx.AsyncClient) -> None:
    worker = Worker(deps, avatar_registry(), queues=["avatars"])
    task = asyncio.create_task(worker.run())
    try:
        await worker.started.wait()
        r = await http.post("/graphql", json={"query": """{ jobTypes { jobType queue
            maxAttempts timeoutMs backoff nonRetryable servedBy served unservedJobs
            unservedQueues registeredAt } }"""})
        [t] = r.json()["data"]["jobTypes"]
        assert t == {"jobType": "resize_avatar", "queue": "avatars", "maxAttempts": 5,
                     "timeoutMs": 30_000, "backoff": AVATAR_BACKOFF,
                     "nonRetryable": ["bad_image"], "servedBy": [worker.worker_id],
                     "served": True, "unservedJobs": 0, "unservedQueues": [],
                     "registeredAt": t["registeredAt"]}
        assert t["registeredAt"] is not None
    finally:
        worker.request_stop()
        await task
    # gone: still registered (submissions keep its defaults), served by nobody
    [t2] = (await http.get("/api/v1/job-types")).json()["jobTypes"]
    assert t2["servedBy"] == [] and t2["queue"] == "avatars"


async def test_a_chain_passes_results_to_handlers_that_ask_for_them(deps: Deps) -> None:
    """``@job(..., dependency_results=True)``: ``ctx.dependency_results`` holds each completed
    dependency's result by id (sync and async handlers); handlers that did not ask get {}."""
    from jobline import JobContext

    reg = Registry()

    @reg.job("fetch", queue="chain")
    async def fetch(payload: dict[str, Any]) -> dict[str, Any]:
        return {"rows": payload["n"]}

    @reg.job("total", queue="chain", dependency_results=True)
    def total(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        return {"sum": sum(r["rows"] for r in ctx.dependency_results.values()),
                "from": sorted(ctx.dependency_results)}

    @reg.job("plain", queue="chain")
    async def plain(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        return {"seen": ctx.dependency_results}

    async with Client(deps, registry=reg) as client:
        a = await client.submit("fetch", {"n": 2})
        b = await client.submit("fetch", {"n": 5})
        t = await client.submit("total", depends_on=[a.id, b.id])
        p = await client.submit("plain", depends_on=[a.id])
    from jobline.testing import drain

    await drain(deps, reg, queues=["chain"])
    got = (await jobs.get_job(deps, t.id, history=False)).result
    assert got == {"sum": 7, "from": sorted([str(a.id), str(b.id)])}
    assert (await jobs.get_job(deps, p.id, history=False)).result == {"seen": {}}


async def test_a_remote_worker_publishes_over_the_api_and_gets_dependency_results(
        deps: Deps, http: httpx.AsyncClient) -> None:
    """The remote worker protocol: POST /api/v1/worker/job-types, and the chain's results read
    through the REST API."""
    from jobline import JobContext
    from jobline.worker.remote import RemoteBackend

    reg = avatar_registry(queue="remote")

    @reg.job("total", queue="remote", dependency_results=True)
    async def total(payload: dict[str, Any], ctx: JobContext) -> list[Any]:
        return list(ctx.dependency_results.values())

    async with Client(deps, registry=Registry()) as client:
        first = await client.submit("resize_avatar", {"userId": 3}, queue="remote")
        chained = await client.submit("total", queue="remote", depends_on=[first.id])
    backend = RemoteBackend("http://jobline", api_key=http.headers["X-Api-Key"],
                            transport=http._transport)
    await backend.open()
    worker = Worker(backend, reg, queues=["remote"])
    task = asyncio.create_task(worker.run())
    try:
        async def done() -> bool:
            return (await jobs.get_job(deps, chained.id, history=False)).status in (
                Status.COMPLETED, Status.DEAD_LETTER)

        await wait_until(done, message="chain done")
    finally:
        worker.request_stop()
        await task
    assert (await jobs.get_job(deps, chained.id, history=False)).result == [{"resized": 3}]
    types = {t.defaults.job_type: t for t in await job_types.list_job_types(deps)}
    assert types["resize_avatar"].defaults == job_types.JobTypeDefaults(
        "resize_avatar", "remote", 5, 30_000, AVATAR_BACKOFF, ("bad_image",))
    assert types["total"].registered_ms is not None


async def test_a_type_published_twice_in_one_call_keeps_its_last_entry(deps: Deps) -> None:
    # found by the REST fuzzer: one ON CONFLICT DO UPDATE may not touch a row twice, so a
    # duplicate in one publish was a 500
    first = job_types.JobTypeDefaults("dup", "q1", 2, None, None, None)
    last = job_types.JobTypeDefaults("dup", "q2", 7, None, None, None)
    await job_types.publish(deps, [first, last])
    (t,) = [t for t in await job_types.list_job_types(deps) if t.defaults.job_type == "dup"]
    assert (t.defaults.queue, t.defaults.max_attempts) == ("q2", 7)
