"""The ``Query`` root: reads, each behind its role check."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from jobline.shared.core import job_types as job_types_core
from jobline.shared.core import jobs as jobs_core
from jobline.shared.core.job_search import JobSearch, search_jobs
from jobline.shared.events.audit import query as audit_query
from jobline.shared.fleet import actions as fleet_actions
from jobline.shared.observe import monitoring
from jobline.shared.platform.errors import NotFound, ValidationFailed
from jobline.shared.retry import dlq
from jobline.shared.schedules import recurring as schedules_core

from . import loaders
from .ai import AiQueries
from .alerts import AlertQueries
from .analytics import AnalyticsQueries
from .common import A, D, ctx, opt_ms, parse_id
from .context import Context
from .errors import domain
from .inputs import DlqFilterInput, JobFilter
from .types import (
    AuditPage,
    Batch,
    DeadLetterPage,
    DensityCell,
    DurationHistogram,
    HistogramBucket,
    Job,
    JobConnection,
    JobEdge,
    JobType,
    PageInfo,
    Queue,
    QueueControls,
    QueueMetrics,
    RateLimit,
    ReadReplica,
    Schedule,
    StatusCounts,
    ThroughputPoint,
    Timeline,
    TimelineDensity,
    TimelineEntry,
    Viewer,
    Worker,
)
from .workers import WorkerQueries


@strawberry.type
class Query(AlertQueries, AnalyticsQueries, WorkerQueries, AiQueries):
    @strawberry.field
    @domain
    async def job(self, info: Info[Context, None], id: strawberry.ID) -> Job | None:
        c = ctx(info)
        c.require(D, "read jobs")
        try:
            j = await jobs_core.get_job(c.deps, parse_id(id, "id"), history=False)
        except NotFound:
            return None
        return Job.of(j)

    @strawberry.field(description="Newest first; Relay-style cursor paging.")
    @domain
    async def jobs(self, info: Info[Context, None], filter: JobFilter | None = None,
                   first: int = 50, after: str | None = None) -> JobConnection:
        c = ctx(info)
        c.require(D, "list jobs")
        f = filter or JobFilter()
        page = await c.read(lambda d: search_jobs(d, JobSearch(
            queue=f.queue, status=f.status.value if f.status else None, job_type=f.job_type,
            error_type=f.error_type, from_ms=opt_ms(f.created_from), to_ms=opt_ms(f.created_to),
            payload_match=f.payload_match,  # type: ignore[arg-type]
            text=f.search), first=first, after=after))
        return JobConnection(
            edges=[JobEdge(cursor=str(j.id), node=Job.of(j)) for j in page.jobs],
            page_info=PageInfo(has_next_page=page.next_cursor is not None,
                               end_cursor=str(page.jobs[-1].id) if page.jobs else None))

    @strawberry.field
    @domain
    async def queues(self, info: Info[Context, None]) -> list[Queue]:
        c = ctx(info)
        c.require(D, "list queues")
        out = []
        for q in await c.read(jobs_core.queue_stats):
            rl = q["rateLimit"]
            out.append(Queue(
                name=q["name"],
                counts=StatusCounts(waiting=q["waiting"], pending=q["pending"],
                                    scheduled=q["scheduled"], processing=q["processing"],
                                    completed=q["completed"], failed=q["failed"],
                                    dead_letter=q["deadLetter"], cancelled=q["cancelled"]),
                controls=QueueControls(name=q["name"], paused=q["paused"],
                                       max_in_flight=q["maxInFlight"],
                                       rate_limit=RateLimit(limit=rl["limit"],
                                                            window_ms=rl["windowMs"])
                                       if rl else None)))
        return out

    @strawberry.field
    @domain
    async def workers(self, info: Info[Context, None]) -> list[Worker]:
        c = ctx(info)
        c.require(A, "list workers")
        return [Worker.of(w) for w in await c.read(fleet_actions.workers)]

    @strawberry.field
    @domain
    async def batch(self, info: Info[Context, None], id: strawberry.ID) -> Batch | None:
        c = ctx(info)
        c.require(D, "read batches")
        b = await c.batches.load(parse_id(id, "id"))
        return Batch.of(b) if b is not None else None

    @strawberry.field
    @domain
    async def batches(self, info: Info[Context, None], ids: list[strawberry.ID]) -> list[Batch]:
        c = ctx(info)
        c.require(D, "read batches")
        if len(ids) > 100:
            raise ValidationFailed("ids", "at most 100")
        found = await c.batches.load_many([parse_id(i, "ids") for i in ids])
        return [Batch.of(b) for b in found if b is not None]

    @strawberry.field(description="The job-type registry: each type's registered defaults and "
                                  "the live workers serving it.")
    @domain
    async def job_types(self, info: Info[Context, None]) -> list[JobType]:
        c = ctx(info)
        c.require(D, "list job types")
        return [JobType.of(t) for t in await job_types_core.list_job_types(c.deps)]

    @strawberry.field(description="Cron schedules with their next fire times.")
    @domain
    async def scheduled_jobs(self, info: Info[Context, None]) -> list[Schedule]:
        c = ctx(info)
        c.require(D, "list schedules")
        return [Schedule.of(s) for s in await schedules_core.list_schedules(c.deps)]

    @strawberry.field
    @domain
    async def dead_letters(self, info: Info[Context, None], filter: DlqFilterInput | None = None,
                           first: int = 50, after: str | None = None) -> DeadLetterPage:
        c = ctx(info)
        c.require(A, "list the dead-letter queue")
        if not 1 <= first <= 500:
            raise ValidationFailed("first", "must be 1-500")
        f = (filter or DlqFilterInput()).to_core()
        cursor = parse_id(after, "after") if after else None
        page = await c.read(lambda d: dlq.list_dead_letters(d, f, cursor=cursor, limit=first))
        return DeadLetterPage(jobs=[Job.of(j) for j in page.jobs], next_cursor=page.next_cursor)

    @strawberry.field
    @domain
    async def audit_events(self, info: Info[Context, None], job_id: strawberry.ID | None = None,
                           type: str | None = None, from_: Annotated[
                               datetime | None, strawberry.argument(name="from")] = None,
                           to: datetime | None = None, first: int = 100,
                           after: str | None = None) -> AuditPage:
        c = ctx(info)
        c.require(A, "read the audit log")
        jid = parse_id(job_id, "jobId") if job_id else None
        page = await c.read(lambda d: audit_query(
            d, job_id=jid, type_=type, from_ms=opt_ms(from_), to_ms=opt_ms(to), limit=first,
            cursor=after))
        return AuditPage(events=[JSON(e) for e in page.events], next_cursor=page.next_cursor)

    @strawberry.field(description="Per-queue live depth and recent rollup figures (admin).")
    @domain
    async def queue_metrics(self, info: Info[Context, None],
                            queue: str | None = None) -> list[QueueMetrics]:
        c = ctx(info)
        c.require(A, "read queue metrics")
        return [QueueMetrics.of(m) for m in await c.read(
            lambda d: monitoring.queue_metrics(d, queue))]

    @strawberry.field(description="Jobs created in [from, to) for a Gantt chart (admin).")
    @domain
    async def job_timeline(self, info: Info[Context, None],
                           from_: Annotated[datetime | None, strawberry.argument(name="from")]
                           = None, to: datetime | None = None, queue: str | None = None,
                           first: int = 500, after: str | None = None) -> Timeline:
        c = ctx(info)
        c.require(A, "read metrics")
        page = await c.read(lambda d: monitoring.job_timeline(
            d, opt_ms(from_), opt_ms(to), queue=queue, limit=first, cursor=after))
        return Timeline(items=[TimelineEntry(
            id=strawberry.ID(i["id"]), queue=i["queue"], job_type=i["jobType"],
            status=i["status"], created_ms=i["createdMs"], start_ms=i["startMs"],
            end_ms=i["endMs"], duration_ms=i["durationMs"], attempts=i["attempts"],
            worker_id=i["workerId"]) for i in page.items], next_cursor=page.next_cursor)

    @strawberry.field(description=(
        "Jobs created in [from, to) counted per lane (lanes: worker or queue) and per slice "
        "of the window by their start (buckets slices, 1-2000): the Gantt zoomed out (admin)."))
    @domain
    async def job_timeline_density(self, info: Info[Context, None],
                                   from_: Annotated[datetime | None,
                                                    strawberry.argument(name="from")] = None,
                                   to: datetime | None = None, queue: str | None = None,
                                   lanes: str = "worker", buckets: int = 200) -> TimelineDensity:
        c = ctx(info)
        c.require(A, "read metrics")
        if lanes not in ("worker", "queue"):
            raise ValidationFailed("lanes", "worker or queue")
        d = await c.read(lambda deps: monitoring.timeline_density(
            deps, opt_ms(from_), opt_ms(to), queue=queue, by_worker=lanes == "worker",
            buckets=buckets))
        return TimelineDensity(from_ms=d["fromMs"], to_ms=d["toMs"], bucket_ms=d["bucketMs"],
                               cells=[DensityCell(**c) for c in d["cells"]])

    @strawberry.field(description="Duration (or wait) histogram from the rollups (admin).")
    @domain
    async def duration_histogram(self, info: Info[Context, None], queue: str | None = None,
                                 job_type: str | None = None, metric: str = "duration",
                                 from_: Annotated[datetime | None,
                                                  strawberry.argument(name="from")] = None,
                                 to: datetime | None = None) -> DurationHistogram:
        c = ctx(info)
        c.require(A, "read metrics")
        h = await c.read(lambda d: monitoring.duration_histogram(
            d, queue=queue, job_type=job_type, metric=metric, from_ms=opt_ms(from_),
            to_ms=opt_ms(to)))
        return DurationHistogram(
            metric=h["metric"], total=h["total"],
            buckets=[HistogramBucket(lower_ms=b["lowerMs"], upper_ms=b["upperMs"],
                                     count=b["count"]) for b in h["buckets"]],
            p50_ms=h["p50Ms"], p95_ms=h["p95Ms"], p99_ms=h["p99Ms"])

    @strawberry.field(description="Per-minute counts from the rollups (admin).")
    @domain
    async def throughput_series(self, info: Info[Context, None], queue: str | None = None,
                                from_: Annotated[datetime | None,
                                                 strawberry.argument(name="from")] = None,
                                to: datetime | None = None) -> list[ThroughputPoint]:
        c = ctx(info)
        c.require(A, "read metrics")
        return [ThroughputPoint(
            minute_ms=p["minuteMs"], submitted=p["submitted"], started=p["started"],
            completed=p["completed"], failed=p["failed"], retries=p["retries"],
            dead_letter=p["deadLetter"], cancelled=p["cancelled"],
            avg_duration_ms=p["avgDurationMs"])
            for p in await c.read(lambda d: monitoring.throughput_series(
                d, queue=queue, from_ms=opt_ms(from_), to_ms=opt_ms(to)))]

    @strawberry.field(description="Who the API key belongs to: the dashboard follows its role.")
    def viewer(self, info: Info[Context, None]) -> Viewer:
        p = ctx(info).require(D, "read its own key")
        return Viewer(role=str(p.role), name=p.name)

    @strawberry.field(description="Where this request's staleness-tolerant reads go.")
    def read_replica(self, info: Info[Context, None]) -> ReadReplica:
        c = ctx(info)
        c.require(D, "read the read routing")
        s = c.read_source()
        return ReadReplica(source=s.source, lag_ms=s.lag_ms, max_lag_ms=s.max_lag_ms,
                           reason=s.reason)

    @strawberry.field(description="The newest batches first (at most 100).")
    @domain
    async def recent_batches(self, info: Info[Context, None], first: int = 20) -> list[Batch]:
        c = ctx(info)
        c.require(D, "read batches")
        if not 1 <= first <= 100:
            raise ValidationFailed("first", "must be 1-100")
        found = await c.batches.load_many(await loaders.recent_batch_ids(c.deps, first))
        return [Batch.of(b) for b in found if b is not None]

    @strawberry.field(description="How many dead-lettered jobs the filter matches (admin).")
    @domain
    async def dead_letter_count(self, info: Info[Context, None],
                                filter: DlqFilterInput | None = None) -> int:
        c = ctx(info)
        c.require(A, "count the dead-letter queue")
        f = (filter or DlqFilterInput()).to_core()
        return await c.read(lambda d: dlq.count_dead_letters(d, f))
