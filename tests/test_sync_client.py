"""Enqueue like Celery, from sync code too: ``@job`` returns a task (``.delay``, ``.enqueue``,
``.enqueue_async``), ``jobline.SyncClient`` wraps the client for blocking code, and
``Client.http(url, key)`` speaks the REST API with the client's method names and types. The HTTP
paths run against a real uvicorn server on the real stores."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

import jobline
from jobline.api.app import create_app
from jobline.client import Client, SubmittedJob
from jobline.shared.core import job_types, jobs
from jobline.shared.core.models import Job, Status
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import NotFound, ValidationFailed
from jobline.shared.security.auth import create_key
from jobline.sync_client import SyncClient
from jobline.testing import drain, wait_until
from jobline.worker.registry import JobTask, Registry, set_default_client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def api(deps: Deps) -> AsyncIterator[tuple[str, str]]:
    """A real API server over ``deps``: (base url, developer key)."""
    _, key = await create_key(deps, "developer", "sync client test")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        create_app(deps.settings, deps=deps), host="127.0.0.1", port=port, lifespan="on",
        log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return bool(server.started)

    await wait_until(started, message="uvicorn started")
    try:
        yield f"http://127.0.0.1:{port}", key
    finally:
        server.should_exit = True
        await task


def math_registry() -> tuple[Registry, JobTask[[dict[str, Any]], dict[str, int]]]:
    reg = Registry()

    @reg.job("add", queue="math", max_attempts=4)
    def add(payload: dict[str, Any]) -> dict[str, int]:
        return {"sum": payload["a"] + payload["b"]}

    return reg, add


async def test_job_returns_a_task_that_still_runs_as_a_function_and_submits_itself(
        deps: Deps) -> None:
    reg, add = math_registry()
    assert isinstance(add, JobTask) and add.__name__ == "add" and add.name == "add"
    assert add({"a": 1, "b": 2}) == {"sum": 3}  # calling it runs the function
    # the worker side publishes the handler's settings (this test's registry is not the
    # process-wide one the default client falls back to)
    from jobline.worker.runtime import Worker

    await job_types.publish(deps, Worker(deps, reg).job_type_defaults())
    sync = await asyncio.to_thread(SyncClient.connect, deps.settings)
    set_default_client(sync)
    try:
        # sync code (a Django view, a Flask route) on another thread
        d = await asyncio.to_thread(lambda: add.delay(a=2, b=3))
        e = await asyncio.to_thread(lambda: add.enqueue({"a": 4, "b": 5}, priority=9,
                                                        queue="urgent", delay=0))
        # async code, through the sync default client's loop
        f = await add.enqueue_async({"a": 6, "b": 7}, idempotency_key="k1")
        again = await add.enqueue_async({"a": 6, "b": 7}, idempotency_key="k1")
    finally:
        set_default_client(None)
        await asyncio.to_thread(sync.close)
    # an explicit async client
    async with Client(deps, registry=reg) as client:
        g = await add.enqueue_async({"a": 8, "b": 9}, client=client)
    assert all(isinstance(s, SubmittedJob) for s in (d, e, f, g))
    assert (d.queue, e.queue, f.queue, g.queue) == ("math", "urgent", "math", "math")
    assert again.duplicate and again.id == f.id
    e_job = await jobs.get_job(deps, e.id, history=False)
    assert e_job.priority == 9 and e_job.payload == {"a": 4, "b": 5}
    await drain(deps, reg, queues=["math", "urgent"])
    results = [(await jobs.get_job(deps, s.id, history=False)).result for s in (d, e, f, g)]
    assert results == [{"sum": 5}, {"sum": 9}, {"sum": 13}, {"sum": 17}]


async def test_an_async_default_client_refuses_sync_submissions(deps: Deps) -> None:
    _, add = math_registry()
    async with Client(deps) as client:
        set_default_client(client)
        try:
            with pytest.raises(RuntimeError, match="enqueue_async"):
                add.delay(a=1, b=1)
            s = await add.enqueue_async({"a": 1, "b": 1})
        finally:
            set_default_client(None)
    assert (await jobs.get_job(deps, s.id, history=False)).job_type == "add"


async def test_http_client_has_the_clients_methods_and_types(
        deps: Deps, api: tuple[str, str]) -> None:
    url, key = api
    reg, _ = math_registry()
    await job_types.publish(deps, [job_types.JobTypeDefaults("add", "math", 4)])
    async with Client.http(url, key) as c:
        s = await c.submit("add", {"a": 1, "b": 2})
        assert isinstance(s, SubmittedJob) and s.queue == "math" and s.status == Status.PENDING
        many = await c.submit_many([{"job_type": "add", "payload": {"a": 2, "b": 2}},
                                    {"job_type": "add", "payload": {"a": 0, "b": 0},
                                     "queue": "other", "max_attempts": 1, "timeout": "5s"}])
        assert [m.queue for m in many] == ["math", "other"]
        other = await c.get(many[1].id)
        assert isinstance(other, Job) and other.max_attempts == 1 and other.timeout_ms == 5000
        assert await c.cancel(many[1].id) == Status.CANCELLED
        await drain(deps, reg, queues=["math"])
        done = await c.wait(s.id, timeout=30)
        assert done.status == Status.COMPLETED and done.result == {"sum": 3}
        assert done.max_attempts == 4 and [a.outcome for a in done.attempts_history] == [
            "completed"]
        page = await c.list(queue="math")
        assert {j.id for j in page.jobs} == {s.id, many[0].id} and page.total == 2
        [t] = await c.job_types()
        assert t["jobType"] == "add" and t["servedBy"] == []
        with pytest.raises(ValidationFailed) as err:
            await c.submit("9-not-a-type")
        assert err.value.field == "jobType"
        with pytest.raises(NotFound):
            await c.get(uuid.uuid4())


async def test_sync_client_over_http_and_in_process(deps: Deps, api: tuple[str, str]) -> None:
    url, key = api

    def over_http() -> tuple[SubmittedJob, Job]:
        with jobline.SyncClient.http(url, key) as c:
            s = c.submit("report", {"n": 1}, queue="reports", priority=7)
            return s, c.get(s.id)

    def in_process() -> tuple[SubmittedJob, Job, list[dict[str, Any]]]:
        with jobline.SyncClient.connect(deps.settings) as c:
            s = c.submit("report", {"n": 2}, queue="reports")
            return s, c.get(s.id), c.queues()

    s1, j1 = await asyncio.to_thread(over_http)
    s2, j2, queues = await asyncio.to_thread(in_process)
    assert (j1.id, j1.priority, j1.queue, j1.payload) == (s1.id, 7, "reports", {"n": 1})
    assert (j2.id, j2.payload, s2.queue) == (s2.id, {"n": 2}, "reports")
    assert any(q["name"] == "reports" for q in queues)


async def test_a_script_that_only_calls_delay_exits_cleanly_with_its_job_committed(
        deps: Deps) -> None:
    """A plain script's `.delay()` connects the default client by itself; nothing closes it, so
    the process exit must (atexit): no "Task was destroyed but it is pending!", job stored."""
    import os
    import sys

    script = (
        "from jobline import job\n"
        "@job('exit_probe', queue='probe')\n"
        "def probe(payload): return payload\n"
        "print(probe.delay(n=1).id)\n")
    s = deps.settings
    env = dict(os.environ, DATABASE_URL=s.database_url, REDIS_URL=s.redis_url,
               JOBLINE_REDIS_PREFIX=s.redis_prefix, JOBLINE_HOME=str(s.home))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    assert b"Task was destroyed" not in err and b"Traceback" not in err, err.decode()
    job = await jobs.get_job(deps, uuid.UUID(out.decode().strip()))
    assert job.queue == "probe" and job.status == Status.PENDING
