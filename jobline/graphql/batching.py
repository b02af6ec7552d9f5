"""Coalescing a live-feed subscription into batches, so a flood costs one GraphQL execution (and
one WebSocket message) per window instead of one per event."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

from jobline.shared.events.livefeed import Subscription
from jobline.shared.events.outbox import Event


@dataclass(frozen=True, slots=True)
class Batch:
    events: list[Event]
    dropped: int  # events the subscriber lost (its queue overflowed) since the previous batch


async def coalesce(sub: Subscription, window_s: float, max_events: int) -> AsyncIterator[Batch]:
    """Yield the subscription's events in batches, oldest first, none lost here.

    Invariants: a batch is never empty and holds at most ``max_events``; an event that arrives
    after a quiet ``window_s`` goes out at once (leading edge: idle latency is not raised by the
    window); while events keep coming, batches are at least ``window_s`` apart and each takes
    everything queued up to then. A full batch with more waiting does not wait for the window.
    """
    loop = asyncio.get_running_loop()
    last = -math.inf
    seen_dropped = 0  # the subscription counts its losses from its start
    while True:
        first = await sub.queue.get()
        wait = last + window_s - loop.time()
        if wait > 0:
            # Within the previous batch's window: let the rest of this window's events queue up
            # (the feed's bounded queue holds them) rather than wake per event.
            await asyncio.sleep(wait)
        events = [first]
        while len(events) < max_events and not sub.queue.empty():
            events.append(sub.queue.get_nowait())
        dropped, seen_dropped = sub.dropped - seen_dropped, sub.dropped
        last = loop.time() if sub.queue.empty() else -math.inf
        yield Batch(events, dropped)
