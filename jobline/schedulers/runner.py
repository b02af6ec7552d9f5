"""The scheduler process: the delayed-job timer, the lease reaper and the reconciler.

Every loop calls an idempotent core operation, so any number of scheduler processes may run at
once (each step is a Lua script or ``FOR UPDATE SKIP LOCKED``); running two only adds redundancy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from jobline.shared import maintenance, worker_events
from jobline.shared.deps import Deps, create_redis
from jobline.shared.dispatch import Dispatch
from jobline.shared.errors import Unavailable

log = logging.getLogger("jobline.scheduler")

#: A full reconcile also repairs the rare job left out of Redis by a crash between its Postgres
#: commit and its dispatch (the epoch check only catches a wholesale loss of Redis state).
FULL_RECONCILE_EVERY_S = 600.0
#: Partitions are created months ahead; checking daily is plenty.
PARTITIONS_EVERY_S = 86_400.0
#: workers.heartbeat_lost and queues.backlog events (docs/events.md).
WORKER_EVENTS_EVERY_S = 10.0


class Scheduler:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._stop = asyncio.Event()
        self.ticks = {"promote": 0, "reap": 0, "reconcile": 0}
        self.owner = f"scheduler:{uuid.uuid4().hex[:8]}"
        self._interrupt_task: asyncio.Task[None] | None = None

    def request_stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(RuntimeError):
            self._interrupt_task = asyncio.get_running_loop().create_task(self._interrupt())

    async def _interrupt(self) -> None:
        with contextlib.suppress(Exception):
            await self.deps.dispatch.interrupt(self.owner)

    async def run(self) -> None:
        s = self.deps.settings
        assert s.redis_url
        block = create_redis(s.redis_url, blocking=True)
        try:
            with contextlib.suppress(Unavailable):
                await maintenance.ensure_dispatch_state(self.deps)
            await asyncio.gather(
                self._timer_loop(Dispatch(block, s.redis_prefix)),
                self._every(s.sweep_ms / 1000, "reap", self._reap),
                self._every(FULL_RECONCILE_EVERY_S, "reconcile", self._reconcile),
                self._every(PARTITIONS_EVERY_S, "partitions", self._partitions),
                self._every(WORKER_EVENTS_EVERY_S, "worker_events", self._worker_events),
            )
        finally:
            await block.aclose()

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

    async def _reconcile(self) -> None:
        await maintenance.reconcile(self.deps)

    async def _worker_events(self) -> None:
        await worker_events.sweep_lost_workers(self.deps)
        await worker_events.emit_backlog(self.deps)

    async def _partitions(self) -> None:
        await self.deps.pool.execute(
            "SELECT jobline_ensure_partitions(now() - interval '1 month', 4)")

    async def _timer_loop(self, block: Dispatch) -> None:
        """Promote delayed jobs exactly when due: sleep until the earliest due time, or until an
        enqueue of a delayed job pushes the timer wake-up list (it may be earlier)."""
        waker: asyncio.Task[bool] | None = None
        stop = asyncio.create_task(self._stop.wait())
        try:
            while not self._stop.is_set():
                try:
                    _, next_due = await maintenance.promote_due(self.deps)
                    self.ticks["promote"] += 1
                except Unavailable as e:
                    log.warning("promote: %s", e)
                    await self._sleep(0.5)
                    continue
                if waker is None:
                    waker = asyncio.create_task(block.wait_for_timer(30.0, self.owner))
                timeout = 30.0
                if next_due is not None:
                    timeout = max((next_due - self.deps.clock.now_ms()) / 1000, 0.0)
                done, _ = await asyncio.wait([waker, stop], timeout=timeout,
                                             return_when=asyncio.FIRST_COMPLETED)
                if waker in done:
                    if waker.exception() is not None:
                        log.warning("timer wake-up failed: %s", waker.exception())
                        await self._sleep(0.5)
                    waker = None
        finally:
            stop.cancel()
            if waker is not None:
                waker.cancel()
                with contextlib.suppress(BaseException):
                    await waker
