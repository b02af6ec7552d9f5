"""Retry policy: each precedence level (submission > stored per-type > handler > global), the
non-retryable verdict made by the core, backoff from a stored policy, and the REST/Client shells."""

from __future__ import annotations

import random
import uuid
from typing import Any

import httpx
import pytest

from jobline.client import Client
from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec, Outcome, Status
from jobline.shared.platform.clock import FakeClock
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect
from jobline.shared.platform.errors import JobError
from jobline.shared.retry import policy_store as store
from jobline.shared.retry.backoff import Backoff
from jobline.shared.retry.policy import RetryPolicy
from jobline.testing import drain
from jobline.worker.registry import Registry


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    return settings.with_(lease_ms=10_000, backoff_base_ms=1_000, backoff_cap_ms=60_000)


@pytest.fixture
def deps(deps: Deps) -> Deps:
    deps.rng = random.Random(7)  # reproducible jitter
    return deps


async def fail_once(deps: Deps, spec: JobSpec, error_type: str,
                    handler: RetryPolicy | None = None) -> tuple[Status, int]:
    """Submit, claim and fail one attempt; returns the resulting status and max_attempts."""
    [s] = await jobs.submit_many(deps, [spec])
    [c] = await jobs.claim(deps, "w", [spec.queue], 1)
    assert c.id == s.submitted.id
    rep = await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error="e",
                                         error_type=error_type)],
                          [c.attempt], [c.backoff], handler_policies=[handler])
    return rep.statuses[c.id], c.max_attempts


def spec(job_type: str = "t", **kw: Any) -> JobSpec:
    return JobSpec(queue=kw.pop("queue", f"q{uuid.uuid4().hex[:6]}"), job_type=job_type,
                   payload={}, **kw)


async def test_global_level_applies_when_nothing_else_is_set(deps: Deps) -> None:
    assert await fail_once(deps, spec(), "validation_error") == (Status.DEAD_LETTER, 3)
    status, _ = await fail_once(deps, spec(), "boom")
    assert status in (Status.SCHEDULED, Status.PENDING)


async def test_handler_level_beats_global(deps: Deps) -> None:
    handler = RetryPolicy(max_attempts=6, non_retryable=("boom",))
    assert (await fail_once(deps, spec(handler_max_attempts=6), "boom", handler)
            == (Status.DEAD_LETTER, 6))
    # the handler's list replaces the global one: validation_error is retried for it
    status, _ = await fail_once(deps, spec(), "validation_error", handler)
    assert status in (Status.SCHEDULED, Status.PENDING)


async def test_stored_policy_beats_handler(deps: Deps) -> None:
    await store.put_retry_policy(deps, "t", RetryPolicy(max_attempts=7, non_retryable=("x",)))
    handler = RetryPolicy(max_attempts=6, non_retryable=("boom",))
    status, max_attempts = await fail_once(deps, spec(handler_max_attempts=6), "boom", handler)
    assert status in (Status.SCHEDULED, Status.PENDING) and max_attempts == 7
    assert (await fail_once(deps, spec(), "x", handler))[0] == Status.DEAD_LETTER
    # a policy change applies to attempts failing after it, whoever runs them
    await store.put_retry_policy(deps, "t", RetryPolicy(non_retryable=("boom",)))
    assert await fail_once(deps, spec(handler_max_attempts=6), "boom") == (Status.DEAD_LETTER, 6)
    await store.delete_retry_policy(deps, "t")
    assert (await fail_once(deps, spec(), "validation_error"))[0] == Status.DEAD_LETTER


async def test_submission_beats_stored_policy(deps: Deps) -> None:
    await store.put_retry_policy(deps, "t", RetryPolicy(max_attempts=7, non_retryable=("x",)))
    s = spec(max_attempts=2, non_retryable=("y",))
    status, max_attempts = await fail_once(deps, s, "x")
    assert status in (Status.SCHEDULED, Status.PENDING) and max_attempts == 2
    assert (await fail_once(deps, spec(non_retryable=("y",)), "y"))[0] == Status.DEAD_LETTER
    # [] at the submission: retry everything, even validation_error
    status, _ = await fail_once(deps, spec(job_type="u", non_retryable=()), "validation_error")
    assert status in (Status.SCHEDULED, Status.PENDING)


async def test_explicit_retry_and_unrecoverable_keep_their_meaning(deps: Deps) -> None:
    await store.put_retry_policy(deps, "t", RetryPolicy(non_retryable=("rate_limited",)))
    [s] = await jobs.submit_many(deps, [spec(queue="q")])
    [c] = await jobs.claim(deps, "w", ["q"], 1)
    # a Retry(after=..., burn_attempt=False) is the handler's call: not reclassified, not burnt
    rep = await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error_type="rate_limited",
                                         retry_after_ms=0, burn_attempt=False)], [c.attempt])
    assert rep.statuses[c.id] == Status.PENDING
    job = await jobs.get_job(deps, s.submitted.id)
    assert job.attempts == 0
    [c] = await jobs.claim(deps, "w", ["q"], 1)
    rep = await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error_type="anything",
                                         final=True)], [c.attempt])
    assert rep.statuses[c.id] == Status.DEAD_LETTER


async def test_backoff_comes_from_the_stored_policy(deps: Deps, clock: FakeClock) -> None:
    await store.put_retry_policy(deps, "t", RetryPolicy(
        max_attempts=5, backoff={"baseMs": 100, "factor": 3, "capMs": 1_000, "jitter": False}))
    [s] = await jobs.submit_many(deps, [spec(queue="q")])
    delays = []
    for _ in range(4):
        [c] = await jobs.claim(deps, "w", ["q"], 1)
        now = clock.now_ms()
        await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error_type="boom")],
                        [c.attempt], [c.backoff])
        job = await jobs.get_job(deps, s.submitted.id, history=False)
        delays.append(job.scheduled_for_ms - now)
        clock.advance(delays[-1])
    assert delays == [100, 300, 900, 1_000]
    # jitter on, a submission override of baseMs only: the rest still comes from the policy
    await store.put_retry_policy(deps, "t", RetryPolicy(
        backoff={"baseMs": 100, "factor": 3, "capMs": 1_000, "jitter": True}))
    [s] = await jobs.submit_many(deps, [spec(queue="r", backoff={"baseMs": 200})])
    deps.rng = random.Random(42)
    expected_rng = random.Random(42)
    [c] = await jobs.claim(deps, "w", ["r"], 1)
    assert c.backoff == {"baseMs": 200, "factor": 3, "capMs": 1_000, "jitter": True}
    now = clock.now_ms()
    await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error_type="boom")], [c.attempt],
                    [c.backoff])
    job = await jobs.get_job(deps, s.submitted.id, history=False)
    assert job.scheduled_for_ms - now == Backoff(200, 3, 1_000).delay_ms(1, expected_rng)


async def test_handler_decorator_policy_with_a_real_worker(settings: Settings) -> None:
    deps = await connect(settings.with_(backoff_base_ms=1, backoff_cap_ms=5))
    try:
        reg = Registry()

        @reg.job("parse", queue="work", non_retryable=["bad_input"],
                 backoff={"baseMs": 1, "capMs": 2})
        async def parse(payload: dict[str, Any]) -> None:
            raise JobError("cannot parse", "bad_input" if payload["bad"] else "flaky")

        [bad, flaky] = await jobs.submit_many(deps, [
            JobSpec(queue="work", job_type="parse", payload={"bad": True}),
            JobSpec(queue="work", job_type="parse", payload={"bad": False}, max_attempts=3)])
        await drain(deps, reg, queues=["work"])
        b = await jobs.get_job(deps, bad.submitted.id)
        f = await jobs.get_job(deps, flaky.submitted.id)
        assert (b.status, b.attempts, b.error_type) == (Status.DEAD_LETTER, 1, "bad_input")
        assert (f.status, f.attempts) == (Status.DEAD_LETTER, 3)
    finally:
        await deps.close()


def test_decorator_rejects_a_bad_policy() -> None:
    with pytest.raises(ValueError, match=r"backoff\.factor"):
        Registry().job("x", backoff={"factor": 0.5})


async def test_rest_crud_and_422_naming_the_field(http: httpx.AsyncClient) -> None:
    body = {"maxAttempts": 4, "backoff": {"baseMs": 50, "factor": 2.5},
            "nonRetryable": ["validation_error", "bad_input"]}
    resp = await http.put("/api/v1/retry-policies/send_email", json=body)
    assert resp.status_code == 200, resp.text
    got = resp.json()
    assert got["jobType"] == "send_email" and got["maxAttempts"] == 4
    assert got["backoff"] == {"baseMs": 50, "factor": 2.5}
    assert got["nonRetryable"] == ["validation_error", "bad_input"]
    assert (await http.get("/api/v1/retry-policies/send_email")).json()["maxAttempts"] == 4
    listed = (await http.get("/api/v1/retry-policies")).json()["policies"]
    assert [p["jobType"] for p in listed] == ["send_email"]
    # submit picks the stored maxAttempts up
    resp = await http.post("/api/v1/jobs", json={"jobType": "send_email", "payload": {}})
    job = (await http.get(f"/api/v1/jobs/{resp.json()['jobId']}")).json()
    assert job["maxAttempts"] == 4

    for bad, field in [({"maxAttempts": 0}, "maxAttempts"),
                       ({"backoff": {"factor": 0.5}}, "backoff.factor"),
                       ({"backoff": {"baseMs": -1}}, "backoff.baseMs"),
                       ({"backoff": {"speed": 1}}, "backoff.speed"),
                       ({"nonRetryable": [""]}, "nonRetryable[0]"),
                       ({"nonRetryable": "validation_error"}, "nonRetryable"),
                       ({"maxAtempts": 3}, "maxAtempts")]:
        resp = await http.put("/api/v1/retry-policies/other", json=bad)
        assert resp.status_code == 422, (bad, resp.text)
        assert resp.json()["error"]["field"] == field, (bad, resp.json())
    assert (await http.get("/api/v1/retry-policies/other")).status_code == 404  # nothing stored
    resp = await http.put("/api/v1/retry-policies/9bad", json={})
    assert resp.status_code == 422 and resp.json()["error"]["field"] == "jobType"
    resp = await http.post("/api/v1/jobs", json={"jobType": "t", "nonRetryable": [1]})
    assert resp.status_code == 422 and resp.json()["error"]["field"] == "nonRetryable[0]"

    assert (await http.delete("/api/v1/retry-policies/send_email")).status_code == 204
    assert (await http.delete("/api/v1/retry-policies/send_email")).status_code == 404
    assert (await http.get("/api/v1/retry-policies")).json() == {"policies": []}


async def test_client_methods(deps: Deps) -> None:
    reg = Registry()

    @reg.job("mail", max_attempts=9)
    def mail(payload: dict[str, Any]) -> None:
        return None

    client = Client(deps, registry=reg)
    try:
        # the handler's max_attempts applies when nothing ranks above it...
        sub = await client.submit("mail", {})
        assert (await client.get(sub.id)).max_attempts == 9
        # ...and ranks below a stored policy
        p = await client.set_retry_policy("mail", max_attempts=2, non_retryable=["x"])
        assert p.policy.max_attempts == 2 and p.policy.non_retryable == ("x",)
        sub = await client.submit("mail", {}, non_retryable=["y"])
        assert (await client.get(sub.id)).max_attempts == 2
        assert (await client.retry_policy("mail")).policy.non_retryable == ("x",)
        assert [q.job_type for q in await client.retry_policies()] == ["mail"]
        await client.delete_retry_policy("mail")
        assert await client.retry_policies() == []
    finally:
        await client.close()


async def test_both_ways_in_resolve_the_precedence_alike(deps: Deps) -> None:
    """The submit-time precedence (maxAttempts: submission > stored policy > handler > global;
    backoff merged key by key, submission over policy) is written once, in SQL: the one-statement
    INSERT and the bulk COPY path (which asks RESOLVE_RETRY_POLICIES) store the same values for
    every combination of levels, and those values are the documented ones."""
    await store.put_retry_policy(deps, "full", RetryPolicy(
        4, {"baseMs": 10, "factor": 2.0, "capMs": 100, "jitter": False}, None))
    await store.put_retry_policy(deps, "partial", RetryPolicy(None, {"capMs": 700}, None))
    await store.put_retry_policy(deps, "empty", RetryPolicy(None, None, None))
    cases = [(jt, ma, bo, hma)
             for jt in ("full", "partial", "empty", "none")
             for ma in (None, 2)
             for bo in (None, {"baseMs": 5}, {"capMs": 9, "jitter": True})
             for hma in (None, 8)]
    specs = [spec(jt, queue="prec", max_attempts=ma, backoff=bo, handler_max_attempts=hma)
             for jt, ma, bo, hma in cases]
    reps = jobs.COPY_MIN_JOBS // len(specs) + 1
    await jobs.submit_many(deps, [spec(queue="prec")])  # a known queue: the fast path
    by_copy = (await jobs.submit_many(deps, specs * reps))[:len(specs)]
    by_insert = await jobs.submit_many(deps, specs)

    async def stored(results: list[jobs.SubmitResult]) -> list[tuple[int, Any]]:
        rows = {r["id"]: r for r in await deps.pool.fetch(
            "SELECT id, max_attempts, backoff FROM jobs WHERE id = ANY($1)",
            [r.submitted.id for r in results])}
        return [(rows[r.submitted.id]["max_attempts"], rows[r.submitted.id]["backoff"])
                for r in results]

    copied, inserted = await stored(by_copy), await stored(by_insert)
    assert copied == inserted
    policy_ma = {"full": 4}
    policy_bo: dict[str, dict[str, Any]] = {
        "full": {"baseMs": 10, "factor": 2.0, "capMs": 100, "jitter": False},
        "partial": {"capMs": 700}}
    for (jt, ma, bo, hma), (got_ma, got_bo) in zip(cases, copied, strict=True):
        assert got_ma == (ma or policy_ma.get(jt) or hma or deps.settings.default_max_attempts)
        assert got_bo == ({**policy_bo.get(jt, {}), **(bo or {})} or None)
