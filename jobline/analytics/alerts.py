"""Alerting hook: a failure-rate spike rule per queue that emits ``alerts.fired``.

Evaluated by the relay's fold (:mod:`jobline.analytics.fold`) right after the batch's rollups
were folded, in the same transaction, from the rollups themselves: per queue, the failure rate
(failed attempts / finished attempts, ``job_rollups.failed / (completed + failed)``) of the last
``window`` against the queue's own rate over the ``baseline`` before it. It fires when the window
has enough volume and its rate is both ``factor`` times the baseline and ``min_increase`` above it
(so a queue that always fails 50% does not alert, and 0% -> 1% does not either), then stays quiet
for ``cooldown``. Time is event time (the batch's newest attempt outcome), so replaying the same
events gives the same alerts.

A queue is evaluated when a batch carries one of its failed attempts (only a failure can raise
the rate; a drain of successful jobs costs the rule nothing). The cooldown is stored with the
alert, in the same transaction (``consumer_watermarks ('alerts.last_fired', queue)`` holds the
event time of the queue's last alert), so a restarted relay neither forgets the baseline (it is
the rollups) nor fires again within the cooldown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobline.shared.events.outbox import Event, NewEvent, Record, emit
from jobline.shared.platform.clock import to_dt
from jobline.shared.platform.connections import Deps

#: consumer_watermarks' ``consumer`` of the per-queue cooldown (``seq`` = event time in ms).
LAST_FIRED = "alerts.last_fired"

READ_RATES = """
SELECT queue_name,
       coalesce(sum(completed + failed) FILTER (WHERE minute >= $2), 0)::bigint AS finished,
       coalesce(sum(failed) FILTER (WHERE minute >= $2), 0)::bigint AS failed,
       coalesce(sum(completed + failed) FILTER (WHERE minute < $2), 0)::bigint AS base_finished,
       coalesce(sum(failed) FILTER (WHERE minute < $2), 0)::bigint AS base_failed
  FROM job_rollups
 WHERE queue_name = ANY($1::text[]) AND minute >= $3 AND minute < $4
 GROUP BY queue_name
"""
READ_LAST_FIRED = """
SELECT part, seq FROM consumer_watermarks WHERE consumer = $1 AND part = ANY($2::text[])
"""
SET_LAST_FIRED = """
INSERT INTO consumer_watermarks AS w (consumer, part, seq)
SELECT $1, u.p, u.s FROM unnest($2::text[], $3::bigint[]) AS u(p, s)
ON CONFLICT (consumer, part) DO UPDATE SET seq = greatest(w.seq, EXCLUDED.seq)
"""


@dataclass(frozen=True, slots=True)
class SpikeRule:
    window_ms: int = 5 * 60_000
    baseline_ms: int = 60 * 60_000
    min_finished: int = 20
    factor: float = 3.0
    min_increase: float = 0.2
    cooldown_ms: int = 15 * 60_000

    def bounds(self, now_ms: int) -> tuple[int, int, int]:
        """(baseline start, window start, end) in ms: the window is the last N minutes up to
        and including ``now``'s minute, the baseline the ``baseline_ms`` before it."""
        cut = now_ms // 60_000 * 60_000 + 60_000 - self.window_ms
        return cut - self.baseline_ms, cut, now_ms // 60_000 * 60_000 + 60_000

    def judge(self, queue: str, finished: int, failed: int, base_finished: int,
              base_failed: int) -> dict[str, Any] | None:
        """The alert's data if the counts make a spike (the cooldown is the caller's)."""
        if finished < self.min_finished:
            return None
        rate = failed / finished
        base = base_failed / base_finished if base_finished else 0.0
        if rate < base * self.factor or rate < base + self.min_increase:
            return None
        return {"rule": "failure_rate_spike", "queue": queue, "failureRate": round(rate, 4),
                "baselineRate": round(base, 4), "finished": finished,
                "windowMs": self.window_ms, "baselineMs": self.baseline_ms}


async def evaluate(deps: Deps, conn: Any, events: list[Event],
                   rule: SpikeRule) -> list[dict[str, Any]]:
    """Fire the rule for the queues ``events`` carry a failed attempt of, reading the rollups
    (already holding ``events``) on ``conn``; the alerts go to the outbox and their cooldown to
    ``consumer_watermarks`` in that transaction. Returns the alerts fired."""
    failing = sorted({e.queue for e in events if e.type == "jobs.failed" and e.queue})
    if not failing:
        return []
    now = max(e.time_ms for e in events if e.type in ("jobs.completed", "jobs.failed"))
    return await _judge(deps, conn, failing, now, rule)


async def evaluate_records(deps: Deps, conn: Any, records: list[Record],
                           rule: SpikeRule) -> list[dict[str, Any]]:
    """:func:`evaluate` over the relay's records (a statement record counts with its newest
    event time)."""
    failing = sorted({r.queue for r in records if r.type == "jobs.failed" and r.queue})
    if not failing:
        return []
    now = max(r.time_ms if r.last_ms is None else r.last_ms for r in records
              if r.type in ("jobs.completed", "jobs.failed"))
    return await _judge(deps, conn, failing, now, rule)


async def _judge(deps: Deps, conn: Any, failing: list[str], now: int,
                 rule: SpikeRule) -> list[dict[str, Any]]:
    lo, cut, hi = rule.bounds(now)
    fired = [a for r in await conn.fetch(READ_RATES, failing, to_dt(cut), to_dt(lo), to_dt(hi))
             if (a := rule.judge(r["queue_name"], r["finished"], r["failed"],
                                 r["base_finished"], r["base_failed"])) is not None]
    if not fired:
        return []
    last = {r["part"]: r["seq"] for r in await conn.fetch(
        READ_LAST_FIRED, LAST_FIRED, [a["queue"] for a in fired])}
    fired = [a for a in fired if now - last.get(a["queue"], now - rule.cooldown_ms)
             >= rule.cooldown_ms]
    if fired:
        # alerts.fired goes through the outbox in the relay's transaction, with the cooldown:
        # an alert is published once even if the relay dies right after.
        await emit(deps, [NewEvent("alerts.fired", queue=a["queue"], data=a) for a in fired],
                   conn=conn)
        await conn.execute(SET_LAST_FIRED, LAST_FIRED, [a["queue"] for a in fired],
                           [now] * len(fired))
    return fired
