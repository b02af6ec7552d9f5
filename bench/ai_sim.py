"""A workload simulator that runs through the real engine, and the evaluations built on it
(issue 17, ``make ai-eval``).

**The simulator.** Five job types on five queues, each calling a dependency or working on a
payload, with error families that each recover in their own way:

==========================  ==================================================================
error type                  recovery behaviour (how the simulator decides an attempt)
==========================  ==================================================================
``validation_error``        never: ``invoice.generate`` with ``lines == 0`` (the engine's
                            default non-retryable list already stops it)
``client_error``            never (4xx-like, not in the default list): ``email.send`` with the
                            ``legacy_v1`` template, ``webhook.deliver`` to a gone endpoint
``rate_limited``            clears when the dependency's window of ``W`` seconds rolls over:
                            at most ``capacity`` accepted calls per fixed window
``dependency_unavailable``  every attempt fails while an outage of the dependency lasts
                            (random outages of 5-40 minutes, plus a nightly 03:00-03:15
                            maintenance window of ``payments-api``)
``network_error``           transient: each attempt fails with probability ``p`` (three times
                            higher in the busy afternoon hours), independently of the last
``resource_exhausted``      payload-dependent: ``video.transcode`` above ``SIZE_LIMIT_MB``
                            fails 55% of attempts, below it 1%
``timeout``                 run time grows with the payload (MB of video, rows of a report);
                            past the type's timeout the attempt times out, again and again
==========================  ==================================================================

Arrivals follow a time-of-day profile (night 0.25, business hours 1.0, evening 0.5; weekends
halved; a 09:00 e-mail campaign burst). The simulator drives the engine in-process with a
:class:`FakeClock`: ``submit_many`` at each tick, ``claim_batch`` whatever is due, then
``complete``/``fail`` with each attempt's own ``finished_ms`` (start + simulated run time), so
``jobs``/``job_attempts`` hold the history exactly as workers would have written it (the
retry times come from the engine's own backoff). The rollups are rebuilt from the raw rows
(``jobline analytics rebuild``) at the end. The workers are not modelled here: every due job
starts at the next tick (the scaling evaluation below models workers).

Determinism: the workload comes from ``random.Random(seed)``; each attempt's chance draws
from ``random.Random(f"{seed}:{job}:{attempt}")``, so replaying a workload under another retry
policy gives attempt *n* of a job the same luck; the engine's jitter uses ``deps.rng`` seeded too.

**Evaluations** (``python bench/ai_sim.py``; each on data later than what its model saw):

- *prediction*: ``predict.train`` on the simulated history (its own time-ordered holdout,
  the newest 20% of attempts), model vs the per-type rate baseline;
- *scaling*: a discrete-event simulation of one queue's workers over the simulated days'
  arrival pattern (per-minute submissions of the history, scaled to ``--scale-load`` busy
  workers on average) and its measured run-time distribution, comparing reactive
  backlog-threshold policies (one worker added per 30 s tick, or step scaling:
  ``ceil(backlog / T)`` at once; each over a grid of thresholds T) with the scaling advisor
  (``scaling.plan``: Erlang C with the recent arrival rate or the same span one week
  earlier, whichever is higher, plus the backlog term; see ``ADVISOR_VARIANTS``): share of
  5-minute windows whose p95 wait meets the target, and worker-hours;
- *retries*: ``--replay-days`` (default 2) more days of workload after the history, replayed
  twice from the same store state (two clones of the database): the fixed exponential policy,
  and adaptive retries with the advisor trained on the history; wasted retries (retry attempts
  that failed again) and eventual success.

    python bench/ai_sim.py --jobs 20000 --days 14 --out /tmp/sim   # or via bench/ai_eval.py
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import heapq
import json
import math
import random
import statistics
import sys
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from jobline.analytics.ai import scaling
from jobline.analytics.rebuild import rebuild
from jobline.shared.core import jobs as core
from jobline.shared.core.models import ClaimedJob, JobSpec, Outcome
from jobline.shared.platform.clock import FakeClock, to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.ids import uuid7_floor
from jobline.shared.retry.policy import RetryPolicy
from jobline.shared.retry.policy_store import put_retry_policy

SEC = 1000
MIN = 60_000
HOUR = 3_600_000
DAY = 86_400_000
#: 2026-01-05, a Monday, 00:00 UTC
START_MS = 1_767_571_200_000
SIZE_LIMIT_MB = 1500
#: The scaling simulation's arrivals are capped (a pure-Python event loop: ~1 s per 100k).
MAX_DES_ARRIVALS = 400_000
#: The advisor's settings the scaling evaluation runs: (re-plan every, arrival rate measured
#: over, forecast horizon, share of jobs to start within the target). The first is what
#: ``scaling.recommend`` answers (the last hour's rate, the next hour's forecast, the SLA's
#: 95%); the second an autoscaler that re-plans every minute for the next re-plan plus a
#: worker's start-up, planning for 97% (at 95% it met 94.6% of `media`'s windows on the
#: tuning days). Chosen on the days a week before the scored ones (``--scale-shift-days 7``,
#: whose arrival pattern and run times come from the days before them), never on the scored
#: days.
ADVISOR_VARIANTS = ((5 * MIN, HOUR, HOUR, scaling.SERVICE_LEVEL), (1 * MIN, 5 * MIN, 90 * SEC, 0.97))
#: The autoscaler setting with the modelled share tuned per queue (an extra row for the queues
#: named), chosen on the tuning days by a rule fixed beforehand: the cheapest setting meeting
#: the SLA in >= 96% of the windows (1 point of margin for the day-to-day noise) among the
#: levels 0.85-0.97 with scale-down windows (``des``' ``down_window_ms``) of 0, 2 and 5
#: minutes, 0.60-0.80 with 0 or 1 minute (`reports`), 0.80-0.93 with 1 minute (`media`).
#: On `reports` 75% met 96.3% of the tuning days' windows at 597.1 worker-hours (97%: 99.0%
#: at 627.7; a scale-down window only ever added worker-hours); on `media` the rule keeps
#: 97% (96.8%; 95% met 94.6%, a 1-minute window at 93% 96.9% at 8.3 more worker-hours).
#: The Erlang C tail bound is loose for a p95 per 5-minute window on 6 s jobs (the backlog
#: term answers the bursts), so a lower modelled share still meets the SLA there.
ADVISOR_QUEUE_LEVELS: dict[str, float] = {"reports": 0.75}
#: The reactive baselines (``des`` policies, each over a grid of backlog thresholds T): one
#: worker added per 30 s tick while the backlog exceeds T, and step scaling (ceil(backlog / T)
#: workers at once), the two an operator configures on a queue-length metric.
REACTIVE = ("reactive", "reactive-step")
REACTIVE_THRESHOLDS = (1, 2, 5, 10, 20, 50)
STEP_THRESHOLDS = (2, 5, 10, 20, 50)
#: The evaluations ``run_all`` can run on the history (``--only``).
PARTS = frozenset({"prediction", "scaling", "retries"})
#: The fixed exponential policy every job type gets (the arm adaptive retries are measured
#: against): 5 attempts, 10 s doubling to at most 15 minutes, full jitter.
FIXED_POLICY = RetryPolicy(max_attempts=5,
                           backoff={"baseMs": 10_000, "factor": 2.0, "capMs": 900_000})

# --- the scenario ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dependency:
    name: str
    #: rate limit: accepted calls per fixed window (None: no limit); set from the workload
    window_s: int | None = None
    rate_factor: float = 1.0
    outages_per_day: float = 0.0
    #: (start minute of day, minutes): an outage every day (maintenance)
    nightly: tuple[int, int] | None = None


@dataclass(frozen=True)
class JobType:
    name: str
    queue: str
    share: float
    timeout_ms: int
    dependency: str | None
    #: transient network error probability per attempt (off-peak; x3 in 13:00-18:00 UTC)
    network_p: float


JOB_TYPES = (
    JobType("video.transcode", "media", 0.20, 60_000, None, 0.005),
    JobType("email.send", "email", 0.30, 10_000, "smtp", 0.02),
    JobType("invoice.generate", "billing", 0.15, 20_000, "payments-api", 0.01),
    JobType("webhook.deliver", "webhooks", 0.25, 10_000, "partner-api", 0.03),
    JobType("report.build", "reports", 0.10, 30_000, None, 0.01),
)
TYPES = {t.name: t for t in JOB_TYPES}
DEPENDENCIES = {
    "smtp": Dependency("smtp", window_s=300, rate_factor=2.5),
    "payments-api": Dependency("payments-api", outages_per_day=0.7, nightly=(180, 15)),
    "partner-api": Dependency("partner-api", window_s=120, rate_factor=2.5, outages_per_day=1.2),
}
CODECS = ("h264", "h265", "vp9", "av1")
TEMPLATES = ("welcome", "digest", "reset", "receipt", "legacy_v1")
CURRENCIES = ("EUR", "USD", "GBP", "JPY")
FORMATS = ("csv", "pdf", "xlsx")
GONE_ENDPOINTS = frozenset(range(1, 201, 17))  # 12 of 200 endpoints answer 410


def hour_profile(at_ms: int) -> float:
    """Relative arrival rate at a time of day/week (1.0 = business hours)."""
    d = datetime.fromtimestamp(at_ms / 1000, UTC)
    h = d.hour + d.minute / 60
    if h < 6:
        v = 0.25
    elif h < 9:
        v = 0.25 + 0.75 * (h - 6) / 3
    elif h < 17:
        v = 1.0
    elif h < 21:
        v = 1.0 - 0.5 * (h - 17) / 4
    else:
        v = 0.5 - 0.25 * (h - 21) / 3
    return v * (0.5 if d.weekday() >= 5 else 1.0)


def busy_hours(at_ms: int) -> bool:
    """13:00-18:00 UTC: the hours network errors are three times as likely."""
    return 13 <= (at_ms // HOUR) % 24 < 18


@dataclass
class Arrival:
    idx: int
    at_ms: int
    job_type: str
    payload: dict[str, Any]


def _payload(rng: random.Random, job_type: str) -> dict[str, Any]:
    if job_type == "video.transcode":
        return {"sizeMb": round(rng.lognormvariate(math.log(300), 1.1), 1),
                "codec": rng.choice(CODECS), "resolution": rng.choice((720, 1080, 2160))}
    if job_type == "email.send":
        return {"template": rng.choices(TEMPLATES, (30, 25, 20, 20, 5))[0],
                "recipients": rng.randint(1, 50)}
    if job_type == "invoice.generate":
        return {"lines": 0 if rng.random() < 0.03 else rng.randint(1, 200),
                "currency": rng.choice(CURRENCIES)}
    if job_type == "webhook.deliver":
        return {"endpointId": rng.randint(1, 200), "bytes": rng.randint(200, 20_000)}
    return {"rows": int(rng.lognormvariate(math.log(20_000), 1.0)),
            "format": rng.choice(FORMATS)}


def workload(seed: int, start_ms: int, days: float, jobs: int, first_idx: int = 0
             ) -> list[Arrival]:
    """About ``jobs`` arrivals over ``days`` from ``start_ms`` (Poisson per minute with the
    time-of-day profile; a 20-minute e-mail campaign at 09:00 on weekdays)."""
    rng = random.Random(f"workload:{seed}:{start_ms}")
    minutes = int(days * 24 * 60)
    weights = [hour_profile(start_ms + m * MIN) for m in range(minutes)]
    per_weight = jobs / sum(weights)
    names = [t.name for t in JOB_TYPES]
    shares = [t.share for t in JOB_TYPES]
    out: list[Arrival] = []
    idx = first_idx
    for m, w in enumerate(weights):
        t0 = start_ms + m * MIN
        n = _poisson(rng, w * per_weight)
        types = rng.choices(names, shares, k=n)
        mod = (t0 // MIN) % (24 * 60)
        if 540 <= mod < 560 and hour_profile(t0) >= 1.0:  # the campaign: 3x the e-mail rate
            types += ["email.send"] * _poisson(rng, 2 * 0.3 * w * per_weight)
        for jt in types:
            out.append(Arrival(idx, t0 + rng.randrange(MIN), jt, _payload(rng, jt)))
            idx += 1
    out.sort(key=lambda a: (a.at_ms, a.idx))
    return out


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    n, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return n
        n += 1


def outages(seed: int, start_ms: int, end_ms: int) -> dict[str, list[tuple[int, int]]]:
    """Each dependency's outage intervals in ``[start_ms, end_ms)`` (sorted)."""
    out: dict[str, list[tuple[int, int]]] = {}
    for d in DEPENDENCIES.values():
        rng = random.Random(f"outages:{seed}:{d.name}")
        spans: list[tuple[int, int]] = []
        if d.outages_per_day:
            t = start_ms
            while True:
                t += int(rng.expovariate(d.outages_per_day / DAY))
                if t >= end_ms:
                    break
                spans.append((t, t + rng.randint(5, 40) * MIN))
        if d.nightly:
            first, length = d.nightly
            day = start_ms // DAY * DAY
            while day < end_ms:
                spans.append((day + first * MIN, day + (first + length) * MIN))
                day += DAY
        out[d.name] = sorted(spans)
    return out


# --- what one attempt does ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    ok: bool
    error_type: str | None
    duration_ms: int


@dataclass
class World:
    """The outside world the jobs talk to: dependency outages and rate-limit windows."""

    seed: int
    outages: dict[str, list[tuple[int, int]]]
    #: accepted calls per fixed window allowed for each rate-limited dependency
    capacity: dict[str, int]
    used: dict[tuple[str, int], int] = field(default_factory=lambda: defaultdict(int))

    def down(self, dep: str, at_ms: int) -> bool:
        return any(s <= at_ms < e for s, e in self.outages.get(dep, ()))

    def attempt(self, a: Arrival, attempt: int, at_ms: int) -> Result:
        """Run attempt ``attempt`` of ``a`` at ``at_ms`` (the order of checks is the order a
        real handler meets them: input, the dependency, the network, the work itself)."""
        t = TYPES[a.job_type]
        p = a.payload
        rng = random.Random(f"{self.seed}:{a.idx}:{attempt}")
        if a.job_type == "invoice.generate" and p["lines"] == 0:
            return Result(False, "validation_error", 40)
        if (a.job_type == "email.send" and p["template"] == "legacy_v1") or (
                a.job_type == "webhook.deliver" and p["endpointId"] in GONE_ENDPOINTS):
            return Result(False, "client_error", 150 + rng.randrange(100))
        if t.dependency is not None:
            dep = DEPENDENCIES[t.dependency]
            if self.down(dep.name, at_ms):
                return Result(False, "dependency_unavailable", 1000 + rng.randrange(2000))
            if dep.window_s is not None:
                key = (dep.name, at_ms // (dep.window_s * SEC))
                if self.used[key] >= self.capacity[dep.name]:
                    return Result(False, "rate_limited", 30 + rng.randrange(40))
                self.used[key] += 1
        if rng.random() < t.network_p * (3 if busy_hours(at_ms) else 1):
            return Result(False, "network_error", 200 + rng.randrange(3000))
        noise = rng.lognormvariate(0, 0.3)
        if a.job_type == "video.transcode":
            run = (2000 + 20 * p["sizeMb"] * (1.6 if p["resolution"] == 2160 else 1.0)) * noise
        elif a.job_type == "report.build":
            run = (500 + p["rows"] / 8) * (1.5 if p["format"] == "pdf" else 1.0) * noise
        elif a.job_type == "email.send":
            run = (300 + 20 * p["recipients"]) * noise
        elif a.job_type == "invoice.generate":
            run = (800 + 15 * p["lines"]) * noise
        else:
            run = (150 + p["bytes"] / 100) * noise
        if run > t.timeout_ms:
            return Result(False, "timeout", t.timeout_ms)
        if a.job_type == "video.transcode" and rng.random() < (
                0.55 if p["sizeMb"] > SIZE_LIMIT_MB else 0.01):
            return Result(False, "resource_exhausted", int(run * rng.random()))
        return Result(True, None, max(1, int(run)))


def capacities(jobs: int, days: float) -> dict[str, int]:
    """Each rate-limited dependency's calls per window: ``rate_factor`` x its average demand
    per window, so the limit bites in the busy hours and in the e-mail campaign."""
    out = {}
    for d in DEPENDENCIES.values():
        if d.window_s is None:
            continue
        share = sum(t.share for t in JOB_TYPES if t.dependency == d.name)
        per_window = jobs * share / (days * DAY / (d.window_s * SEC))
        out[d.name] = max(2, round(d.rate_factor * per_window))
    return out


# --- driving the engine ------------------------------------------------------------------------


@dataclass
class RunStats:
    ticks: int = 0
    submitted: int = 0
    attempts: int = 0
    seconds: float = 0.0


class Simulator:
    """Feeds a workload through the engine on ``deps`` (whose clock must be ``clock``)."""

    def __init__(self, deps: Deps, clock: FakeClock, world: World, *,
                 tick_ms: int = 15 * SEC) -> None:
        self.deps, self.clock, self.world, self.tick_ms = deps, clock, world, tick_ms
        self.by_id: dict[uuid.UUID, Arrival] = {}
        self.queues = sorted({t.queue for t in JOB_TYPES})

    async def set_policies(self, policy: RetryPolicy = FIXED_POLICY) -> None:
        for t in JOB_TYPES:
            await put_retry_policy(self.deps, t.name, policy)

    async def run(self, arrivals: list[Arrival], *, drain: bool = True) -> RunStats:
        """Submit ``arrivals`` at their ticks and run every due attempt, until the workload is
        submitted and (with ``drain``) nothing is pending or scheduled any more."""
        st = RunStats()
        t0 = time.perf_counter()
        i = 0
        t = self.clock.now_ms() if not arrivals else arrivals[0].at_ms // self.tick_ms * self.tick_ms
        while True:
            self.clock.set(t)
            st.ticks += 1
            batch = []
            while i < len(arrivals) and arrivals[i].at_ms < t + self.tick_ms:
                batch.append(arrivals[i])
                i += 1
            if batch:
                res = await core.submit_many(self.deps, [
                    JobSpec(queue=TYPES[a.job_type].queue, job_type=a.job_type,
                            payload=a.payload, timeout_ms=TYPES[a.job_type].timeout_ms)
                    for a in batch], positions=False)
                for a, r in zip(batch, res, strict=True):
                    assert r.submitted is not None, r
                    self.by_id[r.submitted.id] = a
                st.submitted += len(batch)
            next_due = None
            while True:
                cr = await core.claim_batch(self.deps, "sim-worker", self.queues, 1000)
                if not cr.jobs:
                    next_due = cr.next_due_ms
                    break
                st.attempts += len(cr.jobs)
                await self._finish(cr.jobs, t)
            nxt = [x for x in (arrivals[i].at_ms if i < len(arrivals) else None,
                               next_due if drain or i < len(arrivals) else None)
                   if x is not None]
            if not nxt:
                break
            t = max(t + self.tick_ms, -(-min(nxt) // self.tick_ms) * self.tick_ms)
        st.seconds = time.perf_counter() - t0
        return st

    async def _finish(self, claimed: list[ClaimedJob], t: int) -> None:
        oks: list[Outcome] = []
        bad: list[tuple[Outcome, ClaimedJob]] = []
        for j in claimed:
            r = self.world.attempt(self.by_id[j.id], j.attempt, t)
            if r.ok:
                oks.append(Outcome(id=j.id, token=j.token, ok=True, result={"ok": True},
                                   finished_ms=t + r.duration_ms))
            else:
                bad.append((Outcome(id=j.id, token=j.token, ok=False,
                                    error=f"{r.error_type}: simulated", error_type=r.error_type,
                                    finished_ms=t + r.duration_ms), j))
        if oks:
            await core.complete(self.deps, oks)
        if bad:
            await core.fail(self.deps, [o for o, _ in bad], [j.attempt for _, j in bad],
                            [j.backoff for _, j in bad])


async def rebuild_rollups(deps: Deps, from_ms: int, to_ms: int) -> dict[str, Any]:
    return await rebuild(deps, from_ms, to_ms)


# --- scaling: reactive threshold vs the advisor ------------------------------------------------


@dataclass(eq=False)  # identity: two idle workers with equal fields are still two
class _Worker:
    #: creation order: breaks ties in the event heap (``id()`` would make runs differ)
    seq: int
    ready_ms: int
    created_ms: int
    busy_until: int = 0
    idle_since: int = 0
    retiring: bool = False
    ended_ms: int | None = None


def des(arrivals: list[int], durations: list[int], policy: str, *, target_ms: int,
        start_ms: int, end_ms: int, score_from_ms: int, threshold: int = 10,
        startup_ms: int = 30 * SEC, idle_ms: int = 60 * SEC, replan_ms: int = 5 * MIN,
        window_ms: int = 5 * MIN, mean_service_ms: float | None = None,
        min_workers: int = 1, max_workers: int = 2000,
        rate_window_ms: int = scaling.WINDOW_MS, forecast_ms: int = scaling.WINDOW_MS,
        before: list[int] | None = None,
        level: float = scaling.SERVICE_LEVEL, down_window_ms: int = 0) -> dict[str, Any]:
    """One queue's workers (one job at a time each), FIFO, over ``arrivals`` (ms, sorted) with
    run times ``durations`` (same length). ``policy`` is ``reactive`` (every 30 s: add one
    worker while the backlog is above ``threshold``; remove workers idle for ``idle_ms``),
    ``reactive-step`` (step scaling, as AWS step scaling or KEDA's queue-length scaler: every
    30 s, while the backlog is above ``threshold``, add ``ceil(backlog / threshold)`` workers
    at once, up to ``max_workers``; idle workers leave as for ``reactive``) or
    ``advisor`` (every ``replan_ms``: the worker count ``scaling.plan`` asks for, with the
    rate of the last ``rate_window_ms`` and, as the forecast, the rate of the next
    ``forecast_ms`` one week earlier, as ``scaling.recommend`` looks it up, for ``level`` of
    the jobs to start within the target; ``before`` holds
    the week of arrivals before ``start_ms``, only looked at; ``down_window_ms``: shrink
    only to the largest count asked for over that span). New workers take ``startup_ms``
    to start, and a worker-second is charged from its creation (start-up included) to its end,
    the same for every policy. Windows of ``window_ms`` (by arrival) from ``score_from_ms``
    meet the SLA when their p95 wait is at most ``target_ms``; worker-hours are counted from
    ``score_from_ms`` too."""
    workers: list[_Worker] = [_Worker(k, start_ms, start_ms) for k in range(min_workers)]
    queue: deque[tuple[int, int]] = deque()  # (arrival ms, run ms)
    free: list[_Worker] = list(workers)
    done: list[tuple[int, int]] = []  # heap (finish or ready ms, worker seq)
    by_id = {w.seq: w for w in workers}
    waits: dict[int, list[int]] = defaultdict(list)
    tick = 30 * SEC if policy in REACTIVE else replan_ms
    next_tick = start_ms
    s_ms = mean_service_ms or statistics.fmean(durations)
    ia = 0
    # what the advisor can look up: the week before and the arrivals so far (sorted)
    history = [*(before or ()), *arrivals]
    history_from = history[0] if history else start_ms
    wants: deque[tuple[int, int]] = deque()  # the advisor's recent asks (time ms, workers)

    def count(lo: int, hi: int) -> int:
        return bisect.bisect_left(history, hi) - bisect.bisect_left(history, lo)

    busy_ms = 0  # run time inside [score_from_ms, end_ms): never more than the worker time

    def start(w: _Worker, at: int, job: tuple[int, int]) -> None:
        nonlocal busy_ms
        w.busy_until = at + job[1]
        busy_ms += max(0, min(w.busy_until, end_ms) - max(at, score_from_ms))
        if job[0] >= score_from_ms:
            waits[(job[0] - score_from_ms) // window_ms].append(at - job[0])
        heapq.heappush(done, (w.busy_until, w.seq))

    def add(at: int) -> None:
        w = _Worker(len(workers), at + startup_ms, at)
        workers.append(w)
        by_id[w.seq] = w
        heapq.heappush(done, (w.ready_ms, w.seq))  # becomes free when ready

    def retire(w: _Worker, at: int) -> None:
        w.ended_ms = at
        if w in free:
            free.remove(w)

    def active() -> list[_Worker]:
        return [w for w in workers if w.ended_ms is None and not w.retiring]

    while True:
        t_arr = arrivals[ia] if ia < len(arrivals) else math.inf
        t_done = done[0][0] if done else math.inf
        t_tick = next_tick if next_tick < end_ms else math.inf
        t = min(t_arr, t_done, t_tick)
        if t == math.inf:
            break
        if t == t_done:
            _, wid = heapq.heappop(done)
            w = by_id[wid]
            if w.ended_ms is not None:
                continue
            if w.retiring:
                retire(w, int(t))
                continue
            if queue:
                start(w, int(t), queue.popleft())
            else:
                w.idle_since = int(t)
                free.append(w)
        elif t == t_arr:
            job = (arrivals[ia], durations[ia])
            ia += 1
            if free:
                start(free.pop(), int(t), job)
            else:
                queue.append(job)
        else:
            next_tick += tick
            now = int(t)
            live = active()
            if policy in REACTIVE:
                if len(queue) > threshold and len(live) < max_workers:
                    # one worker a tick, or (step scaling) one per ``threshold`` waiting jobs
                    n = 1 if policy == "reactive" else math.ceil(len(queue) / threshold)
                    for _ in range(min(n, max_workers - len(live))):
                        add(now)
                else:
                    for w in list(free):
                        if now - w.idle_since >= idle_ms and len(active()) > min_workers:
                            w.retiring = True
                            retire(w, now)
            else:
                # arrivals up to now only: the advisor does not see the future
                lam_now = count(now - rate_window_ms, now) / (rate_window_ms / 1000)
                # the seasonal-naive forecast: the same span ahead, one week earlier
                lo = now - scaling.WEEK_MS
                lam_next = (count(lo, lo + forecast_ms) / (forecast_ms / 1000)
                            if lo >= history_from else 0.0)
                want = max(min_workers, min(max_workers, scaling.plan(
                    lam_now, lam_next, s_ms / 1000, target_ms / 1000, len(queue),
                    level=level)["suggested"]))
                # scale-down stabilisation (as the Kubernetes HPA's): shrink only to the
                # largest count asked for over the last ``down_window_ms``, so a dip between
                # two busy minutes does not retire workers that a 30 s start-up brings back
                wants.append((now, want))
                while wants[0][0] < now - down_window_ms:
                    wants.popleft()
                want = max(x for _, x in wants)
                have = len(live)
                # a worker told to leave but still busy is kept before a new one is started
                leaving = [w for w in workers if w.retiring and w.ended_ms is None]
                for _ in range(want - have):
                    if leaving:
                        leaving.pop().retiring = False
                    else:
                        add(now)
                if want < have:
                    # idle workers go first, then the busy ones finish their job and leave
                    extra = have - want
                    for w in sorted(live, key=lambda w: w not in free):
                        if extra == 0:
                            break
                        w.retiring = True
                        if w in free:
                            retire(w, now)
                        extra -= 1
    hours = 0.0
    for w in workers:
        lo = max(w.created_ms, score_from_ms)
        hi = min(w.ended_ms if w.ended_ms is not None else end_ms, end_ms)
        hours += max(0, hi - lo) / HOUR
    windows = (end_ms - score_from_ms) // window_ms
    met = 0
    p95s: list[float] = []
    for k in range(windows):
        ws = sorted(waits.get(k, []))
        if not ws:
            met += 1
            continue
        p95 = ws[min(len(ws) - 1, math.ceil(0.95 * len(ws)) - 1)]
        p95s.append(p95)
        met += p95 <= target_ms
    all_waits = sorted(w for ws in waits.values() for w in ws)
    return {"policy": f"{policy}(T={threshold})" if policy in REACTIVE else policy,
            "windows": windows, "windowsMet": met, "shareMet": met / max(1, windows),
            "workerHours": round(hours, 1), "busyHours": round(busy_ms / HOUR, 1),
            "p95WaitS": round(all_waits[int(0.95 * (len(all_waits) - 1))] / 1000, 2)
            if all_waits else None,
            "worstWindowP95S": round(max(p95s) / 1000, 1) if p95s else None}


def _weekend(at_ms: int) -> bool:
    return datetime.fromtimestamp(at_ms / 1000, UTC).weekday() >= 5


def _day_profile(per_min: dict[int, int], from_ms: int, to_ms: int
                 ) -> dict[bool, list[float]]:
    """Mean submissions per minute of the day, per kind of day (weekend or not), smoothed
    over +-30 minutes (circularly); a kind of day the history lacks takes the other's."""
    sums = {False: [0.0] * 1440, True: [0.0] * 1440}
    days = {False: 0, True: 0}
    for day in range(from_ms, to_ms, DAY):
        if day + DAY > to_ms:
            break
        w = _weekend(day)
        days[w] += 1
        for k in range(1440):
            sums[w][k] += per_min.get(day + k * MIN, 0)
    out: dict[bool, list[float]] = {}
    for w in (False, True):
        if not days[w]:
            continue
        mean = [v / days[w] for v in sums[w]]
        out[w] = [sum(mean[(k + d) % 1440] for d in range(-30, 31)) / 61 for k in range(1440)]
    for w in (False, True):
        if w not in out:
            out[w] = out[not w]
    return out


async def scaling_inputs(deps: Deps, queue: str, from_ms: int, to_ms: int
                         ) -> tuple[dict[int, int], list[int], list[int]]:
    """``queue``'s submissions per minute (minute start ms -> count), and its attempts' run
    times (ms) with their start times (ms), from the raw history before ``to_ms``."""
    rows = await deps.pool.fetch(
        "SELECT (extract(epoch FROM created_at) * 1000)::bigint / 60000 AS m, count(*) AS n "
        "FROM jobs WHERE queue_name = $1 AND created_at >= $2 AND created_at < $3 GROUP BY 1",
        queue, to_dt(from_ms), to_dt(to_ms))
    att = await deps.pool.fetch(
        "SELECT (extract(epoch FROM a.started_at) * 1000)::bigint AS at, a.duration_ms "
        "FROM job_attempts a JOIN jobs j ON j.id = a.job_id WHERE j.queue_name = $1 "
        "AND a.duration_ms IS NOT NULL AND a.started_at < $2 ORDER BY a.job_id, a.attempt",
        queue, to_dt(to_ms))
    return ({int(r["m"]) * MIN: int(r["n"]) for r in rows},
            [int(r["duration_ms"]) for r in att], [int(r["at"]) for r in att])


async def eval_scaling(deps: Deps, queue: str, from_ms: int, to_ms: int, **kw: Any
                       ) -> dict[str, Any]:
    per_min, durs, started = await scaling_inputs(deps, queue, from_ms, to_ms)
    return compare_scaling(queue, per_min, durs, from_ms, to_ms, durs_started=started, **kw)


def compare_scaling(queue: str, per_min: dict[int, int], durs: list[int], from_ms: int,
                    to_ms: int, *, seed: int, days: int, load: float, target_ms: int,
                    thresholds: tuple[int, ...] = REACTIVE_THRESHOLDS,
                    step_thresholds: tuple[int, ...] = STEP_THRESHOLDS,
                    durs_started: list[int] | None = None) -> dict[str, Any]:
    """The scaling comparison for ``queue`` over the last ``days`` of ``[from_ms, to_ms)`` (one
    day before them is simulated but not scored, so every policy starts the scored days with a
    fleet of its own making; the week before that is generated for the advisor's seasonal
    forecast only).

    Two floors are reported with it: ``workHours``, the scored arrivals' run time (no policy
    can be charged less: a worker runs one job at a time), and ``erlangFloorHours``, the slots
    Erlang C needs minute by minute with the true arrival rate and workers that start at once
    (a clairvoyant advisor). ``goalLineHours`` (85% of the reference's worker-hours) below the
    first means the goal cannot be met by any policy."""
    if not per_min or not durs:
        return {"queue": queue, "error": "no history for this queue"}
    end = to_ms // MIN * MIN
    begin = max(from_ms // MIN * MIN, end - (days + 1) * DAY)
    score_from = begin + DAY if end - begin > DAY else begin
    # the arrival pattern: the history's submissions per minute of the day, averaged over the
    # days of the same kind (weekday / weekend) and smoothed over +-30 minutes (the history's
    # few jobs per minute are mostly Poisson noise, which scaled up would be fake bursts),
    # then scaled so the average offered load is ``load`` busy workers
    mins = list(range(begin, end, MIN))
    profile = _day_profile(per_min, from_ms // DAY * DAY, to_ms)
    smooth = [profile[_weekend(m)][(m // MIN) % 1440] for m in mins]
    mean_s = statistics.fmean(durs) / 1000
    seconds = (end - begin) / 1000
    # a queue of short jobs at that load would need millions of simulated arrivals: the load
    # is lowered to keep the run to MAX_DES_ARRIVALS (reported as ``offeredLoad``)
    load = min(load, MAX_DES_ARRIVALS * mean_s / seconds)
    scale = load / (statistics.fmean(smooth) / 60 * mean_s) if any(smooth) else 0.0
    rng = random.Random(f"scaling:{seed}:{queue}")
    arrivals: list[int] = []
    for m, v in zip(mins, smooth, strict=True):
        n = _poisson(rng, v * scale)
        arrivals += sorted(m + rng.randrange(MIN) for _ in range(n))
    durations = [rng.choice(durs) for _ in arrivals]
    # the week before: the same pattern, its own draws (what the forecast looks back at)
    rng_before = random.Random(f"scaling:{seed}:{queue}:before")
    before: list[int] = []
    for m in range(begin - scaling.WEEK_MS, begin, MIN):
        n = _poisson(rng_before, profile[_weekend(m)][(m // MIN) % 1440] * scale)
        before += sorted(m + rng_before.randrange(MIN) for _ in range(n))
    first = bisect.bisect_left(arrivals, score_from)
    work_h = sum(durations[first:]) / HOUR
    # the advisor's mean run time: what the history measured before the scored days (the
    # workload draws from the whole history's run times; the advisor must not see them)
    known = [d for d, at in zip(durs, durs_started, strict=True) if at < score_from] \
        if durs_started is not None else durs
    floor_h = sum(scaling.slots_for(v * scale / 60, mean_s, target_ms / 1000)
                  for m, v in zip(mins, smooth, strict=True) if m >= score_from) / 60
    common: dict[str, Any] = {"target_ms": target_ms, "start_ms": begin, "end_ms": end,
                              "score_from_ms": score_from,
                              "mean_service_ms": statistics.fmean(known or durs)}
    t = time.perf_counter()
    runs = [*(des(arrivals, durations, "reactive", threshold=th, **common) for th in thresholds),
            *(des(arrivals, durations, "reactive-step", threshold=th, **common)
              for th in step_thresholds)]
    # the reference: the cheapest reactive setting of either kind meeting the SLA in 95% of
    # the windows (what an operator would settle on), else the one with the best share
    best = [r for r in runs if r["shareMet"] >= 0.95]
    ref = min(best, key=lambda r: r["workerHours"]) if best else max(
        runs, key=lambda r: r["shareMet"])
    advisors = []
    variants = list(ADVISOR_VARIANTS)
    if queue in ADVISOR_QUEUE_LEVELS:
        variants.append((1 * MIN, 5 * MIN, 90 * SEC, ADVISOR_QUEUE_LEVELS[queue]))
    for replan, window, horizon, level in variants:
        r = des(arrivals, durations, "advisor", replan_ms=replan, rate_window_ms=window,
                forecast_ms=horizon, before=before, level=level, **common)
        r["policy"] = (f"advisor (re-plan {replan // MIN} min, rate over {window // MIN} min, "
                       f"forecast {_span(horizon)}, {level:.0%} within target)")
        r["workerHoursSaved"] = (round(1 - r["workerHours"] / ref["workerHours"], 3)
                                 if ref["workerHours"] else None)
        r["goalMet"] = (r["shareMet"] >= 0.95 and ref["workerHours"] > 0
                        and r["workerHours"] <= 0.85 * ref["workerHours"])
        advisors.append(r)
    goal_h = 0.85 * ref["workerHours"]
    return {
        "queue": queue, "days": (end - score_from) / DAY,
        "from": to_dt(score_from).isoformat(), "to": to_dt(end).isoformat(),
        # the scored days' arrivals: the warm-up day's are simulated but neither scored nor
        # charged, so they must not be set against the worker-hours
        "arrivals": len(arrivals) - first, "warmupArrivals": first,
        "scale": round(scale, 1), "meanServiceS": round(mean_s, 2),
        "offeredLoad": round(load, 1), "targetWaitS": target_ms / 1000,
        "workHours": round(work_h, 1), "erlangFloorHours": round(floor_h, 1),
        "goalLineHours": round(goal_h, 1), "goalReachable": goal_h >= work_h,
        "reactive": runs, "advisors": advisors, "reference": ref["policy"],
        "seconds": round(time.perf_counter() - t, 1),
    }


def _saved(v: float | None) -> str:
    if v is None:
        return "— worker-hours"
    return f"{abs(v):.1%} {'fewer' if v >= 0 else 'more'} worker-hours"


def _span(ms: int) -> str:
    return f"{ms // MIN} min" if ms % MIN == 0 else f"{ms / SEC:.0f} s"


# --- retries: the same workload under two policies --------------------------------------------


async def retry_stats(deps: Deps, from_ms: int) -> dict[str, Any]:
    """Wasted retries and eventual success of the jobs created from ``from_ms`` on."""
    floor = uuid7_floor(from_ms)
    a = await deps.pool.fetchrow(
        "SELECT count(*) FILTER (WHERE attempt > 1) AS retries, "
        "count(*) FILTER (WHERE attempt > 1 AND outcome <> 'completed') AS wasted, "
        "count(*) AS attempts FROM job_attempts WHERE job_id >= $1", floor)
    j = await deps.pool.fetchrow(
        "SELECT count(*) AS jobs, count(*) FILTER (WHERE status = 'completed') AS completed, "
        "count(*) FILTER (WHERE status = 'dead_letter') AS dead FROM jobs WHERE id >= $1", floor)
    # per error type: the retries it caused (a retry is wasted when it failed again, recovered
    # when it completed), and the jobs whose first attempt failed with it and how many of those
    # completed in the end (where eventual success is lost or won)
    by_error = {r["error_type"]: {"retries": int(r["retries"]), "wasted": int(r["wasted"]),
                                  "recovered": int(r["retries"]) - int(r["wasted"])}
                for r in await deps.pool.fetch(
                    "SELECT coalesce(p.error_type, 'none') AS error_type, count(*) AS retries, "
                    "count(*) FILTER (WHERE a.outcome <> 'completed') AS wasted "
                    "FROM job_attempts a JOIN job_attempts p ON p.job_id = a.job_id "
                    "AND p.attempt = a.attempt - 1 WHERE a.job_id >= $1 AND a.attempt > 1 "
                    "GROUP BY 1 ORDER BY 2 DESC", floor)}
    by_first = {r["e"]: {"jobs": int(r["jobs"]), "completed": int(r["completed"])}
                for r in await deps.pool.fetch(
                    "SELECT coalesce(a.error_type, 'error') AS e, count(*) AS jobs, "
                    "count(*) FILTER (WHERE j.status = 'completed') AS completed "
                    "FROM job_attempts a JOIN jobs j ON j.id = a.job_id "
                    "WHERE a.job_id >= $1 AND a.attempt = 1 AND a.outcome <> 'completed' "
                    "GROUP BY 1 ORDER BY 2 DESC", floor)}
    n = int(j["jobs"])
    return {"jobs": n, "attempts": int(a["attempts"]), "retries": int(a["retries"]),
            "wastedRetries": int(a["wasted"]), "completed": int(j["completed"]),
            "deadLetters": int(j["dead"]),
            "eventualSuccess": int(j["completed"]) / n if n else None,
            "byPreviousError": by_error, "byFirstError": by_first}


async def decision_stats(deps: Deps, from_ms: int) -> dict[str, Any]:
    """The advisor's recorded decisions (``job_attempts.retry_decision``) by error type."""
    rows = await deps.pool.fetch(
        "SELECT coalesce(error_type, 'error') AS e, (retry_decision->>'retry')::bool AS retry, "
        "count(*) AS n, avg((retry_decision->>'delayMs')::bigint) AS delay "
        "FROM job_attempts WHERE job_id >= $1 AND retry_decision IS NOT NULL "
        "GROUP BY 1, 2 ORDER BY 1, 2", uuid7_floor(from_ms))
    out: dict[str, Any] = defaultdict(dict)
    for r in rows:
        out[r["e"]]["retry" if r["retry"] else "stop"] = {
            "n": int(r["n"]), "meanDelayS": round(float(r["delay"] or 0) / 1000, 1)}
    return dict(out)


# --- one full run ------------------------------------------------------------------------------


def _json_default(v: Any) -> Any:
    return str(v)


async def run_all(*, jobs: int, days: int, seed: int, tick_s: int, replay_days: float,
                  scale_queues: list[str], scale_days: int, scale_load: float,
                  target_s: float, base_dir: str | None = None,
                  parts: frozenset[str] = frozenset(),
                  scale_shift_days: int = 0) -> dict[str, Any]:
    """The history, then the evaluations named in ``parts`` (empty: all of ``PARTS``)."""
    import stores
    from ai_eval import eval_prediction

    from jobline.shared.platform.config import Settings
    from jobline.shared.platform.connections import connect

    parts = parts or PARTS
    out: dict[str, Any] = {"jobs": jobs, "days": days, "seed": seed, "tickS": tick_s,
                           "replayDays": replay_days}
    end = START_MS + days * DAY
    replay_end = end + int(replay_days * DAY)
    world = World(seed, outages(seed, START_MS, replay_end + DAY), capacities(jobs, days))
    out["world"] = {"capacityPerWindow": world.capacity,
                    "outages": {k: len(v) for k, v in world.outages.items()}}
    async with stores.local("aisim", external=False, base_dir=base_dir) as svc:
        clock = FakeClock(START_MS)
        settings = Settings().with_(database_url=svc.database_url, redis_url=svc.redis_url,
                                    redis_prefix="aisim", lease_ms=HOUR)
        deps = await connect(settings, clock)
        deps.rng = random.Random(seed)
        try:
            sim = Simulator(deps, clock, world, tick_ms=tick_s * SEC)
            await sim.set_policies()
            arrivals = workload(seed, START_MS, days, jobs)
            st = await sim.run(arrivals)
            clock.set(max(clock.now_ms(), end))
            rb = await rebuild_rollups(deps, START_MS, clock.now_ms())
            out["history"] = {"submitted": st.submitted, "attempts": st.attempts,
                              "ticks": st.ticks, "seconds": round(st.seconds, 1),
                              "rebuildSeconds": rb["seconds"],
                              **await history_facts(deps, START_MS)}
            if "prediction" in parts:
                out["prediction"] = await eval_prediction(deps, days)
            if "scaling" in parts:
                out["scaling"] = [await eval_scaling(
                    deps, q, START_MS, end - scale_shift_days * DAY, seed=seed, days=scale_days, load=scale_load,
                    target_ms=int(target_s * SEC)) for q in scale_queues]
            history_end = clock.now_ms()
        finally:
            await deps.close()
        if "retries" in parts:
            out["retries"] = await replay_arms(
                svc, settings, world, seed=seed, jobs=jobs, days=days, start_ms=history_end,
                replay_days=replay_days, tick_ms=tick_s * SEC)
    return out


async def history_facts(deps: Deps, from_ms: int) -> dict[str, Any]:
    floor = uuid7_floor(from_ms)
    rows = await deps.pool.fetch(
        "SELECT coalesce(error_type, 'none') AS e, count(*) AS n FROM job_attempts "
        "WHERE job_id >= $1 GROUP BY 1 ORDER BY 2 DESC", floor)
    st = await deps.pool.fetch(
        "SELECT status, count(*) AS n FROM jobs WHERE id >= $1 GROUP BY 1", floor)
    return {"attemptsByError": {r["e"]: int(r["n"]) for r in rows},
            "jobsByStatus": {r["status"]: int(r["n"]) for r in st}}


async def adaptive_available() -> bool:
    """Whether this engine build has adaptive retries (the retry policy's ``adaptive`` flag)."""
    try:
        import jobline.shared.retry.adaptive  # noqa: F401
    except ImportError:
        return False
    return "adaptive" in RetryPolicy.__dataclass_fields__


async def replay_arms(svc: Any, settings: Any, world: World, *, seed: int, jobs: int, days: int,
                      start_ms: int, replay_days: float, tick_ms: int) -> dict[str, Any]:
    """The next ``replay_days`` of workload, run from two clones of the history's database:
    the fixed policy and (when the engine has it) adaptive retries."""
    import asyncpg

    from jobline.shared.platform.connections import connect

    begin = -(-start_ms // HOUR) * HOUR
    arrivals = workload(seed + 1, begin, replay_days, int(jobs / days * replay_days),
                        first_idx=10_000_000)
    base = svc.database_url.rsplit("/", 1)
    admin = await asyncpg.connect(f"{base[0]}/postgres")
    src = base[1].split("?")[0]
    arms: dict[str, Any] = {"workload": {"jobs": len(arrivals), "days": replay_days,
                                         "from": to_dt(begin).isoformat()}}
    names = ["fixed", "adaptive"] if await adaptive_available() else ["fixed"]
    try:
        for name in names:
            db = f"arm_{name}"
            await admin.execute(f'CREATE DATABASE "{db}" TEMPLATE "{src}"')
        for name in names:
            clock = FakeClock(begin)
            s = settings.with_(database_url=f"{base[0]}/arm_{name}", redis_prefix=f"arm{name}")
            deps = await connect(s, clock)
            deps.rng = random.Random(seed)
            try:
                w = World(seed, world.outages, world.capacity)
                sim = Simulator(deps, clock, w, tick_ms=tick_ms)
                advisor = await enable_adaptive(deps, days) if name == "adaptive" else None
                st = await sim.run(arrivals)
                arms[name] = {**await retry_stats(deps, begin), "seconds": round(st.seconds, 1)}
                if advisor is not None:
                    arms[name]["advisor"] = advisor
                    arms[name]["decisions"] = await decision_stats(deps, begin)
            finally:
                await deps.close()
    finally:
        await admin.close()
    if "adaptive" not in arms:
        arms["adaptive"] = {"available": False,
                            "note": "adaptive retries are not in this engine build "
                                    "(jobline.shared.retry.adaptive is missing): only the fixed "
                                    "exponential policy was replayed"}
    else:
        f, a = arms["fixed"], arms["adaptive"]
        arms["wastedRetriesCut"] = (1 - a["wastedRetries"] / f["wastedRetries"]
                                    if f["wastedRetries"] else None)
        arms["successDeltaPp"] = 100 * (a["eventualSuccess"] - f["eventualSuccess"])
        arms["goalMet"] = (arms["wastedRetriesCut"] is not None
                           and arms["wastedRetriesCut"] >= 0.5 and arms["successDeltaPp"] >= -1)
    return arms


async def enable_adaptive(deps: Deps, days: int) -> dict[str, Any]:
    """Train the retry advisor on the last ``days`` of history (what ``jobline ai train`` does
    for it) and turn adaptive retries on for every type, on top of the fixed policy's attempts
    and backoff (the advisor keeps that backoff where it has no history)."""
    from jobline.analytics.ai import retry as retry_training
    from jobline.shared.retry import adaptive

    trained = await retry_training.train(deps, days=days)
    for t in JOB_TYPES:
        await put_retry_policy(deps, t.name, RetryPolicy(
            max_attempts=FIXED_POLICY.max_attempts, backoff=FIXED_POLICY.backoff,
            adaptive=True))
    adaptive.forget(deps)
    return {"version": trained["version"], "followUps": trained["followUps"],
            "holdout": trained["holdout"]}


# --- report ------------------------------------------------------------------------------------


def prediction_md(p: dict[str, Any]) -> list[str]:
    def g(v: Any, fmt: str = ".3f") -> str:
        return "—" if v is None else format(v, fmt)

    m, b = p["model"], p["baseline"]
    return [
        f"### Failure prediction (holdout: newest {p['rows']['holdout']:,} attempts; "
        f"failure rate {m['failureRate']:.3f})", "",
        "| | model | baseline (type rate) | goal |", "|---|---:|---:|---|",
        f"| ROC-AUC | {g(m['rocAuc'])} | {g(b['rocAuc'])} | ≥ 0.85 |",
        f"| PR-AUC | {g(m['prAuc'])} | {g(b['prAuc'])} | ≥ 2 x {m['failureRate']:.3f} |",
        f"| accuracy | {g(m['accuracy'])} | {g(b['accuracy'])} | ≥ 0.85 |",
        f"| Brier | {g(m['brier'], '.4f')} | {g(b['brier'], '.4f')} | lower |",
        f"| ECE | {g(m['ece'], '.4f')} | {g(b['ece'], '.4f')} | lower |", "",
    ]


def retry_breakdown_md(rt: dict[str, Any]) -> list[str]:
    """Per error type, both arms: the retries it caused, how many were wasted (failed again)
    and recovered (completed), and the jobs it failed first and how many completed."""
    arms = [(k, rt[k]) for k in ("fixed", "adaptive") if "byFirstError" in rt.get(k, {})]
    if not arms:
        return []
    first = arms[0][1]
    errors = sorted({e for _, a in arms for e in (*a["byPreviousError"], *a["byFirstError"])},
                    key=lambda e: (-first["byPreviousError"].get(e, {}).get("retries", 0),
                                   -first["byFirstError"].get(e, {}).get("jobs", 0), e))
    lines = ["By error type: the retries it caused (wasted: failed again; recovered: "
             "completed), and the jobs whose first attempt failed with it (how many completed "
             "in the end):", "",
             "| error type | " + " | ".join(f"{k}: retries | wasted | recovered | jobs | "
                                         f"completed" for k, _ in arms) + " |",
             "|---|" + "---:|---:|---:|---:|---:|" * len(arms)]
    for e in errors:
        cells = []
        for _, a in arms:
            x = a["byPreviousError"].get(e, {"retries": 0, "wasted": 0})
            f = a["byFirstError"].get(e, {"jobs": 0, "completed": 0})
            cells.append(f"{x['retries']:,} | {x['wasted']:,} | "
                         f"{x['retries'] - x['wasted']:,} | {f['jobs']:,} | "
                         f"{f['completed']:,}")
        lines.append(f"| {e} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def markdown(r: dict[str, Any]) -> str:
    def g(v: Any, fmt: str = ".3f") -> str:
        return "—" if v is None else format(v, fmt)

    h = r["history"]
    # runs from before replayDays was recorded: the replay's own record of its days
    replay = r.get("replayDays") or r.get("retries", {}).get("workload", {}).get("days", 2.0)
    lines = [
        f"## Simulator: {h['submitted']:,} jobs over {r['days']} simulated days (seed {r['seed']},"
        f" tick {r['tickS']} s)", "",
        f"Generated by `bench/ai_sim.py` (`--jobs {r['jobs']} --days {r['days']} --replay-days "
        f"{replay:g}`; via `bench/ai_eval.py`: `--sim-jobs`, `--sim-days`, "
        f"`--sim-replay-days`): the jobs "
        f"ran through the real engine ({h['attempts']:,} attempts in {h['seconds']} s), the "
        f"rollups rebuilt from the raw rows.", "",
        "Attempts by error type: " + ", ".join(f"{k} {v:,}" for k, v in
                                               h["attemptsByError"].items()) + ".", ""]
    if "prediction" in r:
        lines += prediction_md(r["prediction"])
    for s in r.get("scaling", ()):
        if "error" in s:
            lines += [f"### Scaling ({s['queue']}): {s['error']}", ""]
            continue
        lines += scaling_markdown(s)
    if "retries" not in r:
        return "\n".join(lines)
    rt = r["retries"]
    f = rt["fixed"]
    lines += [f"### Retries: the next {rt['workload']['days']} day(s), {rt['workload']['jobs']:,} "
              f"jobs, replayed from the same store state", "",
              "| policy | retries | wasted retries | eventual success | dead letters |",
              "|---|---:|---:|---:|---:|",
              f"| fixed exponential (5 attempts, 10 s x 2, cap 15 min) | {f['retries']:,} | "
              f"{f['wastedRetries']:,} | {f['eventualSuccess']:.2%} | {f['deadLetters']:,} |"]
    a = rt["adaptive"]
    if a.get("available") is False:
        lines += ["", f"Adaptive retries: not available — {a['note']}.", ""]
    else:
        lines += [f"| adaptive | {a['retries']:,} | {a['wastedRetries']:,} | "
                  f"{a['eventualSuccess']:.2%} | {a['deadLetters']:,} |", "",
                  "Advisor decisions by error type: " + ", ".join(
                      f"{e}: " + " / ".join(f"{k} {v['n']:,}" + (
                          f" (mean delay {v['meanDelayS']:,.0f} s)" if k == "retry" else "")
                          for k, v in d.items()) for e, d in a["decisions"].items()) + ".", "",
                  f"Wasted retries cut by {g(rt['wastedRetriesCut'], '.1%')}, eventual success "
                  f"{rt['successDeltaPp']:+.2f} pp; goal (≥ 50% fewer, ≤ 1 pp lower) "
                  f"**{'met' if rt['goalMet'] else 'not met'}**.", ""]
    breakdown = retry_breakdown_md(rt)
    if breakdown:
        lines += breakdown
    else:  # a run from before the per-error breakdown
        lines += ["Fixed policy's retries by the error that caused them: " + ", ".join(
            f"{k} {v['wasted']:,}/{v['retries']:,} wasted" for k, v in
            f["byPreviousError"].items()) + ".", ""]
    return "\n".join(lines)


def scaling_markdown(s: dict[str, Any]) -> list[str]:
    """One queue's scaling comparison, with the floors that bound what any policy can save."""
    def g(v: Any, fmt: str = ".1f") -> str:
        return "—" if v is None else format(v, fmt)

    ref = next(x for x in s["reactive"] if x["policy"] == s["reference"])
    lines = [
        f"### Scaling, queue `{s['queue']}` ({s['days']:.0f} days scored"
        + (f", {s['from'][:10]} to {s['to'][:10]}" if "from" in s else "")
        + f"; {s['arrivals']:,} arrivals in them"
        + (f", {s['warmupArrivals']:,} more in the unscored warm-up day"
           if "warmupArrivals" in s else "")
        + f": the history's per-minute pattern x {s['scale']}, mean run time "
        f"{s['meanServiceS']} s, target p95 wait ≤ {s['targetWaitS']:.0f} s per 5-minute "
        f"window)", "",
        "| policy | windows meeting SLA | worker-hours | busy (utilisation) | p95 wait s "
        "| worst window p95 s |",
        "|---|---:|---:|---:|---:|---:|",
        *[f"| {x['policy']} | {x['shareMet']:.1%} | {x['workerHours']:,.1f} | "
          + (f"{x['busyHours']:,.1f} ({x['busyHours'] / x['workerHours']:.0%})"
             if x.get("busyHours") and x["workerHours"] else "—")
          + f" | {g(x['p95WaitS'])} | {g(x['worstWindowP95S'])} |"
          for x in [*s["reactive"], *s["advisors"]]], "",
        f"Against {s['reference']} (the cheapest reactive setting of either kind, one worker "
        f"a tick or step scaling, meeting 95% of windows, else the best one; "
        f"{ref['shareMet']:.1%} of windows): " + "; ".join(
            f"{x['policy']} {_saved(x['workerHoursSaved'])} at {x['shareMet']:.1%} of "
            f"windows, goal (≥ 95% of windows, "
            f"≥ 15% fewer worker-hours) **{'met' if x['goalMet'] else 'not met'}**"
            for x in s["advisors"]) + ".", ""]
    if "workHours" in s:
        lines += [
            f"What any policy can save: the goal line is {s['goalLineHours']:,.1f} "
            f"worker-hours (85% of {s['reference']}). The scored jobs' run time alone is "
            f"{s['workHours']:,.1f} worker-hours (a worker runs one job at a time, so no policy "
            f"is charged less), and Erlang C with the true per-minute arrival rate and workers "
            f"that start at once (a clairvoyant advisor) needs {s['erlangFloorHours']:,.1f}. "
            + ("The goal line is below the work itself: **no policy can meet the goal** on "
               "this queue." if not s["goalReachable"] else
               "The goal line is below the clairvoyant Erlang C floor: meeting it means "
               "running leaner than the steady-state SLA needs even with a perfect forecast."
               if s["goalLineHours"] < s["erlangFloorHours"] else
               f"The goal line leaves {s['goalLineHours'] - s['erlangFloorHours']:,.1f} "
               f"worker-hours above the clairvoyant floor for forecast errors, 30 s start-ups "
               f"and the re-plan cadence."), ""]
    return lines


def add_args(ap: argparse.ArgumentParser, prefix: str = "") -> None:
    ap.add_argument(f"--{prefix}jobs", type=int, default=20_000)
    ap.add_argument(f"--{prefix}days", type=int, default=14)
    ap.add_argument(f"--{prefix}tick-s", type=int, default=15)
    ap.add_argument(f"--{prefix}replay-days", type=float, default=2.0)
    ap.add_argument(f"--{prefix}scale-queues", default="media,reports")
    ap.add_argument(f"--{prefix}scale-days", type=int, default=3)
    ap.add_argument(f"--{prefix}scale-load", type=float, default=20.0,
                    help="average busy workers the scaled arrival pattern offers")
    ap.add_argument(f"--{prefix}target-s", type=float, default=30.0,
                    help="SLA: p95 wait per 5-minute window")
    ap.add_argument(f"--{prefix}scale-shift-days", type=int, default=0,
                    help="score the scaling this many days before the history's end (7: the "
                         "days the advisor's settings were chosen on)")


def kwargs(args: argparse.Namespace, prefix: str = "") -> dict[str, Any]:
    p = prefix.replace("-", "_")
    return {"jobs": getattr(args, f"{p}jobs"), "days": getattr(args, f"{p}days"),
            "tick_s": getattr(args, f"{p}tick_s"), "replay_days": getattr(args, f"{p}replay_days"),
            "scale_queues": [q for q in getattr(args, f"{p}scale_queues").split(",") if q],
            "scale_days": getattr(args, f"{p}scale_days"),
            "scale_load": getattr(args, f"{p}scale_load"),
            "target_s": getattr(args, f"{p}target_s"),
            "scale_shift_days": getattr(args, f"{p}scale_shift_days")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_args(ap)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", default=None, help="write ai_sim.{json,md} here")
    ap.add_argument("--only", default=",".join(sorted(PARTS)),
                    help="comma-separated evaluations to run after the history "
                         "(prediction, scaling, retries; e.g. --only retries)")
    args = ap.parse_args()
    parts = frozenset(p for p in args.only.split(",") if p)
    if not parts <= PARTS:
        ap.error(f"--only: unknown {sorted(parts - PARTS)}")
    r = asyncio.run(run_all(seed=args.seed, base_dir=args.data_dir, parts=parts,
                            **kwargs(args)))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "ai_sim.json").write_text(json.dumps(r, indent=2, default=_json_default))
        (out / "ai_sim.md").write_text(markdown(r))
    print(markdown(r))


if __name__ == "__main__":
    main()
