"""The evaluation's workload simulator (bench/ai_sim.py) writes, through the real engine, a
history with the properties it was designed to have: errors that never recover, rate limits
that clear when their window rolls over, outages during which every call fails, failures that
depend on the payload, and arrivals that follow the time of day."""

from __future__ import annotations

import itertools
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from jobline.shared.platform.clock import Clock, FakeClock, from_dt
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import ai_sim

DAY = ai_sim.DAY
SEED = 7
JOBS = 600
#: One accepted call per window: tight enough that a tiny workload meets the limit.
CAPACITY = {"smtp": 1, "partner-api": 1}


@pytest.fixture
def clock() -> Clock:
    return FakeClock(ai_sim.START_MS)


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    return settings.with_(lease_ms=ai_sim.HOUR)


async def test_the_simulated_history_has_the_designed_properties(deps: Deps,
                                                                clock: FakeClock) -> None:
    """One simulation (a few seconds through the engine), every property checked on it."""
    h = await simulate(deps, clock)
    check_error_families(h)
    check_rate_limits_clear_when_the_window_rolls_over(h)
    check_every_call_fails_during_an_outage(h)
    check_payload_and_time_of_day(h)


async def simulate(deps: Deps, clock: FakeClock) -> dict[str, Any]:
    deps.rng = random.Random(SEED)
    world = ai_sim.World(SEED, ai_sim.outages(SEED, ai_sim.START_MS, ai_sim.START_MS + 2 * DAY),
                         dict(CAPACITY))
    sim = ai_sim.Simulator(deps, clock, world, tick_ms=30_000)
    await sim.set_policies()
    arrivals = ai_sim.workload(SEED, ai_sim.START_MS, 1, JOBS)
    stats = await sim.run(arrivals)
    rows = await deps.pool.fetch(
        "SELECT a.job_id, a.attempt, a.started_at, a.outcome, a.error_type, j.job_type, "
        "j.status, j.payload, j.created_at FROM job_attempts a JOIN jobs j ON j.id = a.job_id "
        "ORDER BY a.job_id, a.attempt")
    attempts = [{**dict(r), "at": from_dt(r["started_at"])} for r in rows]
    by_job: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for a in attempts:
        by_job[a["job_id"]].append(a)
    return {"stats": stats, "world": world, "attempts": attempts, "by_job": by_job,
            "arrivals": arrivals}


def check_error_families(history: dict[str, Any]) -> None:
    st, by_job, attempts = history["stats"], history["by_job"], history["attempts"]
    assert st.submitted == len(history["arrivals"]) == len(by_job)
    assert 0.8 * JOBS <= st.submitted <= 1.2 * JOBS
    # everything ran to an end: completed or dead-lettered
    assert {a["status"] for a in attempts} <= {"completed", "dead_letter"}
    seen = Counter(a["error_type"] for a in attempts if a["outcome"] != "completed")
    for family in ("validation_error", "client_error", "rate_limited", "network_error",
                   "resource_exhausted", "timeout"):
        assert seen[family] > 0, (family, seen)

    # never recover: a validation error ends the job at once (the engine's non-retryable
    # list); a client error fails every one of the fixed policy's 5 attempts
    for runs in by_job.values():
        first = runs[0]["error_type"]
        if first == "validation_error":
            assert len(runs) == 1 and runs[0]["status"] == "dead_letter"
        if first == "client_error":
            assert [r["error_type"] for r in runs] == ["client_error"] * 5
            assert runs[0]["status"] == "dead_letter"


def check_rate_limits_clear_when_the_window_rolls_over(history: dict[str, Any]) -> None:
    """Per fixed window a dependency accepts CAPACITY calls; a rejected call happens only in a
    window already full, and a job rejected once gets through in a later window."""
    accepted: Counter[tuple[str, int]] = Counter()
    limited: list[tuple[str, int]] = []
    for a in history["attempts"]:
        dep = ai_sim.TYPES[a["job_type"]].dependency
        if dep is None or ai_sim.DEPENDENCIES[dep].window_s is None:
            continue
        key = (dep, a["at"] // (ai_sim.DEPENDENCIES[dep].window_s * 1000))
        if a["error_type"] == "rate_limited" and a["outcome"] != "completed":
            limited.append(key)
        elif a["outcome"] == "completed" or a["error_type"] in ("network_error", "timeout"):
            accepted[key] += 1
    assert limited
    assert all(n <= CAPACITY[k[0]] for k, n in accepted.items())
    assert all(accepted[k] == CAPACITY[k[0]] for k in limited)
    cleared = 0
    for runs in history["by_job"].values():
        for prev, cur in itertools.pairwise(runs):
            if prev["error_type"] == "rate_limited" and cur["outcome"] == "completed":
                w = ai_sim.DEPENDENCIES[ai_sim.TYPES[cur["job_type"]].dependency].window_s
                assert cur["at"] // (w * 1000) > prev["at"] // (w * 1000)
                cleared += 1
    assert cleared > 0


def check_every_call_fails_during_an_outage(history: dict[str, Any]) -> None:
    world: ai_sim.World = history["world"]
    during = [a for a in history["attempts"]
              if (dep := ai_sim.TYPES[a["job_type"]].dependency) is not None
              and world.down(dep, a["at"])]
    assert during  # the nightly maintenance window of payments-api at least
    # (validation errors are found before the call is made)
    assert {a["error_type"] for a in during} <= {"dependency_unavailable", "validation_error",
                                                  "client_error"}
    assert any(a["error_type"] == "dependency_unavailable" for a in during)
    assert not any(a["outcome"] == "completed" for a in during)


def check_payload_and_time_of_day(history: dict[str, Any]) -> None:
    big, small = Counter[bool](), Counter[bool]()
    for a in history["attempts"]:
        if a["job_type"] != "video.transcode":
            continue
        c = big if a["payload"]["sizeMb"] > ai_sim.SIZE_LIMIT_MB else small
        c[a["outcome"] == "completed"] += 1
    assert sum(big.values()) >= 5
    rate_big = big[False] / sum(big.values())
    rate_small = small[False] / sum(small.values())
    assert rate_big >= 5 * rate_small, (big, small)
    # arrivals: business hours (09-17) busier than the night (00-06) per hour
    hours = Counter(from_dt(a["created_at"]) // ai_sim.HOUR % 24
                    for runs in history["by_job"].values() for a in runs[:1])
    assert sum(hours[h] for h in range(9, 17)) / 8 > 2 * sum(hours[h] for h in range(6)) / 6


def test_the_scaling_comparison_charges_at_least_the_work_it_reports() -> None:
    """Busy time can never exceed worker time: every policy's worker-hours over the scored
    days are at least the scored arrivals' run time (work conservation), and the arrivals the
    report states are the scored ones (not the warm-up day's too), so the heading's
    ``arrivals x mean run time`` is the work the worker-hours are compared with."""
    # three days of history at 2 jobs a minute (4 in the afternoon), run times near 10 s
    start = ai_sim.START_MS
    per_min = {start + m * ai_sim.MIN: 4 if (m // 60) % 24 in range(12, 18) else 2
               for m in range(3 * 1440)}
    durs = [9_000, 10_000, 11_000]
    r = ai_sim.compare_scaling("q", per_min, durs, start, start + 3 * DAY, seed=SEED, days=1,
                               load=2.0, target_ms=30_000)
    work_h = r["arrivals"] * r["meanServiceS"] / 3600
    runs = [*r["reactive"], *r["advisors"]]
    for x in runs:
        assert x["workerHours"] >= work_h * 0.98, (x["policy"], x["workerHours"], work_h)
        # the simulation's own tally of run time inside the scored days agrees
        assert x["busyHours"] <= x["workerHours"], x
        assert x["busyHours"] == pytest.approx(work_h, rel=0.03), x
        assert x["busyHours"] == pytest.approx(r["workHours"], abs=0.2), x
    # the floors the report sets the goal against: the work, then the clairvoyant Erlang C
    assert r["workHours"] <= r["erlangFloorHours"]
    assert r["goalReachable"] == (r["goalLineHours"] >= r["workHours"])


def test_step_scaling_answers_a_burst_in_one_tick() -> None:
    """The step-scaling baseline adds ``ceil(backlog / T)`` workers at a tick where the
    one-per-tick policy adds one: on a burst of 200 one-minute jobs its jobs wait far less,
    and it pays for the workers it starts at once."""
    start = ai_sim.START_MS
    arrivals = [start + 1_000] * 200
    durations = [60_000] * 200
    common = {"target_ms": 30_000, "start_ms": start, "end_ms": start + ai_sim.HOUR,
              "score_from_ms": start, "threshold": 10}
    one = ai_sim.des(arrivals, durations, "reactive", **common)
    step = ai_sim.des(arrivals, durations, "reactive-step", **common)
    assert one["policy"] == "reactive(T=10)" and step["policy"] == "reactive-step(T=10)"
    # one worker a tick drains 200 minutes of work over many minutes; the first step tick
    # starts 20 workers (200 / 10), the next ones more while the backlog stays above 10
    assert step["p95WaitS"] < one["p95WaitS"] / 3, (step, one)
    assert step["busyHours"] == pytest.approx(one["busyHours"])
    assert step["workerHours"] >= step["busyHours"]


def test_the_reference_is_the_cheapest_reactive_setting_of_either_kind_meeting_the_sla() -> None:
    start = ai_sim.START_MS
    per_min = {start + m * ai_sim.MIN: 4 if (m // 60) % 24 in range(12, 18) else 2
               for m in range(3 * 1440)}
    r = ai_sim.compare_scaling("q", per_min, [9_000, 10_000, 11_000], start, start + 3 * DAY,
                               seed=SEED, days=1, load=2.0, target_ms=30_000)
    names = [x["policy"] for x in r["reactive"]]
    assert names == [*(f"reactive(T={t})" for t in ai_sim.REACTIVE_THRESHOLDS),
                     *(f"reactive-step(T={t})" for t in ai_sim.STEP_THRESHOLDS)]
    meeting = [x for x in r["reactive"] if x["shareMet"] >= 0.95]
    assert meeting  # two busy workers on average: some threshold keeps the SLA
    assert r["reference"] == min(meeting, key=lambda x: x["workerHours"])["policy"]
    ref_h = min(x["workerHours"] for x in meeting)
    assert r["goalLineHours"] == pytest.approx(0.85 * ref_h, abs=0.06)
