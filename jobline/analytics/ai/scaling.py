"""Scaling advice from queueing theory (issue 17, item 3).

Steady state: a queue served by ``c`` worker slots is an M/M/c system with arrival rate ``λ``
(jobs/s, measured from the rollups' submissions, or the next hour's expected rate when last
week's same hour was busier) and mean service time ``S`` (the rollups' mean run time). Erlang C
gives the probability a job waits, ``C(c, a)`` with offered load ``a = λ·S``, and the waiting
time distribution ``P(W > t) = C · exp(-(c/S - λ)·t)``. The advice is the smallest ``c`` for which
95% of jobs start within the target, and at least enough slots for every job of the current
backlog to start within the target: ``backlog · S / T`` (FIFO: the backlog's last job starts
after ``backlog`` completions, at ``c / S`` per second; the jobs arriving meanwhile queue behind
it and wait no longer, because the steady-state answer already exceeds the offered load ``λ·S``).

Hand-rolled (a few lines of arithmetic) because no maintained Python package computes Erlang C
with the waiting-time tail; the recursion is the numerically stable one via Erlang B.

Invariants: every figure the answer reports is in the ``inputs`` it returns with its source
(``measured`` / ``given`` / ``forecast``), so the advice can be checked by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from jobline.analytics.ai import narrate
from jobline.shared.observe import rollups
from jobline.shared.observe.workers import list_workers
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import ValidationFailed

#: Share of jobs that must start within the target (the M/M/c tail bound).
SERVICE_LEVEL = 0.95
WINDOW_MS = 3_600_000
WEEK_MS = 7 * 86_400_000
MAX_SLOTS = 100_000


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load ``a`` (1.0 when ``a >= c``)."""
    if c <= 0 or a >= c:
        return 1.0
    if a <= 0:
        return 0.0
    b = 1.0  # Erlang B, built up one server at a time (stable for large c)
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return c * b / (c - a * (1 - b))


def wait_tail(c: int, lam: float, s: float, t: float) -> float:
    """``P(W > t)`` for M/M/c (rates per second, times in seconds)."""
    if s <= 0 or lam <= 0:
        return 0.0
    a = lam * s
    if a >= c:
        return 1.0
    return erlang_c(c, a) * math.exp(-(c / s - lam) * t)


def mean_wait(c: int, lam: float, s: float) -> float:
    """Expected wait in seconds (inf when the queue cannot keep up)."""
    if s <= 0 or lam <= 0:
        return 0.0
    a = lam * s
    if a >= c:
        return math.inf
    return erlang_c(c, a) / (c / s - lam)


def slots_for(lam: float, s: float, target_s: float, level: float = SERVICE_LEVEL) -> int:
    """The fewest slots with ``P(W > target) <= 1 - level``."""
    if lam <= 0 or s <= 0:
        return 0
    c = max(1, math.floor(lam * s) + 1)
    while c < MAX_SLOTS and wait_tail(c, lam, s, target_s) > 1 - level:
        c += 1
    return c


def plan(lam_now: float, lam_next: float, s: float, t: float, backlog: int, *,
         level: float = SERVICE_LEVEL) -> dict[str, Any]:
    """The slots to run (rates per second, times in seconds): enough for the steady state at
    the higher of the measured and the expected arrival rate, and for every job of ``backlog``
    to start within the target. The backlog term is the SLA's (the jobs' wait), not the time
    to empty the queue: asking for the offered load on top as well (``(backlog + λT)·S/T``,
    the first version) kept a fleet far above the target's need after every short burst.
    ``level`` is the share of jobs to start within the target in the steady state (the SLA's
    95% by default; a margin above it absorbs the noise of short windows). Pure arithmetic:
    ``recommend`` and the evaluation's queue simulation (bench/ai_sim.py) both plan with it."""
    lam = max(lam_now, lam_next)
    steady = slots_for(lam, s, t, level)
    clear = math.ceil(backlog * s / t) if backlog else 0
    return {"lam": lam, "steady": steady, "clear": clear,
            "suggested": max(steady, clear, 1 if lam > 0 or backlog else 0)}


@dataclass(frozen=True, slots=True)
class Live:
    arrivals_per_s: float
    next_hour_per_s: float
    mean_service_ms: float | None
    slots: int
    processes: int
    backlog: int


async def _live(deps: Deps, queue: str) -> Live:
    now = deps.clock.now_ms()
    minute = now // 60_000 * 60_000
    recent = await rollups.summary(deps, minute - WINDOW_MS, minute + 60_000, queue)
    submitted = sum(int(r["submitted"]) for r in recent)
    completed = sum(int(r["completed"]) for r in recent)
    dur = sum(int(r["duration_sum_ms"]) for r in recent)
    # the same hour ahead, one week ago: the seasonal-naive expectation for the next hour
    ahead = await rollups.summary(deps, minute - WEEK_MS, minute - WEEK_MS + WINDOW_MS, queue)
    week_ago = sum(int(r["submitted"]) for r in ahead)
    workers = [w for w in await list_workers(deps)
               if not w.get("queues") or queue in w.get("queues", [])]
    depth = (await deps.dispatch.depth([queue])).get(queue, {})
    return Live(arrivals_per_s=submitted / (WINDOW_MS / 1000),
                next_hour_per_s=week_ago / (WINDOW_MS / 1000),
                mean_service_ms=dur / completed if completed else None,
                slots=sum(int(w.get("concurrency", 0)) for w in workers),
                processes=len(workers),
                backlog=int(depth.get("ready", 0)) + int(depth.get("delayed", 0)))


async def recommend(deps: Deps, queue: str, target_latency_ms: int, *,
                    pending_jobs: int | None = None, average_job_duration_ms: float | None = None,
                    current_workers: int | None = None) -> dict[str, Any]:
    """The advice for ``queue``; missing inputs are measured (see the module docstring)."""
    if target_latency_ms <= 0:
        raise ValidationFailed("targetLatencyMs", "must be positive")
    live = await _live(deps, queue)
    s_ms = average_job_duration_ms if average_job_duration_ms is not None \
        else live.mean_service_ms
    if s_ms is None:
        raise ValidationFailed("averageJobDurationMs",
                               f"no job of queue {queue!r} completed in the last hour; give "
                               f"the average duration")
    lam_now, lam_next = live.arrivals_per_s, live.next_hour_per_s
    backlog = pending_jobs if pending_jobs is not None else live.backlog
    current = current_workers if current_workers is not None else live.slots
    s, t = s_ms / 1000, target_latency_ms / 1000
    p = plan(lam_now, lam_next, s, t, backlog)
    lam, steady, clear, suggested = p["lam"], p["steady"], p["clear"], p["suggested"]
    wait = mean_wait(suggested, lam, s)
    per_process = max(1, round(live.slots / live.processes)) if live.processes else None
    reasoning = [
        f"Arrivals: {lam_now * 60:,.1f} jobs/min over the last hour"
        + (f"; the same hour last week brought {lam_next * 60:,.1f}/min, so the advice plans "
           f"for {lam * 60:,.1f}/min" if lam_next > lam_now else "") + ".",
        f"Mean run time {s_ms:,.0f} ms: offered load {lam * s:,.2f} busy slots on average.",
        f"M/M/c (Erlang C): {steady} slots start {SERVICE_LEVEL:.0%} of jobs within "
        f"{target_latency_ms:,} ms (P(wait > target) = {wait_tail(steady, lam, s, t):.3f}).",
    ]
    if backlog:
        reasoning.append(f"Backlog of {backlog:,} jobs: starting all of them within "
                         f"{target_latency_ms:,} ms takes {clear:,} slots.")
    verdict = ("keep" if suggested == current else "add" if suggested > current else "remove")
    reasoning.append(f"Currently {current:,} slots: {verdict}"
                     + (f" {abs(suggested - current):,}" if verdict != "keep" else "") + ".")
    inputs = {
        "arrivalsPerMinute": round(lam * 60, 3),
        "arrivalsSource": "forecast" if lam_next > lam_now else "measured",
        "averageJobDurationMs": round(s_ms, 1),
        "durationSource": "given" if average_job_duration_ms is not None else "measured",
        "pendingJobs": backlog,
        "pendingSource": "given" if pending_jobs is not None else "measured",
        "targetLatencyMs": target_latency_ms, "serviceLevel": SERVICE_LEVEL,
    }
    expected = None if math.isinf(wait) else round(wait * 1000, 1)
    # narrated: one paragraph from the same figures (the inputs stay, so it can be checked)
    text, narrated = await narrate.phrase(
        deps.settings, "Explain this worker scaling advice to an operator.",
        {"queue": queue, "suggestedWorkers": suggested, "currentWorkers": current,
         "expectedWaitMs": expected, "inputs": inputs, "reasoning": reasoning},
        "\n".join(reasoning))
    if narrated:
        reasoning = [line.strip() for line in text.splitlines() if line.strip()]
    return {
        "queue": queue, "suggestedWorkers": suggested, "expectedWaitMs": expected,
        "currentWorkers": current,
        "suggestedProcesses": math.ceil(suggested / per_process) if per_process else None,
        "slotsPerProcess": per_process,
        "reasoning": reasoning, "narrated": narrated, "inputs": inputs,
    }
