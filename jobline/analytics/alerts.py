"""Alerting hook: a failure-rate spike detector per queue that emits ``alerts.fired``.

Per queue it keeps per-minute counts of finished attempts (completed + failed) from the events
themselves, and compares the failure rate of the last ``window`` with the queue's own rate over
the ``baseline`` before it. It fires when the window has enough volume and its rate is both
``factor`` times the baseline and ``min_increase`` above it (so a queue that always fails 50% does
not alert, and 0% -> 1% does not either), then stays quiet for ``cooldown``. Time is event time,
so replaying the same events gives the same alerts. The state is in memory: a restarted alerts
consumer starts a new baseline (the full rules engine comes later).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobline.shared.events.outbox import Event, NewEvent, emit
from jobline.shared.platform.connections import Deps

GROUP = "alerts"


@dataclass
class SpikeDetector:
    window_ms: int = 5 * 60_000
    baseline_ms: int = 60 * 60_000
    min_finished: int = 20
    factor: float = 3.0
    min_increase: float = 0.2
    cooldown_ms: int = 15 * 60_000
    #: queue -> minute -> [finished, failed]
    minutes: dict[str, dict[int, list[int]]] = field(default_factory=dict)
    last_fired: dict[str, int] = field(default_factory=dict)
    now_ms: int = 0

    def observe(self, e: Event) -> str | None:
        """Count ``e``; returns its queue if it is an attempt outcome."""
        if e.queue is None or e.type not in ("jobs.completed", "jobs.failed"):
            return None
        self.now_ms = max(self.now_ms, e.time_ms)
        m = self.minutes.setdefault(e.queue, {}).setdefault(e.time_ms // 60_000 * 60_000, [0, 0])
        m[0] += 1
        if e.type == "jobs.failed":
            m[1] += 1
        return e.queue

    def _rate(self, queue: str, lo: int, hi: int) -> tuple[int, float]:
        fin = fail = 0
        for minute, (f, x) in self.minutes.get(queue, {}).items():
            if lo <= minute < hi:
                fin += f
                fail += x
        return fin, (fail / fin if fin else 0.0)

    def check(self, queue: str) -> dict[str, Any] | None:
        now = self.now_ms
        cut = now // 60_000 * 60_000 + 60_000 - self.window_ms  # window = the last N minutes
        mins = self.minutes.get(queue, {})
        for old in [m for m in mins if m < cut - self.baseline_ms]:
            del mins[old]
        finished, rate = self._rate(queue, cut, now + 60_000)
        _, base = self._rate(queue, cut - self.baseline_ms, cut)
        if finished < self.min_finished:
            return None
        if rate < base * self.factor or rate < base + self.min_increase:
            return None
        if now - self.last_fired.get(queue, -self.cooldown_ms) < self.cooldown_ms:
            return None
        self.last_fired[queue] = now
        return {"rule": "failure_rate_spike", "queue": queue, "failureRate": round(rate, 4),
                "baselineRate": round(base, 4), "finished": finished,
                "windowMs": self.window_ms, "baselineMs": self.baseline_ms}


def make_apply(deps: Deps, detector: SpikeDetector) -> Any:
    async def apply(conn: Any, events: list[Event]) -> None:
        touched = {q for e in events if (q := detector.observe(e)) is not None}
        fired = [a for q in sorted(touched) if (a := detector.check(q)) is not None]
        # alerts.fired goes through the outbox in the same transaction as the receipts, so an
        # alert is published once even if this consumer dies right after.
        await emit(deps, [NewEvent("alerts.fired", queue=a["queue"], data=a) for a in fired],
                   conn=conn)

    return apply
