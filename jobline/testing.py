"""Helpers for testing code that uses Jobline (and for Jobline's own tests).

``wait_until`` waits on a condition with a deadline (instead of a fixed sleep); ``drain`` runs a
worker in-process until the given queues have nothing left to do; ``assert_enqueued`` checks that
code under test submitted a job.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from jobline.shared.platform.connections import Deps
from jobline.worker.registry import Registry
from jobline.worker.runtime import Worker, WorkerStats

T = TypeVar("T")


async def wait_until(predicate: Callable[[], Awaitable[T]], *, timeout: float = 30.0,
                     interval: float = 0.01, message: str = "condition") -> T:
    """Re-check ``predicate`` until it returns something truthy; fail after ``timeout`` seconds.

    The check interval grows from 10 ms to 100 ms so a slow condition costs few queries. The
    deadline is generous on purpose: it only decides how long a broken test takes to fail, and a
    busy 2-core machine can stall a healthy one for seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(interval)
        interval = min(interval * 1.5, 0.1)


async def drain(deps: Deps, registry: Registry | None = None, *, queues: list[str] | None = None,
                concurrency: int = 10, timeout: float = 30.0) -> WorkerStats:
    """Run a worker until no job of ``queues`` is pending, scheduled or processing (so a job
    delayed far into the future makes this time out: drain is for retries and short delays)."""
    worker = Worker(deps, registry, queues=queues, concurrency=concurrency)
    task = asyncio.create_task(worker.run())

    async def idle() -> bool:
        q = "" if queues is None else "AND queue_name = ANY($1::text[])"
        args: list[Any] = [] if queues is None else [queues]
        # scheduled jobs count as work left: drain waits for retries and delayed jobs too
        n = await deps.pool.fetchval(
            "SELECT count(*) FROM jobs WHERE status IN ('pending', 'scheduled', 'processing') "
            f"{q}", *args)
        return n == 0 and not worker.running

    try:
        await wait_until(idle, timeout=timeout, message="queues drained")
    finally:
        worker.request_stop()
        stats = await task
    return stats


async def assert_enqueued(deps: Deps, job_type: str, *, queue: str | None = None,
                          payload_contains: dict[str, Any] | None = None) -> None:
    sql = "SELECT count(*) FROM jobs WHERE job_type = $1"
    args: list[Any] = [job_type]
    if queue is not None:
        args.append(queue)
        sql += f" AND queue_name = ${len(args)}"
    if payload_contains is not None:
        args.append(payload_contains)
        sql += f" AND payload @> ${len(args)}::jsonb"
    n = await deps.pool.fetchval(sql, *args)
    assert n, f"no {job_type!r} job was enqueued"


async def serve_app(app: Any, *, role: str | None = "admin") -> AsyncIterator[Any]:
    """An ``httpx.AsyncClient`` talking to ``app`` in-process, with the app's lifespan running
    (httpx's ASGI transport sends no lifespan events), so startup/shutdown work as under uvicorn.

    With ``role`` set, a fresh API key of that role is created and sent with every request;
    ``role=None`` sends none (to test authentication itself).
    """
    import httpx

    from jobline.shared.security.auth import create_key

    async with app.router.lifespan_context(app):
        headers = {}
        if role is not None:
            _, key = await create_key(app.state.jobline.require_deps(), role, "test client")
            headers["X-Api-Key"] = key
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://jobline",
                                     headers=headers) as client:
            yield client
