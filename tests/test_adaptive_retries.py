"""Adaptive retries (issue 17): the advisor decides retry or not and how soon for jobs whose
policy says ``adaptive``, from a recovery table trained on the store's own attempt history;
every decision is recorded on the attempt; the remaining attempts and the configured
non-retryable types are respected; a global switch turns it off."""

from __future__ import annotations

import random
import uuid
from typing import Any

import httpx
import orjson
import pytest

from jobline.analytics.ai import retry as retry_training
from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec, Outcome, Status
from jobline.shared.platform.clock import FakeClock, from_dt
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps
from jobline.shared.retry import adaptive
from jobline.shared.retry import policy_store as store
from jobline.shared.retry.policy import RetryPolicy

ADAPTIVE = {"adaptive": True}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    return settings.with_(lease_ms=3_600_000, backoff_base_ms=1_000, backoff_cap_ms=60_000)


@pytest.fixture
def deps(deps: Deps) -> Deps:
    deps.rng = random.Random(11)
    adaptive.forget(deps)
    return deps


def spec(job_type: str = "api.call", **kw: Any) -> JobSpec:
    return JobSpec(queue=kw.pop("queue", f"q{uuid.uuid4().hex[:6]}"), job_type=job_type,
                   payload={"n": 1}, **kw)


async def fail_once(deps: Deps, s: JobSpec, error_type: str,
                    handler: RetryPolicy | None = None) -> tuple[uuid.UUID, Status]:
    [sub] = await jobs.submit_many(deps, [s])
    [c] = await jobs.claim(deps, "w", [s.queue], 1)
    assert c.id == sub.submitted.id
    rep = await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error="it broke",
                                         error_type=error_type)],
                          [c.attempt], [c.backoff], handler_policies=[handler])
    return c.id, rep.statuses[c.id]


async def decision_of(deps: Deps, job_id: uuid.UUID) -> dict[str, Any] | None:
    raw = await deps.pool.fetchval(
        "SELECT retry_decision::text FROM job_attempts WHERE job_id = $1 "
        "ORDER BY lease_token DESC LIMIT 1", job_id)
    return orjson.loads(raw) if raw is not None else None


async def history(deps: Deps, clock: FakeClock, job_type: str, error_type: str, n: int,
                  base_ms: int, clears_after_ms: int | None) -> None:
    """``n`` jobs on the fixed policy (full jitter over ``base_ms``): each fails once with
    ``error_type``; its retry succeeds when at least ``clears_after_ms`` passed (never if None)."""
    for _ in range(n):
        s = spec(job_type, backoff={"baseMs": base_ms, "factor": 1.0, "jitter": True,
                                    "capMs": 3_600_000},
                 max_attempts=2)
        job_id, _ = await fail_once(deps, s, error_type)
        failed_at = clock.now_ms()
        due = from_dt(await deps.pool.fetchval(
            "SELECT scheduled_for FROM jobs WHERE id = $1", job_id))
        clock.set(max(due, failed_at))
        [c] = await jobs.claim(deps, "w", [s.queue], 1)
        gap = clock.now_ms() - failed_at
        if clears_after_ms is not None and gap >= clears_after_ms:
            await jobs.complete(deps, [Outcome(c.id, c.token, ok=True, result=None)])
        else:
            await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error="again",
                                           error_type=error_type)], [c.attempt], [c.backoff])
        clock.advance(1_000)


async def test_without_history_validation_errors_stop_and_others_keep_the_fixed_backoff(
        deps: Deps, clock: FakeClock) -> None:
    job_id, status = await fail_once(deps, spec(backoff=ADAPTIVE, max_attempts=5),
                                     "SchemaInvalid")
    assert status == Status.DEAD_LETTER
    d = await decision_of(deps, job_id)
    assert d is not None and d["retry"] is False and "validation" in d["reason"]

    # the same failure of a job that is not adaptive is retried, with nothing recorded
    job_id, status = await fail_once(deps, spec(max_attempts=5), "SchemaInvalid")
    assert status in (Status.SCHEDULED, Status.PENDING)
    assert await decision_of(deps, job_id) is None

    job_id, status = await fail_once(deps, spec(backoff=ADAPTIVE, max_attempts=5), "Boom")
    assert status in (Status.SCHEDULED, Status.PENDING)
    d = await decision_of(deps, job_id)
    assert d is not None and d["retry"] is True and d["successProbability"] is None
    due = from_dt(await deps.pool.fetchval("SELECT scheduled_for FROM jobs WHERE id = $1",
                                           job_id))
    assert due - clock.now_ms() == d["delayMs"] <= 1_000  # the fixed first backoff


async def test_trained_advisor_waits_out_a_rate_limit_and_drops_what_never_recovers(
        deps: Deps, clock: FakeClock) -> None:
    # history on the fixed policy: rate limits clear after 30 s; corrupt input never does,
    # even after waits of up to 10 minutes
    await history(deps, clock, "api.call", "RateLimited", 80, 120_000, 30_000)
    await history(deps, clock, "api.call", "CorruptInput", 30, 600_000, None)
    out = await retry_training.train(deps, days=1)
    assert out["followUps"] == 110 and out["version"] == 1

    job_id, status = await fail_once(deps, spec(backoff=ADAPTIVE, max_attempts=5),
                                     "RateLimited")
    assert status == Status.SCHEDULED
    d = await decision_of(deps, job_id)
    assert d is not None and d["retry"] is True
    assert 30_000 <= d["delayMs"] <= 60_000, d
    assert d["successProbability"] > 0.8 and "succeeded after waiting" in d["reason"]
    due = from_dt(await deps.pool.fetchval("SELECT scheduled_for FROM jobs WHERE id = $1",
                                           job_id))
    assert due == clock.now_ms() + d["delayMs"]

    job_id, status = await fail_once(deps, spec(backoff=ADAPTIVE, max_attempts=5),
                                     "CorruptInput")
    d = await decision_of(deps, job_id)
    assert status == Status.DEAD_LETTER, d
    assert d is not None and d["retry"] is False and "does not clear" in d["reason"]

    # the fixed policy is untouched for jobs that are not adaptive
    job_id, status = await fail_once(deps, spec(max_attempts=5), "CorruptInput")
    assert status in (Status.SCHEDULED, Status.PENDING)
    assert await decision_of(deps, job_id) is None


async def test_remaining_attempts_and_configured_non_retryable_types_are_respected(
        deps: Deps) -> None:
    job_id, status = await fail_once(deps, spec(backoff=ADAPTIVE, max_attempts=1), "Boom")
    assert status == Status.DEAD_LETTER
    d = await decision_of(deps, job_id)
    assert d is not None and d["retry"] is False and d["reason"] == "no attempts left (1 of 1)"

    # a configured non-retryable type stays the policy's decision: no advice recorded
    job_id, status = await fail_once(
        deps, spec(backoff=ADAPTIVE, max_attempts=5, non_retryable=("Boom",)), "Boom")
    assert status == Status.DEAD_LETTER and await decision_of(deps, job_id) is None


async def test_policy_and_handler_levels_turn_it_on_and_a_submission_turns_it_off(
        deps: Deps) -> None:
    await store.put_retry_policy(deps, "typed", RetryPolicy(max_attempts=4, adaptive=True))
    assert (await store.get_retry_policy(deps, "typed")).policy.adaptive is True
    job_id, status = await fail_once(deps, spec("typed"), "ValidationError")
    assert status == Status.DEAD_LETTER and (await decision_of(deps, job_id))["retry"] is False

    job_id, status = await fail_once(deps, spec("typed", backoff={"adaptive": False}),
                                     "ValidationError")
    assert status in (Status.SCHEDULED, Status.PENDING)
    assert await decision_of(deps, job_id) is None

    job_id, status = await fail_once(deps, spec("handled", max_attempts=4), "ValidationError",
                                     RetryPolicy(adaptive=True))
    assert status == Status.DEAD_LETTER and await decision_of(deps, job_id) is not None


async def test_global_switches_turn_the_advisor_off(deps: Deps) -> None:
    await adaptive.set_enabled(deps, False)
    job_id, status = await fail_once(deps, spec(backoff=ADAPTIVE, max_attempts=5),
                                     "SchemaInvalid")
    assert status in (Status.SCHEDULED, Status.PENDING)
    assert await decision_of(deps, job_id) is None
    await adaptive.set_enabled(deps, True)
    job_id, status = await fail_once(deps, spec(backoff=ADAPTIVE, max_attempts=5),
                                     "SchemaInvalid")
    assert status == Status.DEAD_LETTER

    deps.settings = deps.settings.with_(adaptive_retries=False)
    adaptive.forget(deps)
    job_id, status = await fail_once(deps, spec(backoff=ADAPTIVE, max_attempts=5),
                                     "SchemaInvalid")
    assert status in (Status.SCHEDULED, Status.PENDING)
    assert await decision_of(deps, job_id) is None


async def test_rest_and_graphql_carry_the_flag_the_switch_and_the_decisions(
        deps: Deps, admin: httpx.AsyncClient) -> None:
    r = await admin.put("/api/v1/retry-policies/rest.type", json={"adaptive": "yes"})
    assert r.status_code == 422 and "adaptive" in r.text
    r = await admin.put("/api/v1/retry-policies/rest.type", json={"adaptive": True,
                                                                   "maxAttempts": 4})
    assert r.status_code == 200 and r.json()["adaptive"] is True
    assert (await admin.get("/api/v1/retry-policies/rest.type")).json()["adaptive"] is True

    r = await admin.post("/api/v1/jobs", json={"jobType": "rest.type", "queue": "restq",
                                               "adaptive": 1})
    assert r.status_code == 422 and "adaptive" in r.text
    assert await deps.pool.fetchval("SELECT count(*) FROM jobs WHERE queue_name = 'restq'") == 0
    r = await admin.post("/api/v1/jobs", json={"jobType": "rest.type", "queue": "restq"})
    assert r.status_code == 201, r.text
    job_id = uuid.UUID(r.json()["jobId"])
    [c] = await jobs.claim(deps, "w", ["restq"], 1)
    await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error="bad field",
                                   error_type="ValidationError")], [c.attempt], [c.backoff])
    job = (await admin.get(f"/api/v1/jobs/{job_id}")).json()
    assert job["status"] == "dead_letter"
    [a] = job["attemptHistory"]
    assert a["retryDecision"]["retry"] is False and a["retryDecision"]["delayMs"] == 0

    q = await admin.post("/graphql", json={"query": f"""{{ job(id: "{job_id}") {{
        attemptHistory {{ retryDecision {{ retry delayMs successProbability reason }} }} }} }}"""})
    [ga] = q.json()["data"]["job"]["attemptHistory"]
    assert ga["retryDecision"]["retry"] is False
    assert ga["retryDecision"]["reason"] == a["retryDecision"]["reason"]

    r = await admin.put("/api/v1/ai/adaptive-retries", json={"enabled": "no"})
    assert r.status_code == 422 and "enabled" in r.text
    r = await admin.put("/api/v1/ai/adaptive-retries", json={"enabled": False})
    assert r.status_code == 200
    assert r.json() == {"enabled": False, "setting": True, "runtime": False,
                        "modelVersion": None}
    q = await admin.post("/graphql", json={"query": "mutation { setAdaptiveRetries(enabled: "
                                                    "true) { enabled runtime } }"})
    assert q.json()["data"]["setAdaptiveRetries"] == {"enabled": True, "runtime": True}
    assert (await admin.get("/api/v1/ai/adaptive-retries")).json()["enabled"] is True


def test_the_decision_rule_picks_the_shortest_wait_that_recovers_nearly_as_often() -> None:
    pairs = ([("t", "Outage", False, 10_000)] * 40 + [("t", "Outage", True, 400_000)] * 18
             + [("t", "Outage", False, 400_000)] * 2 + [("t", "Outage", True, 2_000_000)] * 20)
    m = adaptive.Model.parse(1, orjson.dumps(retry_training.table(pairs)).decode())
    d = adaptive.decide(m, "t", "Outage", 1_000, 3_600_000)
    # 300 s-10 min recovers 18/20, 30-60 min 20/20: 10 more minutes buys too little
    assert d.retry and d.delay_ms == 400_000 and "18 of 20" in d.reason
    assert adaptive.decide(m, "t", "Outage", 1_000, 300_000).delay_ms == 300_000  # the cap
    # other job types learn from the error type pooled over types
    assert "any job type" in adaptive.decide(m, "u", "Outage", 1_000, 3_600_000).reason


def test_when_the_longest_waits_seen_do_best_it_waits_longer_than_any_seen() -> None:
    # a fixed backoff that never waited past 80 s, against a limit that lasts minutes:
    # success rises with the wait but stays low
    pairs = ([("t", "RateLimited", False, 3_000)] * 30 + [("t", "RateLimited", False, 20_000)] * 30
             + [("t", "RateLimited", True, 40_000)] * 6 + [("t", "RateLimited", False, 40_000)] * 24
             + [("t", "RateLimited", True, 70_000)] * 12
             + [("t", "RateLimited", False, 70_000)] * 18)
    m = adaptive.Model.parse(1, orjson.dumps(retry_training.table(pairs)).decode())
    d = adaptive.decide(m, "t", "RateLimited", 1_000, 3_600_000)
    assert d.retry and d.delay_ms == 140_000 and "longer than any seen" in d.reason
    assert d.success_probability is not None and d.success_probability < adaptive.PLATEAU


async def test_an_outage_longer_than_any_follow_up_waited_is_waited_out(
        deps: Deps, clock: FakeClock) -> None:
    """The fixed backoff retried within a minute, so its follow-ups only show that waiting a
    minute fails; the fresh jobs failing until each outage ended show how long it lasted."""
    queue = f"q{uuid.uuid4().hex[:6]}"
    backoff = {"baseMs": 60_000, "factor": 1.0, "jitter": True, "capMs": 3_600_000}
    outage_ms, tick_ms = 600_000, 10_000
    start = clock.now_ms()
    for k in range(3 * 2 * outage_ms // tick_ms):  # three cycles: 10 min down, 10 min up
        now = start + k * tick_ms
        clock.set(now)
        down = (now - start) % (2 * outage_ms) < outage_ms
        if k % 3 == 0:  # a fresh job every 30 s
            await jobs.submit_many(deps, [JobSpec(queue=queue, job_type="pay.charge",
                                                  payload={"n": k}, backoff=backoff,
                                                  max_attempts=3)])
        for c in await jobs.claim(deps, "w", [queue], 100):
            if down:
                await jobs.fail(deps, [Outcome(c.id, c.token, ok=False, error="503",
                                               error_type="Unavailable")],
                                [c.attempt], [c.backoff])
            else:
                await jobs.complete(deps, [Outcome(c.id, c.token, ok=True, result=None)])
    out = await retry_training.train(deps, days=1)
    assert out["followUps"] >= 40
    m = adaptive.Model.parse(out["version"], await deps.pool.fetchval(
        "SELECT model::text FROM ai_models WHERE kind = $1 AND version = $2",
        adaptive.KIND, out["version"]))
    stats, _ = m.stats("pay.charge", "Unavailable")
    assert stats is not None and stats.max_gap_ms < 120_000  # no follow-up waited 2 minutes

    # (the job's backoff cap bounds the wait: the fixture's default cap is a minute)
    job_id, status = await fail_once(deps, spec("pay.charge", backoff={**ADAPTIVE,
                                                                        "capMs": 3_600_000},
                                                max_attempts=5), "Unavailable")
    assert status == Status.SCHEDULED
    d = await decision_of(deps, job_id)
    assert d is not None and d["retry"] is True, d
    # 90% of the failures saw the type complete again within the outage's remaining time
    assert 8 * 60_000 <= d["delayMs"] <= 11 * 60_000, d
    assert "completed again within" in d["reason"] and d["successProbability"] >= 0.85


def table_of(rows: list[tuple[int, int, int]], error_type: str = "E") -> adaptive.Model:
    """A model from (gap ms, follow-ups, successes) rows of one job type "t"."""
    pairs = [("t", error_type, i < ok, gap) for gap, n, ok in rows for i in range(n)]
    return adaptive.Model.parse(1, orjson.dumps(retry_training.table(pairs)).decode())


def test_retries_that_rarely_succeed_whatever_the_wait_are_not_made() -> None:
    # 12% succeed after 5 s, 1 min or 10 min alike (a job's own timeouts): not hopeless, but
    # each retry is far likelier wasted than not
    m = table_of([(5_000, 100, 12), (60_000, 100, 12), (600_000, 100, 12)], "Timeout")
    d = adaptive.decide(m, "t", "Timeout", 1_000, 3_600_000)
    assert not d.retry and "whatever the wait" in d.reason, d
    # the same rate rising with the wait is a wait too short, not a lost cause
    m = table_of([(5_000, 100, 2), (60_000, 100, 8), (600_000, 100, 19)], "Timeout")
    assert adaptive.decide(m, "t", "Timeout", 1_000, 3_600_000).retry


def test_a_lucky_handful_of_follow_ups_does_not_set_the_wait() -> None:
    # 55 of 100 after 5 s, 4 of 5 after a minute: by point estimate the minute looks better
    # (5/7 smoothed), by its lower bound it is not
    m = table_of([(5_000, 100, 55), (60_000, 5, 4)])
    d = adaptive.decide(m, "t", "E", 1_000, 3_600_000)
    assert d.retry and d.delay_ms == 5_000, d
    lo, hi = adaptive.bounds(4, 5)
    assert lo < adaptive.bounds(55, 100)[0] < 0.55 < 4 / 5 < hi


def test_the_last_attempt_takes_the_best_wait() -> None:
    # 88% after 5 s is near 95% after a minute: a job with attempts to spare retries soon,
    # its last attempt waits the minute
    m = table_of([(5_000, 100, 88), (60_000, 100, 95)])
    assert adaptive.decide(m, "t", "E", 1_000, 3_600_000, 3).delay_ms == 5_000
    d = adaptive.decide(m, "t", "E", 1_000, 3_600_000, 1)
    assert d.retry and d.delay_ms == 60_000 and "last attempt" in d.reason, d


def test_only_an_error_that_comes_in_runs_is_waited_out() -> None:
    # a type's own timeouts: 30% of retries succeed after 5 s; on a quiet night, two in a row
    # left a quarter of them 30 minutes from the type's next completion
    pairs = [("t", "Timeout", i < 30, 5_000) for i in range(100)]
    clears: list[tuple[str, str, int | None]] = [
        ("t", "Timeout", 1_800_000 if i < 10 else 0) for i in range(40)]

    def model(same: int) -> adaptive.Model:
        # 40 fresh jobs failed with it and were followed by another; ``same`` of those failed
        # with it too; it is 5% of the type's 800 fresh jobs
        runs = [("t", "Timeout", 40, same), ("t", "", 760, 740)]
        return adaptive.Model.parse(1, orjson.dumps(
            {**retry_training.table(pairs),
             "clears": retry_training.clear_table(clears, runs)}).decode())

    # 2 of 40 (5%) is the base rate: chance, not a duration
    c, _ = model(2).clears("t", "Timeout")
    assert c is not None and not c.in_runs() and c.wait_for(0.9) == 1_800_000
    d = adaptive.decide(model(2), "t", "Timeout", 1_000, 3_600_000)
    assert d.retry and d.delay_ms == 5_000, d
    # 30 of 40 is a run (an outage): waited out
    d = adaptive.decide(model(30), "t", "Timeout", 1_000, 3_600_000)
    assert d.retry and d.delay_ms == 1_800_000 and "completed again within" in d.reason, d
