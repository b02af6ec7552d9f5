"""Redis refusing a command *after* the Postgres commit (issue 13, defect 2).

A ``ResponseError`` (an OOM refusal under the required ``noeviction`` policy, ``READONLY`` after a
failover, ``MISCONF``...) is not a lost connection, but after the commit it means the same: the
transition happened, Redis is behind, reconcile repairs it. No operation may then fail (no API
500), and the worker's completer must record the whole batch.

Fault injection: the Dispatch mirror calls of the test's ``deps`` raise the ResponseError Valkey
sends for an OOM refusal. A real OOM cannot produce the fault everywhere (``release.lua`` starts
with a ZREM, which Valkey allows over maxmemory), so the fault is injected at the boundary; the
stores themselves are real.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis.exceptions

from jobline.shared.core import jobs, maintenance
from jobline.shared.core.models import JobSpec, Outcome, Status
from jobline.shared.dispatch import queue_controls, rate_limits
from jobline.shared.platform.clock import FakeClock
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps
from jobline.shared.retry import dlq
from jobline.shared.retry.policy import RetryPolicy
from jobline.testing import wait_until
from jobline.worker.backend import DirectBackend
from jobline.worker.runtime import Completer, WorkerStats

OOM = "OOM command not allowed when used memory > 'maxmemory'."
#: Every Dispatch call that mirrors a committed change.
MIRRORS = ("enqueue", "enqueue_many", "remove", "release_leases", "extend_leases",
           "set_queue_meta", "unclaim")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    return settings.with_(lease_ms=10_000, backoff_base_ms=1_000)


@pytest.fixture
def deps(deps: Deps) -> Deps:
    deps.rng = random.Random(7)  # reproducible jitter
    return deps


class RedisRefuses:
    """Makes the mirror calls of one ``Dispatch`` (and cancel-signal publishes) raise an OOM
    ``ResponseError`` while ``on``; counts the refusals so a test knows the fault was hit."""

    def __init__(self, deps: Deps, monkeypatch: pytest.MonkeyPatch) -> None:
        self.on = False
        self.refused = 0
        d = deps.dispatch
        for name in MIRRORS:
            if hasattr(d, name):
                monkeypatch.setattr(d, name, self._wrap(getattr(d, name)))
        monkeypatch.setattr(d.r, "publish", self._wrap(d.r.publish))

    def _wrap(self, fn: Any) -> Any:
        async def refusing(*args: Any, **kw: Any) -> Any:
            if self.on:
                self.refused += 1
                raise redis.exceptions.ResponseError(OOM)
            return await fn(*args, **kw)
        return refusing

    def __enter__(self) -> RedisRefuses:
        self.on = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.on = False


@pytest.fixture
def refuse(deps: Deps, monkeypatch: pytest.MonkeyPatch) -> Iterator[RedisRefuses]:
    yield RedisRefuses(deps, monkeypatch)


def spec(**kw: Any) -> JobSpec:
    return JobSpec(queue=kw.pop("queue", "q"), job_type="t", payload={}, **kw)


async def status_of(deps: Deps, job_id: uuid.UUID) -> str:
    return str(await deps.pool.fetchval("SELECT status FROM jobs WHERE id = $1", job_id))


async def dead_letters(deps: Deps, n: int) -> list[uuid.UUID]:
    """``n`` jobs of queue "d" that failed their only attempt."""
    await jobs.submit_many(deps, [spec(queue="d", max_attempts=1) for _ in range(n)])
    claimed = await jobs.claim(deps, "w", ["d"], n)
    await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error="x", error_type="x")
                           for c in claimed], [1] * n)
    return [c.id for c in claimed]


async def test_complete_and_fail_stand_when_redis_refuses_after_commit(
        deps: Deps, refuse: RedisRefuses) -> None:
    await jobs.submit_many(deps, [spec(), spec()])
    ok, bad = await jobs.claim(deps, "w", ["q"], 2)
    with refuse:
        rep = await jobs.complete(deps, [Outcome(ok.id, ok.token, ok=True, result=1)])
        frep = await jobs.fail(deps, [Outcome(bad.id, bad.token, ok=False, final=True,
                                              error="boom", error_type="x")], [1])
    assert refuse.refused >= 2
    assert rep.accepted == [ok.id] and frep.statuses == {bad.id: Status.DEAD_LETTER}
    assert await status_of(deps, ok.id) == "completed"
    # reconcile/the sweep repairs what the refused mirror left behind
    await maintenance.reconcile(deps)


async def test_manual_transitions_stand_when_redis_refuses_after_commit(
        deps: Deps, refuse: RedisRefuses) -> None:
    pending, running = (r.submitted.id for r in await jobs.submit_many(
        deps, [spec(), spec(queue="r")]))
    [r] = await jobs.claim(deps, "w", ["r"], 1)
    dead, dead2 = await dead_letters(deps, 2)
    with refuse:
        assert await jobs.cancel(deps, pending) == Status.CANCELLED
        assert await jobs.cancel(deps, running) == Status.PROCESSING  # signal refused
        assert await jobs.retry_now(deps, dead) == Status.PENDING
        assert await dlq.retry_dead_letters(deps, dlq.DlqFilter(ids=(dead2,))) == [dead2]
        hb = await jobs.heartbeat(deps, [("r", r.id, r.token)])
        assert hb.lost == [] and hb.cancel_requested == [running]
        await queue_controls.pause_queue(deps, "q")
        await queue_controls.set_queue_limits(deps, "q", max_in_flight=3)
        await rate_limits.set_rate_limit(deps, "q", limit=5, window_ms=1000)
        await rate_limits.clear_rate_limit(deps, "q")
        await queue_controls.resume_queue(deps, "q")
    assert refuse.refused >= 9
    assert await status_of(deps, pending) == "cancelled"
    assert await status_of(deps, dead) == "pending" and await status_of(deps, dead2) == "pending"
    controls = (await queue_controls.queue_controls(deps))["q"]
    assert (controls.paused, controls.max_in_flight, controls.rate_limit) == (False, 3, None)


async def test_rest_answers_the_committed_result_not_500(
        deps: Deps, refuse: RedisRefuses, http: Any) -> None:
    sub = (await jobs.submit(deps, spec())).submitted
    [dead] = await dead_letters(deps, 1)
    with refuse:
        resp = await http.delete(f"/api/v1/jobs/{sub.id}")
        assert resp.status_code == 200, resp.text
        resp = await http.post(f"/api/v1/jobs/{dead}/retry")
        assert resp.status_code == 200, resp.text
        resp = await http.post("/api/v1/queues/q/pause")
        assert resp.status_code == 200, resp.text
    assert refuse.refused >= 3


async def test_completer_records_the_whole_batch_when_redis_refuses(
        deps: Deps, refuse: RedisRefuses) -> None:
    """One success and one Unrecoverable in the same flush: the refused lease release after the
    complete must not keep the failure from being recorded (it would otherwise be reaped later,
    burning an attempt, and the Unrecoverable job would run again)."""
    await jobs.submit_many(deps, [spec(), spec(max_attempts=3)])
    ok, bad = await jobs.claim(deps, "w", ["q"], 2)
    completer = Completer(DirectBackend(deps), WorkerStats())
    completer.start()
    try:
        with refuse:
            p1 = completer.add(Outcome(ok.id, ok.token, ok=True, result=1), ok)
            p2 = completer.add(Outcome(bad.id, bad.token, ok=False, final=True,
                                       error="no such user", error_type="unrecoverable"), bad,
                               RetryPolicy())
            await wait_until(lambda: _done(p1.done, p2.done), message="the flush")
    finally:
        await completer.aclose()
    assert refuse.refused >= 1
    assert await status_of(deps, ok.id) == "completed"
    assert await status_of(deps, bad.id) == "dead_letter"


async def _done(*futs: Any) -> bool:
    return all(f.done() for f in futs)
