"""The ``Subscription`` root: live events from the app's one feed (a single bus tail)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from jobline.shared.core import jobs as jobs_core
from jobline.shared.core import progress as progress_core
from jobline.shared.events.livefeed import EventFilter
from jobline.shared.observe import monitoring
from jobline.shared.platform.errors import JoblineError

from .batching import coalesce
from .common import A, D, ctx, parse_id
from .context import Context
from .errors import to_graphql_error
from .inputs import EventFilterInput, event_filter
from .types import Job, JobEvent, JobEventBatch, JobProgress, QueueMetrics


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Job, worker and queue events as they are published.")
    async def job_events(self, info: Info[Context, None],
                         filter: EventFilterInput | None = None) -> AsyncGenerator[JobEvent, None]:
        c = ctx(info)
        c.require(D, "subscribe to job events")
        try:
            flt = event_filter(filter)
        except JoblineError as e:
            raise to_graphql_error(e) from None
        with (await c.feed()).subscribe(flt) as sub:
            async for ev in sub:
                yield JobEvent.of(ev)

    @strawberry.subscription(description="The job, re-read after each of its events.")
    async def job_updated(self, info: Info[Context, None],
                          id: strawberry.ID) -> AsyncGenerator[Job, None]:
        c = ctx(info)
        c.require(D, "subscribe to jobs")
        try:
            job_id = parse_id(id, "id")
            with (await c.feed()).subscribe(EventFilter(job_id=job_id)) as sub:
                yield Job.of(await jobs_core.get_job(c.deps, job_id, history=False))
                async for _ in sub:
                    yield Job.of(await jobs_core.get_job(c.deps, job_id, history=False))
        except JoblineError as e:
            raise to_graphql_error(e) from None

    @strawberry.subscription(description="The job's progress and log lines now and after each "
                                         "report of its running attempt (null until one).")
    async def job_progress(self, info: Info[Context, None],
                           job_id: strawberry.ID) -> AsyncGenerator[JobProgress | None, None]:
        c = ctx(info)
        c.require(D, "subscribe to jobs")
        try:
            jid = parse_id(job_id, "jobId")
            await jobs_core.get_job(c.deps, jid, history=False)  # 404 for an unknown job
            # subscribed before the first read, so no report falls between the two
            async for _ in progress_core.updates(c.deps, jid):
                p = await progress_core.get_progress(c.deps, jid)
                yield JobProgress.of(jid, p) if p is not None else None
        except JoblineError as e:
            raise to_graphql_error(e) from None

    @strawberry.subscription(description="Queue metrics now, every intervalMs, and whenever "
                                         "the queue's backlog changes (admin).")
    async def queue_stats(self, info: Info[Context, None], queue: str,
                          interval_ms: int | None = None) -> AsyncGenerator[QueueMetrics, None]:
        c = ctx(info)
        c.require(A, "subscribe to queue metrics")
        interval = interval_ms / 1000 if interval_ms else c.queue_stats_interval_s
        if interval < 0.1:
            raise GraphQLError("intervalMs: at least 100", extensions={"code": "BAD_USER_INPUT",
                                                                        "field": "intervalMs"})
        flt = EventFilter(types=frozenset({"queues.backlog"}), queue=queue)
        with (await c.feed()).subscribe(flt) as sub:
            while True:
                found = await monitoring.queue_metrics(c.deps, queue)
                yield QueueMetrics.of(found[0])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(sub.queue.get(), interval)

    @strawberry.subscription(description="Worker started/stopped/lost events (admin).")
    async def worker_events(self, info: Info[Context, None]) -> AsyncGenerator[JobEvent, None]:
        c = ctx(info)
        c.require(A, "subscribe to worker events")
        flt = EventFilter(types=frozenset({"workers.started", "workers.stopped",
                                           "workers.heartbeat_lost"}))
        with (await c.feed()).subscribe(flt) as sub:
            async for e in sub:
                yield JobEvent.of(e)

    @strawberry.subscription(description=(
        "Job, worker and queue events in batches: the first event after a quiet windowMs goes "
        "out at once, later ones are gathered for windowMs (default 50) into one message of at "
        "most maxEvents (default 500). The same events as jobEvents at a fraction of the cost "
        "under load: one execution and one message per batch instead of per event."))
    async def job_event_batches(self, info: Info[Context, None],
                                filter: EventFilterInput | None = None,
                                window_ms: int | None = None,
                                max_events: int | None = None,
                                ) -> AsyncGenerator[JobEventBatch, None]:
        c = ctx(info)
        c.require(D, "subscribe to job events")
        window = 50 if window_ms is None else window_ms
        most = 500 if max_events is None else max_events
        if not 10 <= window <= 5000:
            raise GraphQLError("windowMs: from 10 to 5000", extensions={
                "code": "BAD_USER_INPUT", "field": "windowMs"})
        if not 1 <= most <= 1000:
            raise GraphQLError("maxEvents: from 1 to 1000", extensions={
                "code": "BAD_USER_INPUT", "field": "maxEvents"})
        try:
            flt = event_filter(filter)
        except JoblineError as e:
            raise to_graphql_error(e) from None
        with (await c.feed()).subscribe(flt) as sub:
            async for b in coalesce(sub, window / 1000, most):
                yield JobEventBatch(raw=b.events, count=len(b.events), dropped=b.dropped)
