"""The autoscaler's decision for one worker group: a pure function of the settings, the live
numbers and the time, so it is tested without processes or clocks.

Targets (either or both; the larger need wins):
  * ``targetBacklogPerWorker``: ``ceil(backlog / target)`` workers;
  * ``latencySlaMs``: the fewest workers whose expected wait meets the SLA, by Erlang C (M/M/c)
    from the arrival and per-worker service rates; without rates yet, one more worker whenever
    the oldest waiting job is older than the SLA.

Never flaps: the count goes up at once when the need exceeds it (at most every
``upCooldownS``), down only when the need stays below ``current * (1 - hysteresis)`` and
``downCooldownS`` has passed since the last change, one step of at most half the surplus at a
time; always within ``[min, max]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from jobline.shared.platform.errors import ValidationFailed

_KEYS = {"min", "max", "targetBacklogPerWorker", "latencySlaMs", "upCooldownS",
         "downCooldownS", "hysteresis", "queues"}


def check_settings(raw: dict[str, Any], *, max_desired: int = 1000) -> dict[str, Any]:
    """Validate the API's autoscaling object; returns it normalised (defaults filled in)."""
    extra = set(raw) - _KEYS
    if extra:
        raise ValidationFailed("autoscale", f"unknown fields: {', '.join(sorted(extra))}")

    def num(name: str, default: float | None, lo: float, hi: float) -> float | None:
        v = raw.get(name, default)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
            raise ValidationFailed(f"autoscale.{name}", f"must be a number in [{lo}, {hi}]")
        return float(v)

    lo = int(num("min", 0, 0, max_desired) or 0)
    hi = int(num("max", None, 0, max_desired) or 0) if raw.get("max") is not None else None
    if hi is None:
        raise ValidationFailed("autoscale.max", "required")
    if hi < lo:
        raise ValidationFailed("autoscale.max", "must be >= min")
    backlog = num("targetBacklogPerWorker", None, 1, 1e9)
    sla = num("latencySlaMs", None, 1, 86_400_000)
    if backlog is None and sla is None:
        raise ValidationFailed("autoscale", "set targetBacklogPerWorker or latencySlaMs")
    queues = raw.get("queues")
    if queues is not None and (not isinstance(queues, list)
                               or not all(isinstance(q, str) and q for q in queues)):
        raise ValidationFailed("autoscale.queues", "a list of queue names")
    return {"min": lo, "max": hi,
            "targetBacklogPerWorker": int(backlog) if backlog is not None else None,
            "latencySlaMs": int(sla) if sla is not None else None,
            "upCooldownS": num("upCooldownS", 15, 0, 86_400),
            "downCooldownS": num("downCooldownS", 120, 0, 86_400),
            "hysteresis": num("hysteresis", 0.2, 0, 0.9),
            "queues": queues}


@dataclass(frozen=True, slots=True)
class Load:
    """What the scheduler measured for a group's queues."""

    #: Jobs ready or delayed-and-due waiting in the group's queues.
    backlog: int
    #: Age of the oldest waiting job (ms), None if nothing waits.
    oldest_ms: int | None
    #: Jobs per second arriving (submitted) and completed per busy worker process, if known.
    arrival_per_s: float | None = None
    per_worker_per_s: float | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    desired: int
    reason: str


def erlang_c_wait_s(workers: int, arrival: float, service: float) -> float:
    """Expected queueing delay in an M/M/c queue (inf when ``arrival >= workers * service``)."""
    if workers <= 0 or service <= 0:
        return math.inf
    a = arrival / service
    if a >= workers:
        return math.inf
    # Erlang C probability of waiting, computed iteratively (no factorial overflow)
    term, total = 1.0, 1.0
    for k in range(1, workers):
        term *= a / k
        total += term
    term *= a / workers
    top = term * workers / (workers - a)
    p_wait = top / (total + top)
    return p_wait / (workers * service - arrival)


def need(settings: dict[str, Any], load: Load) -> tuple[int, str]:
    """Workers the load needs (before bounds and hysteresis), with why."""
    out, why = 0, "idle"
    per = settings.get("targetBacklogPerWorker")
    if per:
        n = math.ceil(load.backlog / per)
        if n > out:
            out, why = n, f"backlog {load.backlog} / {per} per worker"
    sla = settings.get("latencySlaMs")
    if sla:
        if load.arrival_per_s and load.per_worker_per_s:
            c = max(1, math.ceil(load.arrival_per_s / load.per_worker_per_s))
            while c < 1000 and erlang_c_wait_s(c, load.arrival_per_s,
                                               load.per_worker_per_s) * 1000 > sla:
                c += 1
            # a backlog already built up must also drain within the SLA
            c = max(c, math.ceil(load.backlog / max(load.per_worker_per_s * sla / 1000, 1e-9)))
            if c > out:
                out, why = c, f"Erlang C: {load.arrival_per_s:.1f}/s arriving, " \
                              f"{load.per_worker_per_s:.1f}/s per worker, SLA {sla} ms"
        elif load.oldest_ms is not None and load.oldest_ms > sla:
            out, why = max(out, 1), f"oldest waiting {load.oldest_ms} ms > SLA {sla} ms"
    return out, why


def decide(settings: dict[str, Any], current: int, load: Load, now_s: float,
           last_change_s: float | None) -> Decision:
    """The group's next desired count (``current`` when nothing should change)."""
    lo, hi = int(settings["min"]), int(settings["max"])
    if not lo <= current <= hi:
        return Decision(max(lo, min(hi, current)), "outside [min, max]")
    n, why = need(settings, load)
    sla = settings.get("latencySlaMs")
    if sla and load.oldest_ms is not None and load.oldest_ms > sla and n <= current:
        n, why = current + 1, f"oldest waiting {load.oldest_ms} ms > SLA {sla} ms"
    target = max(lo, min(hi, n))
    since = math.inf if last_change_s is None else now_s - last_change_s
    if target > current:
        if since < float(settings.get("upCooldownS") or 0):
            return Decision(current, "up cooldown")
        return Decision(target, f"up: {why}")
    if target < current:
        floor = current * (1 - float(settings.get("hysteresis") or 0))
        if target >= floor and target > lo:
            return Decision(current, "within hysteresis")
        if since < float(settings.get("downCooldownS") or 0):
            return Decision(current, "down cooldown")
        step = max(1, math.ceil((current - target) / 2))
        return Decision(max(target, current - step), f"down: {why}")
    return Decision(current, "steady")
