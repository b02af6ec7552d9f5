"""Coalescing a live-feed subscription into batches (jobline/graphql/batching.py): nothing lost or
reordered, full batches do not wait, the first event after a quiet spell is not delayed."""

from __future__ import annotations

import asyncio
import uuid
from typing import cast

from jobline.graphql.batching import Batch, coalesce
from jobline.shared.events.bus import EventBus
from jobline.shared.events.livefeed import LiveFeed
from jobline.shared.events.outbox import Event

LONG = 3600.0  # a window no test waits out: a batch that waited for it would time out


def ev(i: int) -> Event:
    return Event(uuid.uuid4(), "jobs.submitted", i, queue="q", data={"n": i})


def feed(size: int = 1000) -> LiveFeed:
    # The feed's bus is only used by start(); these tests offer events directly.
    return LiveFeed(cast(EventBus, None), queue_size=size)


async def test_queued_events_come_in_full_batches_without_waiting_for_the_window() -> None:
    with feed().subscribe() as sub:
        for i in range(7):
            sub.offer(ev(i))
        it = coalesce(sub, LONG, 5)
        a = await asyncio.wait_for(anext(it), 10)
        b = await asyncio.wait_for(anext(it), 10)  # more was waiting: no window wait
        assert [e.data["n"] for e in a.events] == [0, 1, 2, 3, 4]
        assert [e.data["n"] for e in b.events] == [5, 6]
        assert (a.dropped, b.dropped) == (0, 0)


async def test_first_event_goes_at_once_later_ones_wait_for_the_window() -> None:
    with feed().subscribe() as sub:
        it = coalesce(sub, LONG, 100)
        first = asyncio.ensure_future(anext(it))
        await asyncio.sleep(0)
        sub.offer(ev(1))
        got = await asyncio.wait_for(first, 10)  # leading edge: not held for the window
        assert [e.data["n"] for e in got.events] == [1]
        nxt = asyncio.ensure_future(anext(it))
        sub.offer(ev(2))
        sub.offer(ev(3))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not nxt.done()  # inside the window: gathering, not sending per event
        nxt.cancel()


async def test_a_short_window_gathers_everything_that_arrived_meanwhile() -> None:
    with feed().subscribe() as sub:
        it = coalesce(sub, 0.05, 100)
        sub.offer(ev(0))
        assert len((await asyncio.wait_for(anext(it), 10)).events) == 1
        nxt = asyncio.ensure_future(anext(it))
        for i in range(1, 4):
            sub.offer(ev(i))
        got: Batch = await asyncio.wait_for(nxt, 10)
        assert [e.data["n"] for e in got.events] == [1, 2, 3]


async def test_overflow_keeps_the_newest_and_reports_the_loss_once() -> None:
    with feed(size=3).subscribe() as sub:
        for i in range(5):
            sub.offer(ev(i))
        it = coalesce(sub, 0.01, 100)
        got = await asyncio.wait_for(anext(it), 10)
        assert ([e.data["n"] for e in got.events], got.dropped) == ([2, 3, 4], 2)
        sub.offer(ev(5))
        assert (await asyncio.wait_for(anext(it), 10)).dropped == 0
