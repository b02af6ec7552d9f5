"""The event consumers (``jobline consumer audit|analytics|alerts``): one loop, three effects.

Each consumer is a member of its kind's group on the bus: run several for throughput or
redundancy. A batch is fetched, applied once (receipts in the same transaction as the effect,
:func:`jobline.shared.events.outbox.apply_once`), then acknowledged; a consumer killed anywhere in
between re-processes the batch without double counting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from jobline.analytics import alerts, rollups
from jobline.shared.events import audit
from jobline.shared.events.bus import BusConsumer, EventBus
from jobline.shared.events.outbox import Event, apply_once, prune_receipts
from jobline.shared.platform.connections import Deps

log = logging.getLogger("jobline.consumer")

KINDS = (audit.GROUP, rollups.GROUP, alerts.GROUP)


def consumer_name(kind: str) -> str:
    return f"{kind}-{socket.gethostname()}-{os.getpid()}"


class EventConsumer:
    def __init__(self, deps: Deps, bus: EventBus, kind: str, *, name: str | None = None,
                 batch: int = 500, detector: alerts.SpikeDetector | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown consumer kind {kind!r} (one of {', '.join(KINDS)})")
        self.deps = deps
        self.bus = bus
        self.kind = kind
        self.name = name or consumer_name(kind)
        self.batch = batch
        self.applied = 0
        self.detector = detector or alerts.SpikeDetector()
        self._consumer: BusConsumer | None = None
        self._stop = asyncio.Event()
        self._apply: Callable[[Any, list[Event]], Awaitable[None]]
        if kind == audit.GROUP:
            self._apply = self._audit
        elif kind == rollups.GROUP:
            self._apply = rollups.apply
        else:
            self._apply = alerts.make_apply(deps, self.detector)

    async def _audit(self, conn: Any, events: list[Event]) -> None:
        await audit.store(conn, events, self.deps.clock.now_ms())

    async def start(self) -> None:
        if self._consumer is None:
            self._consumer = await self.bus.consumer(self.kind, self.name)
            if self.kind == audit.GROUP:
                await audit.ensure_partitions(self.deps)

    async def step(self, timeout_s: float = 1.0, *, ack: bool = True) -> int:
        """Fetch, apply and acknowledge one batch; returns the number of deliveries.
        ``ack=False`` leaves the batch unacknowledged: what a consumer killed after its commit
        leaves behind."""
        await self.start()
        assert self._consumer is not None
        deliveries = await self._consumer.fetch(self.batch, timeout_s)
        if not deliveries:
            return 0
        fresh = await apply_once(self.deps, self.kind, [d.event for d in deliveries],
                                 self._apply)
        self.applied += len(fresh)
        if ack:
            await self._consumer.ack(deliveries)
        return len(deliveries)

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        await self.start()
        loop = asyncio.get_running_loop()
        pruned = 0.0
        while not self._stop.is_set():
            try:
                await self.step(1.0)
                if loop.time() - pruned > 3600:
                    pruned = loop.time()
                    await prune_receipts(self.deps)
            except Exception:
                log.exception("%s consumer step failed", self.kind)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), 1.0)

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.close()
            self._consumer = None
