"""The in-process live feed: one bus tail per process, fanned out to any number of subscribers
(the GraphQL subscriptions and WebSocket pushes use it).

``subscribe(filter)`` returns an async iterator of matching events from the moment of the call.
Each subscriber has a bounded queue: a slow subscriber loses its oldest undelivered events (and
can see how many in ``dropped``) instead of slowing the feed or the other subscribers down. The
feed is a view, not a record: a subscriber that needs every event reads the audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType

from jobline.shared.events.bus import EventBus
from jobline.shared.events.outbox import Event

log = logging.getLogger("jobline.livefeed")


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Match everything given (None = any)."""

    types: frozenset[str] | None = None
    queue: str | None = None
    job_id: uuid.UUID | None = None

    def matches(self, e: Event) -> bool:
        return ((self.types is None or e.type in self.types)
                and (self.queue is None or e.queue == self.queue)
                and (self.job_id is None or e.job_id == self.job_id))


class Subscription:
    def __init__(self, feed: LiveFeed, flt: EventFilter, maxsize: int) -> None:
        self.feed = feed
        self.filter = flt
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.dropped = 0

    def offer(self, e: Event) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(e)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        return await self.queue.get()

    def close(self) -> None:
        self.feed._subs.discard(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class LiveFeed:
    def __init__(self, bus: EventBus, *, queue_size: int = 1000) -> None:
        self.bus = bus
        self.queue_size = queue_size
        self._subs: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def start(self) -> None:
        """Start tailing the bus; returns once events published from now on will be seen."""
        if self._task is None:
            self._task = asyncio.create_task(self._pump(), name="jobline-livefeed")
        await self.ready.wait()

    def subscribe(self, flt: EventFilter | None = None) -> Subscription:
        sub = Subscription(self, flt or EventFilter(), self.queue_size)
        self._subs.add(sub)
        return sub

    async def _pump(self) -> None:
        while True:
            tail: AsyncIterator[Event] = self.bus.tail(self.ready)
            try:
                async for e in tail:
                    for sub in list(self._subs):
                        if sub.filter.matches(e):
                            sub.offer(e)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("live feed tail failed (%s); resubscribing", exc)
                await asyncio.sleep(0.5)  # back-off before reconnecting to the bus

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
