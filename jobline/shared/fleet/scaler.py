"""The scheduler's fleet step: every few seconds, per worker group, record the history (count,
utilization; crashes are rows of their own), account for workers that vanished without a clean
stop (crashes), and, for groups with autoscaling on, compute and store the desired count.

The decision itself is :func:`jobline.shared.fleet.autoscale.decide`; this module measures the
load it decides on: the backlog of the group's queues (ready jobs in Redis), the age of the
oldest, and the arrival and per-worker completion rates, estimated from the change of the
backlog and of the workers' ``processed`` counters between two steps (kept in this object: a
restarted scheduler needs two steps to have rates again, and decides on backlog meanwhile).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from jobline.shared.events.outbox import NewEvent, emit
from jobline.shared.fleet import actions, autoscale, control, groups
from jobline.shared.observe.workers import list_workers
from jobline.shared.platform.clock import from_dt
from jobline.shared.platform.connections import Deps

log = logging.getLogger("jobline.fleet")

#: How often the scheduler runs the step.
STEP_S = 2.0
#: When the longest-waiting ready job of the queues became ready: one index probe per queue
#: (jobs_queue_status_sched), never a scan of the backlog.
OLDEST_READY = """
SELECT min(o.s) FROM unnest($1::text[]) AS q(name)
  CROSS JOIN LATERAL (SELECT scheduled_for AS s FROM jobs
                       WHERE queue_name = q.name AND status = 'pending'
                       ORDER BY scheduled_for LIMIT 1) o
"""


@dataclass
class _Seen:
    at_s: float
    processed: int
    backlog: int


@dataclass
class Scaler:
    deps: Deps
    _last: dict[str, _Seen] = field(default_factory=dict)
    _pruned_at: float = 0.0

    async def step(self) -> dict[str, int]:
        """One pass over every group; returns the desired counts it set (changed ones)."""
        deps = self.deps
        if time.monotonic() - self._pruned_at > 3600:
            await groups.prune(deps)
            self._pruned_at = time.monotonic()
        raw = await list_workers(deps)
        live = {str(w["id"]): str(w.get("group") or groups.DEFAULT_GROUP) for w in raw}
        await self._account(live)
        stored = {g.name: g for g in await groups.list_groups(deps)}
        changed: dict[str, int] = {}
        for name in sorted(set(stored) | set(live.values())):
            members = [w for w in raw if (w.get("group") or groups.DEFAULT_GROUP) == name]
            g = stored.get(name)
            busy = sum(int(w.get("running", 0)) for w in members)
            capacity = sum(int(w.get("concurrency", 0)) for w in members)
            await groups.record_history(deps, name, g.desired if g else len(members),
                                        len(members), busy, capacity)
            if g is None or not g.autoscale:
                continue
            load = await self._load(name, g.autoscale, members)
            last = from_dt(g.scaled_at) / 1000 if g.scaled_at else None
            d = autoscale.decide(g.autoscale, g.desired, load, deps.clock.now_ms() / 1000, last)
            if d.desired != g.desired:
                done = await groups.autoscaled(deps, g, d.desired, d.reason)
                if done is not None:
                    changed[name] = d.desired
                    log.info("autoscaler: group %s %d -> %d (%s)", name, g.desired, d.desired,
                             d.reason)
                    await emit(deps, [NewEvent(actions.SCALED, data={
                        "group": name, "from": g.desired, "desired": d.desired,
                        "reason": d.reason, "keyId": None, "keyName": "autoscaler"})])
        return changed

    async def _account(self, live: dict[str, str]) -> None:
        """Workers seen before and gone now: a crash unless they stopped cleanly."""
        gone = await control.vanished(self.deps, set(live))
        for wid, (group, clean) in gone.items():
            if not clean and await groups.record_crash(
                    self.deps, wid, group, None, "heartbeat lost without a clean stop"):
                log.warning("worker %s (group %s) vanished without a clean stop", wid, group)
        await control.note_seen(self.deps, live)

    async def _load(self, name: str, settings: dict[str, Any],
                    members: list[dict[str, Any]]) -> autoscale.Load:
        deps = self.deps
        queues: list[str] | None = settings.get("queues")
        if not queues:
            named = {q for w in members for q in w.get("queues", []) if q != "*"}
            wildcard = not members or any("*" in w.get("queues", []) for w in members)
            queues = sorted(await deps.dispatch.known_queues()) if wildcard else sorted(named)
        depth = await deps.dispatch.depth(queues) if queues else {}
        backlog = sum(int(d.get("ready", 0)) for d in depth.values())
        oldest = await self._oldest_ms(queues) if backlog else None
        now = time.monotonic()
        processed = sum(int(w.get("processed", 0)) for w in members)
        prev = self._last.get(name)
        self._last[name] = _Seen(now, processed, backlog)
        arrival = per_worker = None
        if prev is not None and now > prev.at_s and members:
            done = max(0, processed - prev.processed) / (now - prev.at_s)
            arrival = max(0.0, done + (backlog - prev.backlog) / (now - prev.at_s))
            busy_workers = sum(1 for w in members if int(w.get("running", 0)) > 0)
            if done > 0 and busy_workers:
                per_worker = done / busy_workers
        return autoscale.Load(backlog, oldest, arrival, per_worker)

    async def _oldest_ms(self, queues: list[str]) -> int | None:
        row = await self.deps.pool.fetchval(OLDEST_READY, queues)
        return max(0, self.deps.clock.now_ms() - from_dt(row)) if row is not None else None
