"""The scheduler process: the delayed-job timer, cron schedules, the lease reaper, the
reconciler, the fold of the queue counts, alert evaluation and the alert delivery worker, the
analytics samples and the retention of rollups, samples and raw jobs.

Every loop calls an idempotent core operation, so any number of scheduler processes may run at
once (each step is a Lua script or ``FOR UPDATE SKIP LOCKED``); running two only adds redundancy.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from jobline.analytics import samples
from jobline.analytics.ai import anomaly
from jobline.analytics.ai import jobs as ai_jobs
from jobline.analytics.alerting import deliver as alert_delivery
from jobline.analytics.alerting import evaluate as alert_eval
from jobline.analytics.alerting.model import DELIVERY_QUEUE
from jobline.shared.core import counts, maintenance, results
from jobline.shared.dispatch import rate_limits
from jobline.shared.dispatch.redis_dispatch import Dispatch
from jobline.shared.events import worker_events
from jobline.shared.fleet.scaler import Scaler
from jobline.shared.platform.connections import Deps, create_redis
from jobline.shared.platform.errors import Unavailable
from jobline.shared.schedules import recurring as schedules
from jobline.worker.runtime import Worker

log = logging.getLogger("jobline.scheduler")

#: A full reconcile also repairs the rare job left out of Redis by a crash between its Postgres
#: commit and its dispatch (the epoch check only catches a wholesale loss of Redis state).
FULL_RECONCILE_EVERY_S = 600.0
#: How often the recent-submissions sweep runs, and how old a submission must be before it is
#: checked (its own submitter normally mirrors it within milliseconds).
RECENT_SWEEP_EVERY_S = 5.0
RECENT_MIN_AGE_MS = 5_000
#: On start, look this far back (covers a submitter crash just before this scheduler started).
RECENT_LOOKBACK_MS = 15 * 60_000
#: Upper bound of one timer-loop sleep (an enqueue of a delayed job wakes it sooner).
TIMER_MAX_SLEEP_S = 30.0
#: Upper bound of one cron-loop sleep: covers a lost wake-up and a peer that died holding a due
#: schedule (its row lock is released with its connection).
CRON_MAX_SLEEP_S = 5.0
#: While another scheduler holds a due schedule (its tick is running), look again this soon.
CRON_PEER_BACKOFF_S = 0.02
#: Partitions are created months ahead; checking daily is plenty.
PARTITIONS_EVERY_S = 86_400.0
#: workers.heartbeat_lost and queues.backlog events (docs/events.md).
WORKER_EVENTS_EVERY_S = 10.0
#: While another scheduler holds due alert rules (its evaluation is running), look again this soon.
ALERT_PEER_BACKOFF_S = 0.2
#: Expired results are removed within this long of their expiry time.
RESULT_EXPIRY_EVERY_S = 10.0
#: Each whole minute is scored once it is complete; checking 4x a minute bounds the lag to 15 s.
ANOMALY_EVERY_S = 15.0


class Scheduler:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._stop = asyncio.Event()
        self.ticks = {"promote": 0, "reap": 0, "reconcile": 0, "cron": 0, "alerts": 0}
        self.owner = f"scheduler:{uuid.uuid4().hex[:8]}"
        # each blocking loop needs its own interrupt list (one push wakes one BLPOP)
        self.cron_owner = f"{self.owner}:cron"
        self._interrupt_task: asyncio.Task[None] | None = None
        self._recent_cursor: int | None = None
        self.scaler = Scaler(deps)
        self.fleet_step_s = max(deps.settings.fleet_step_ms, 100) / 1000

    def request_stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(RuntimeError):
            self._interrupt_task = asyncio.get_running_loop().create_task(self._interrupt())

    async def _interrupt(self) -> None:
        with contextlib.suppress(Exception):
            await self.deps.dispatch.interrupt(self.owner)
            await self.deps.dispatch.interrupt(self.cron_owner)

    async def run(self) -> None:
        s = self.deps.settings
        assert s.redis_url
        block = create_redis(s.redis_url, blocking=True)
        # the cron loop blocks on its own wake list, so it needs a connection of its own
        cron_block = create_redis(s.redis_url, blocking=True)
        timer_wake = Dispatch(block, s.redis_prefix, s.redis_slot_groups)
        cron_wake = Dispatch(cron_block, s.redis_prefix, s.redis_slot_groups)
        try:
            with contextlib.suppress(Unavailable):
                await maintenance.ensure_dispatch_state(self.deps)
            try:
                await rate_limits.apply_configured(self.deps)
            except Unavailable as e:
                log.warning("configured rate limits not applied: %s", e)
            await asyncio.gather(
                # delayed jobs, promoted exactly when due: an enqueue of a delayed job pushes
                # the timer wake-up list (it may be due before the one slept for)
                self._wake_loop("promote", self._promote, functools.partial(
                    timer_wake.wait_for_timer, TIMER_MAX_SLEEP_S, self.owner)),
                # cron runs: a schedule change pushes the cron wake-up list
                self._wake_loop("cron", self._cron, functools.partial(
                    cron_wake.wait_for_cron, CRON_MAX_SLEEP_S, self.cron_owner)),
                self._every(s.sweep_ms / 1000, "reap", self._reap),
                self._every(FULL_RECONCILE_EVERY_S, "reconcile", self._reconcile),
                self._every(RECENT_SWEEP_EVERY_S, "recent", self._reconcile_recent),
                self._every(PARTITIONS_EVERY_S, "partitions", self._partitions),
                self._every(WORKER_EVENTS_EVERY_S, "worker_events", self._worker_events),
                self._every(counts.FOLD_EVERY_S, "fold_counts", self._fold_counts),
                # analytics gauges once a minute, rollup/sample/raw-job retention hourly
                # (docs/analytics.md, "Samples" and "Retention")
                self._every(samples.SAMPLE_EVERY_S, "samples", self._samples),
                self._every(samples.RETENTION_EVERY_S, "retention", self._retention),

                self._every(RESULT_EXPIRY_EVERY_S, "results", self._expire_results),
                # alert rules, due every JOBLINE_ALERT_EVAL_MS (fenced per rule like cron)
                self._wake_loop("alerts", self._alerts, self._alert_wait),
                self._delivery_worker(),
                # worker groups: history, crashes, autoscaling (docs/workers.md)
                self._every(self.fleet_step_s, "fleet", self._fleet),
                # anomaly detection over the rollups, minute by minute (docs/ai.md)
                self._every(ANOMALY_EVERY_S, "anomalies", self._anomalies),
            )
        finally:
            await timer_wake.aclose_waiters()
            await block.aclose()
            await cron_block.aclose()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), max(seconds, 0))

    async def _every(self, period_s: float, name: str, step: Callable[[], Awaitable[None]]) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                await step()
                self.ticks[name] = self.ticks.get(name, 0) + 1
            except Unavailable as e:
                log.warning("%s: %s", name, e)
            except Exception:
                log.exception("%s step failed", name)
            await self._sleep(period_s - (time.monotonic() - started))

    async def _reap(self) -> None:
        # The epoch check is cheap (one GET) and catches a Valkey restarted empty within a sweep.
        await maintenance.ensure_dispatch_state(self.deps)
        await maintenance.reap_expired_leases(self.deps)

    async def _reconcile_recent(self) -> None:
        until = self.deps.clock.now_ms() - RECENT_MIN_AGE_MS
        since = self._recent_cursor if self._recent_cursor is not None else until - RECENT_LOOKBACK_MS
        await maintenance.reconcile_recent(self.deps, since, until)
        self._recent_cursor = until  # advanced only after success: a failed sweep is redone

    async def _reconcile(self) -> None:
        await maintenance.reconcile(self.deps)

    async def _worker_events(self) -> None:
        await worker_events.sweep_lost_workers(self.deps)
        await worker_events.emit_backlog(self.deps)

    async def _fleet(self) -> None:
        await self.scaler.step()

    async def _anomalies(self) -> None:
        await anomaly.tick(self.deps)

    async def _fold_counts(self) -> None:
        await counts.fold(self.deps)

    async def _samples(self) -> None:
        await samples.sample(self.deps)

    async def _retention(self) -> None:
        await samples.retention(self.deps)

    async def _expire_results(self) -> None:
        await results.expire_results(self.deps)

    async def _alerts(self) -> float | None:
        """Evaluate the due alert rules; sleep until the earliest next evaluation (bounded)."""
        rep = await alert_eval.tick(self.deps)
        if rep.more:
            return None
        interval = self.deps.settings.alert_eval_ms / 1000
        if rep.next_due_ms is None:
            return interval
        wait_ms = rep.next_due_ms - self.deps.clock.now_ms()
        # <= 0: a peer scheduler is evaluating those rules right now
        return min(interval, wait_ms / 1000 if wait_ms > 0 else ALERT_PEER_BACKOFF_S)

    async def _alert_wait(self) -> bool:
        # no wake-up list: a rule change is picked up within one evaluation interval
        await self._stop.wait()
        return True

    def _internal_worker(self) -> Worker:
        """The worker of the internal queues: ``jobline.alerts`` (alert notifications) and
        ``jobline.ai`` (model training, docs/ai.md)."""
        reg = alert_delivery.registry(self.deps)
        ai_jobs.register(reg, self.deps)
        return Worker(self.deps, reg, queues=[DELIVERY_QUEUE, ai_jobs.QUEUE],
                      concurrency=alert_delivery.CONCURRENCY, worker_id=f"{self.owner}:alerts",
                      group="scheduler")

    async def _delivery_worker(self) -> None:
        """Runs (and restarts) :meth:`_internal_worker`."""
        while not self._stop.is_set():
            worker = self._internal_worker()
            task = asyncio.create_task(worker.run())
            stop = asyncio.create_task(self._stop.wait())
            try:
                await asyncio.wait([task, stop], return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop.cancel()
                if not task.done():
                    worker.request_stop()
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(task, worker.stop_bound_s)
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.warning("alert delivery worker stopped: %s; restarting", task.exception())
                await self._sleep(1.0)

    async def _partitions(self) -> None:
        await self.deps.pool.execute(
            "SELECT jobline_ensure_partitions(now() - interval '1 month', 4)")

    async def _promote(self) -> float:
        """Promote due delayed jobs; sleep until the earliest remaining due time."""
        _, next_due = await maintenance.promote_due(self.deps)
        if next_due is None:
            return TIMER_MAX_SLEEP_S
        return max((next_due - self.deps.clock.now_ms()) / 1000, 0.0)

    async def _cron(self) -> float | None:
        """Submit due cron runs; sleep until the earliest next fire time (bounded)."""
        rep = await schedules.cron_tick(self.deps)
        if rep.more:
            return None
        if rep.next_fire_ms is None:
            return CRON_MAX_SLEEP_S
        wait_ms = rep.next_fire_ms - self.deps.clock.now_ms()
        # <= 0: a peer scheduler is handling that schedule right now
        return min(CRON_MAX_SLEEP_S, wait_ms / 1000 if wait_ms > 0 else CRON_PEER_BACKOFF_S)

    async def _wake_loop(self, name: str, tick: Callable[[], Awaitable[float | None]],
                         wait_for_wake: Callable[[], Coroutine[Any, Any, bool]]) -> None:
        """Run ``tick`` whenever it is due: it returns how long to sleep (None: at once, it has
        more to do). The sleep ends early when ``wait_for_wake`` returns (a push to this loop's
        wake-up list: something new may be due sooner) or on stop.

        The blocking wait is kept across ticks until it fires, so a push that lands while
        ``tick`` runs is still seen; a failed tick or wait is logged and retried shortly after.
        """
        waker: asyncio.Task[bool] | None = None
        stop = asyncio.create_task(self._stop.wait())
        try:
            while not self._stop.is_set():
                try:
                    timeout = await tick()
                    self.ticks[name] += 1
                except Unavailable as e:
                    log.warning("%s: %s", name, e)
                    await self._sleep(0.5)
                    continue
                except Exception:
                    log.exception("%s tick failed", name)
                    await self._sleep(1.0)
                    continue
                if timeout is None:
                    continue
                if waker is None:
                    waker = asyncio.create_task(wait_for_wake())
                done, _ = await asyncio.wait([waker, stop], timeout=timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
                if waker in done:
                    if waker.exception() is not None:
                        log.warning("%s wake-up failed: %s", name, waker.exception())
                        await self._sleep(0.5)
                    waker = None
        finally:
            stop.cancel()
            if waker is not None:
                waker.cancel()
                with contextlib.suppress(BaseException):
                    await waker
