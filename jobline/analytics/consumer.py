"""The event consumers (``jobline consumer [--kinds analytics,alerts]``): one loop per group,
every group in one process.

Each group (kind) is processed by one consumer at a time: a consumer holds the group's advisory
lock on its own connection (a second one waits as a standby and takes over when the first dies,
since PostgreSQL releases the lock with the dead connection). The holder first takes over every
entry the group's earlier consumers left unacknowledged, then fetches a batch, applies it once
(:func:`jobline.shared.events.outbox.apply_once`: the group's watermark moves in the effect's
transaction) and acknowledges it; a consumer killed anywhere in between re-processes the batch
without double counting. The audit log needs no consumer: it is the outbox (docs/events.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import zlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from jobline.analytics import alerts, rollups
from jobline.shared.events.bus import BusConsumer, EventBus
from jobline.shared.events.outbox import Event, apply_once
from jobline.shared.platform.connections import Deps

log = logging.getLogger("jobline.consumer")

KINDS = (rollups.GROUP, alerts.GROUP)
#: Kinds that once had a consumer and need none now (accepted on the command line, ignored).
RETIRED_KINDS = ("audit",)


def consumer_name(kind: str) -> str:
    return f"{kind}-{socket.gethostname()}-{os.getpid()}"


def group_lock_key(kind: str) -> int:
    """A stable 63-bit advisory-lock key per group (and database)."""
    return 0x6A6C000000000000 | zlib.crc32(f"jobline.consumer.{kind}".encode())


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
        self._lock_conn: asyncpg.Connection | None = None
        self._stop = asyncio.Event()
        self._apply: Callable[[Any, list[Event]], Awaitable[None]]
        if kind == rollups.GROUP:
            self._apply = rollups.apply
        else:
            self._apply = alerts.make_apply(deps, self.detector)

    async def start(self) -> None:
        """Become the group's consumer: wait for its lock, then take over what earlier
        consumers of the group left unacknowledged."""
        if self._consumer is not None:
            return
        if self._lock_conn is None:
            conn: asyncpg.Connection = await asyncpg.connect(self.deps.settings.database_url)
            try:
                # Session-level on a connection of its own (never a pooled one): held for the
                # consumer's life, released by PostgreSQL when the process or connection dies.
                await conn.execute("SELECT pg_advisory_lock($1)", group_lock_key(self.kind))
            except BaseException:
                await conn.close()
                raise
            self._lock_conn = conn
        consumer = await self.bus.consumer(self.kind, self.name)
        await consumer.take_over()
        self._consumer = consumer

    async def step(self, timeout_s: float = 1.0, *, ack: bool = True) -> int:
        """Fetch, apply and acknowledge one batch; returns the number of deliveries.
        ``ack=False`` leaves the batch unacknowledged: what a consumer killed after its commit
        leaves behind."""
        await self.start()
        assert self._consumer is not None
        if self._lock_conn is None or self._lock_conn.is_closed():
            raise RuntimeError(f"{self.kind} consumer lost its group lock")
        deliveries = await self._consumer.fetch(self.batch, timeout_s)
        if not deliveries:
            return 0
        fresh = await apply_once(self.deps, self.kind, [(d.part, d.event) for d in deliveries],
                                 self._apply)
        self.applied += len(fresh)
        if ack:
            await self._consumer.ack(deliveries)
        return len(deliveries)

    def request_stop(self) -> None:
        self._stop.set()

    async def _start_unless_stopped(self) -> bool:
        """``start`` (a standby waits here for the group lock), abandoned on a stop request.
        Returns whether this consumer now holds the group."""
        starting = asyncio.ensure_future(self.start())
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not starting.done():
                starting.cancel()  # asyncpg cancels the waiting pg_advisory_lock
                with contextlib.suppress(asyncio.CancelledError):
                    await starting
        if starting.cancelled():
            return False
        starting.result()  # re-raise a failed start
        return True

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._consumer is None and not await self._start_unless_stopped():
                    break
                await self.step(1.0)
            except Exception:
                log.exception("%s consumer step failed", self.kind)
                if self._lock_conn is None or self._lock_conn.is_closed():
                    # Another consumer may hold the group now: start over as a standby.
                    await self.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), 1.0)

    async def close(self) -> None:
        """Stop being the group's consumer (unacknowledged deliveries stay pending for the
        next one)."""
        if self._consumer is not None:
            await self._consumer.close()
            self._consumer = None
        if self._lock_conn is not None:
            with contextlib.suppress(Exception):
                await self._lock_conn.close()
            self._lock_conn = None


class ConsumerHost:
    """Several consumer groups in one process (``jobline consumer`` with no kind runs all)."""

    def __init__(self, deps: Deps, bus: EventBus, kinds: Sequence[str] = KINDS) -> None:
        self.consumers = [EventConsumer(deps, bus, k) for k in kinds]
        self._stop = asyncio.Event()

    def request_stop(self) -> None:
        self._stop.set()
        for c in self.consumers:
            c.request_stop()

    async def run(self) -> None:
        if not self.consumers:  # only retired kinds asked for: idle until stopped
            await self._stop.wait()
            return
        await asyncio.gather(*(c.run() for c in self.consumers))

    async def close(self) -> None:
        for c in self.consumers:
            await c.close()


def parse_kinds(kind: str | None, kinds: str | None) -> list[str]:
    """The groups to run: ``kind`` and/or the comma-separated ``kinds``; all when neither.
    Retired kinds (audit) are dropped with a note; unknown ones are an error."""
    asked = [k.strip() for k in ([kind] if kind else []) + (kinds or "").split(",") if k.strip()]
    out: list[str] = []
    for k in asked:
        if k in RETIRED_KINDS:
            log.warning("consumer kind %r needs no consumer any more (the audit log is the "
                        "outbox, docs/events.md); ignored", k)
        elif k not in KINDS:
            raise ValueError(f"unknown consumer kind {k!r} (one of {', '.join(KINDS)})")
        elif k not in out:
            out.append(k)
    return out if asked else list(KINDS)
