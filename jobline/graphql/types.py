"""The GraphQL output types, each with ``of`` building it from its core value."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from jobline.shared.core import jobs as jobs_core
from jobline.shared.core import progress as progress_core
from jobline.shared.core.models import Attempt as CoreAttempt
from jobline.shared.core.models import Job as CoreJob
from jobline.shared.core.models import Status
from jobline.shared.core.progress import Progress as CoreProgress
from jobline.shared.dispatch.redis_dispatch import QueueControls as CoreControls
from jobline.shared.events.outbox import Event as CoreEvent
from jobline.shared.flow import dag
from jobline.shared.flow.batches import BatchStatus
from jobline.shared.observe import monitoring
from jobline.shared.platform.clock import to_dt
from jobline.shared.platform.wire import wire_values
from jobline.shared.schedules.recurring import Schedule as CoreSchedule
from jobline.shared.security.masking import mask, mask_text

from .common import A, ctx, opt_dt
from .context import Context
from .errors import domain

#: The seed's WebSocket broadcast names for the events that had one.
SEED_NAMES = {"jobs.completed": "job_completed", "jobs.failed": "job_failed",
              "workers.started": "worker_started", "queues.backlog": "queue_backlog"}

JobStatus = strawberry.enum(Status, name="JobStatus")


@strawberry.type(description="The retry advisor's decision for a failed attempt "
                            "(adaptive jobs only).")
class RetryDecision:
    retry: bool
    delay_ms: int
    success_probability: float | None
    reason: str


@strawberry.type
class Attempt:
    attempt: int
    worker_id: str | None
    started_at: datetime
    finished_at: datetime
    outcome: str
    error_type: str | None
    raw_error: strawberry.Private[str | None]
    duration_ms: int | None
    retry_decision: RetryDecision | None = None

    @strawberry.field
    def error(self, info: Info[Context, None]) -> str | None:
        return mask_text(self.raw_error, ctx(info).deps.settings.mask_keys)

    @staticmethod
    def of(a: CoreAttempt) -> Attempt:
        return Attempt(attempt=a.attempt, worker_id=a.worker_id, started_at=to_dt(a.started_ms),
                       finished_at=to_dt(a.finished_ms), outcome=a.outcome,
                       error_type=a.error_type, raw_error=a.error, duration_ms=a.duration_ms,
                       retry_decision=_decision(a.retry_decision))


def _decision(d: dict[str, Any] | None) -> RetryDecision | None:
    if d is None:
        return None
    return RetryDecision(retry=d["retry"], delay_ms=d["delayMs"],
                         success_probability=d.get("successProbability"), reason=d["reason"])


@strawberry.type
class GraphNode:
    id: strawberry.ID
    job_type: str
    status: JobStatus  # type: ignore[valid-type]
    queue: str


@strawberry.type
class GraphEdge:
    dependency: strawberry.ID
    dependent: strawberry.ID


@strawberry.type
class DependencyGraph:
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    truncated: bool


@strawberry.type
class Batch:
    id: strawberry.ID
    name: str
    total: int
    completed: int
    failed: int
    pending: int
    processing: int
    status: str
    created_at: datetime
    completed_at: datetime | None
    on_complete_job_id: strawberry.ID | None

    @staticmethod
    def of(b: BatchStatus) -> Batch:
        return Batch(**wire_values(b, time=to_dt, ident=str))


@strawberry.type
class LogLine:
    time: datetime
    message: str


@strawberry.type(description="What a job's latest attempt reported with ctx.progress/ctx.log.")
class JobProgress:
    job_id: strawberry.ID
    attempt: int
    fraction: float | None = strawberry.field(description="0..1, null if only logs came.")
    message: str | None
    logs: list[LogLine] = strawberry.field(description="The last 100 lines, oldest first.")
    logs_dropped: int = strawberry.field(description="Earlier lines no longer kept.")
    updated_at: datetime

    @staticmethod
    def of(job_id: uuid.UUID, p: CoreProgress) -> JobProgress:
        return JobProgress(job_id=strawberry.ID(str(job_id)), attempt=p.attempt,
                           fraction=p.fraction, message=p.message,
                           logs=[LogLine(time=to_dt(t), message=m) for t, m in p.logs],
                           logs_dropped=p.logs_dropped, updated_at=to_dt(p.updated_ms))


@strawberry.type
class Job:
    id: strawberry.ID
    queue: str
    job_type: str
    # Stored unmasked (handlers need the real values); every read masks them as REST does.
    raw_payload: strawberry.Private[Any]
    status: JobStatus  # type: ignore[valid-type]
    priority: int
    attempts: int
    max_attempts: int
    raw_result: strawberry.Private[Any]
    raw_error: strawberry.Private[str | None]
    error_type: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    scheduled_for: datetime
    timeout_ms: int | None
    idempotency_key: str | None
    worker_id: str | None
    batch_id: strawberry.ID | None
    result_ttl: int | None = strawberry.field(
        description="The submission's result TTL in seconds (null: type's or server default).")
    result_expires_at: datetime | None = strawberry.field(
        description="When the result will be removed (null: kept, or not completed).")
    result_expired: bool = strawberry.field(
        description="True once the result was removed by expiry (result is then null).")

    @staticmethod
    def of(j: CoreJob) -> Job:
        return Job(id=strawberry.ID(str(j.id)), queue=j.queue, job_type=j.job_type,
                   raw_payload=j.payload, status=j.status, priority=j.priority, attempts=j.attempts,
                   max_attempts=j.max_attempts, raw_result=j.result, raw_error=j.error,
                   error_type=j.error_type, created_at=to_dt(j.created_ms),
                   started_at=opt_dt(j.started_ms), completed_at=opt_dt(j.completed_ms),
                   scheduled_for=to_dt(j.scheduled_for_ms), timeout_ms=j.timeout_ms,
                   idempotency_key=j.idempotency_key, worker_id=j.worker_id,
                   batch_id=strawberry.ID(str(j.batch_id)) if j.batch_id else None,
                   result_ttl=j.result_ttl_s, result_expires_at=opt_dt(j.result_expires_ms),
                   result_expired=j.result_expired)

    @strawberry.field(description="Progress and log lines of the latest attempt (null: none).")
    async def progress(self, info: Info[Context, None]) -> JobProgress | None:
        job_id = uuid.UUID(self.id)
        p = await progress_core.get_progress(ctx(info).deps, job_id)
        return JobProgress.of(job_id, p) if p is not None else None

    @strawberry.field
    def payload(self, info: Info[Context, None]) -> JSON:
        return JSON(mask(self.raw_payload, ctx(info).deps.settings.mask_keys))

    @strawberry.field
    def result(self, info: Info[Context, None]) -> JSON | None:
        return JSON(mask(self.raw_result, ctx(info).deps.settings.mask_keys))

    @strawberry.field
    def error(self, info: Info[Context, None]) -> str | None:
        return mask_text(self.raw_error, ctx(info).deps.settings.mask_keys)

    @strawberry.field(description="Every attempt so far, in order (batched per request).")
    async def attempt_history(self, info: Info[Context, None]) -> list[Attempt]:
        return [Attempt.of(a) for a in await ctx(info).attempts.load(uuid.UUID(self.id))]

    @strawberry.field(description="The jobs this one waits for.")
    async def depends_on(self, info: Info[Context, None]) -> list[Job]:
        c = ctx(info)
        ids = await c.depends_on.load(uuid.UUID(self.id))
        return [Job.of(j) for j in await c.jobs.load_many(ids) if j is not None]

    @strawberry.field
    async def batch(self, info: Info[Context, None]) -> Batch | None:
        if self.batch_id is None:
            return None
        b = await ctx(info).batches.load(uuid.UUID(self.batch_id))
        return Batch.of(b) if b is not None else None

    @strawberry.field(description="The whole dependency graph around this job (both ways).")
    @domain
    async def dependency_graph(self, info: Info[Context, None]) -> DependencyGraph:
        g = await dag.job_graph(ctx(info).deps, uuid.UUID(self.id))
        return DependencyGraph(
            nodes=[GraphNode(id=strawberry.ID(str(n.id)), job_type=n.job_type, status=n.status,
                             queue=n.queue) for n in g.nodes],
            edges=[GraphEdge(dependency=strawberry.ID(str(a)), dependent=strawberry.ID(str(b)))
                   for a, b in g.edges], truncated=g.truncated)


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class JobEdge:
    cursor: str
    node: Job


@strawberry.type
class JobConnection:
    edges: list[JobEdge]
    page_info: PageInfo


@strawberry.type
class RateLimit:
    limit: int
    window_ms: int


@strawberry.type
class QueueControls:
    name: str
    paused: bool
    max_in_flight: int | None
    rate_limit: RateLimit | None

    @staticmethod
    def of(c: CoreControls) -> QueueControls:
        return QueueControls(name=c.name, paused=c.paused, max_in_flight=c.max_in_flight,
                             rate_limit=RateLimit(limit=c.rate_limit,
                                                  window_ms=c.rate_window_ms or 0)
                             if c.rate_limit is not None else None)


@strawberry.type
class StatusCounts:
    waiting: int
    pending: int
    scheduled: int
    processing: int
    completed: int
    failed: int
    dead_letter: int
    cancelled: int


@strawberry.type
class QueueMetrics:
    name: str
    ready: int
    delayed: int
    leased: int
    paused: bool
    max_in_flight: int | None
    rate_limit: RateLimit | None
    oldest_pending_age_ms: int
    throughput_per_min: float
    failed_per_min: float
    failure_rate: float
    avg_duration_ms: float | None
    health: str

    @staticmethod
    def of(m: dict[str, Any]) -> QueueMetrics:
        rl = m["rateLimit"]
        return QueueMetrics(
            name=m["name"], ready=m["ready"], delayed=m["delayed"], leased=m["leased"],
            paused=m["paused"], max_in_flight=m["maxInFlight"],
            rate_limit=RateLimit(limit=rl["limit"], window_ms=rl["windowMs"]) if rl else None,
            oldest_pending_age_ms=m["oldestPendingAgeMs"],
            throughput_per_min=m["throughputPerMin"], failed_per_min=m["failedPerMin"],
            failure_rate=m["failureRate"], avg_duration_ms=m["avgDurationMs"],
            health=m["health"])


@strawberry.type
class Queue:
    name: str
    counts: StatusCounts
    controls: QueueControls

    @strawberry.field(description="Depth, throughput, oldest pending age, health (admin).")
    @domain
    async def metrics(self, info: Info[Context, None]) -> QueueMetrics | None:
        c = ctx(info)
        c.require(A, "read queue metrics")
        found = await monitoring.queue_metrics(c.deps, self.name)
        return QueueMetrics.of(found[0]) if found else None


@strawberry.type
class Worker:
    id: str
    queues: list[str]
    concurrency: int
    host: str | None
    pid: int | None
    status: str
    running: int
    current_jobs: list[str]
    started_at: datetime | None
    last_seen_at: datetime | None
    uptime_ms: int | None
    processed: int
    failed: int
    cpu_percent: float | None = strawberry.field(description=(
        "The worker process's CPU use between its last two heartbeats (100 = one core); null "
        "until its second heartbeat."))
    rss_bytes: float | None = strawberry.field(description=(
        "The worker process's resident memory in bytes at its last heartbeat (a Float: "
        "GraphQL's Int stops at 2 GiB)."))
    group: str = strawberry.field(default="default", description=(
        "The worker group (its supervisor's `--group`; `default` otherwise)."))
    state: str = strawberry.field(default="idle", description=(
        "starting, idle, busy, draining (quiet or stopping) or stopped."))
    quiet: bool = strawberry.field(default=False, description="Claims nothing until resumed.")
    command: str | None = strawberry.field(default=None, description=(
        "A management command not yet carried out: quiet, stop or restart."))
    in_flight: int = strawberry.field(default=0, description="Jobs running now.")
    version: str | None = strawberry.field(default=None, description="Jobline's version.")

    @staticmethod
    def of(w: dict[str, Any]) -> Worker:
        return Worker(id=w["id"], queues=w["queues"], concurrency=w["concurrency"],
                      host=w["host"], pid=w["pid"], status=w["status"], running=w["running"],
                      current_jobs=w["currentJobs"], started_at=opt_dt(w["startedMs"]),
                      last_seen_at=opt_dt(w["lastSeenMs"]), uptime_ms=w["uptimeMs"],
                      processed=w["processed"], failed=w["failed"],
                      cpu_percent=w.get("cpuPercent"), rss_bytes=w.get("rssBytes"),
                      group=w.get("group") or "default", state=w.get("state") or w["status"],
                      quiet=bool(w.get("quiet")), command=w.get("command"),
                      in_flight=int(w.get("inFlight", w["running"])), version=w.get("version"))


@strawberry.type(description="A job type in the registry: the defaults its handler published "
                                "and the live workers serving it (docs/job-types.md).")
class JobType:
    job_type: str
    queue: str | None
    max_attempts: int | None
    timeout_ms: int | None
    backoff: JSON | None
    non_retryable: list[str] | None
    registered_at: datetime | None
    unhandled_at: datetime | None
    served_by: list[str]
    served: bool
    unserved_jobs: int = strawberry.field(description=(
        "Pending or scheduled jobs of this type while no live worker serves it (capped)."))
    unserved_queues: list[str] = strawberry.field(description=(
        "The queues those unserved jobs wait in (empty while the type is served)."))

    @staticmethod
    def of(t: Any) -> JobType:
        d = t.defaults
        return JobType(job_type=d.job_type, queue=d.queue, max_attempts=d.max_attempts,
                       timeout_ms=d.timeout_ms, backoff=d.backoff,
                       non_retryable=list(d.non_retryable)
                       if d.non_retryable is not None else None,
                       registered_at=opt_dt(t.registered_ms), unhandled_at=opt_dt(t.unhandled_ms),
                       served_by=t.served_by, served=t.served, unserved_jobs=t.unserved_jobs,
                       unserved_queues=t.unserved_queues)


@strawberry.type
class Schedule:
    id: strawberry.ID
    name: str
    queue: str
    job_type: str
    payload: JSON
    schedule: str
    timezone: str
    enabled: bool
    overlap_policy: str
    catch_up: str
    priority: int
    max_attempts: int | None
    timeout_ms: int | None
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_job_id: strawberry.ID | None
    next_runs: list[datetime]

    @staticmethod
    def of(s: CoreSchedule) -> Schedule:
        p = s.spec
        return Schedule(id=strawberry.ID(str(s.id)), name=p.name, queue=p.queue,
                        job_type=p.job_type, payload=JSON(p.payload), schedule=p.schedule,
                        timezone=p.timezone, enabled=p.enabled, overlap_policy=p.overlap_policy,
                        catch_up=p.catch_up, priority=p.priority, max_attempts=p.max_attempts,
                        timeout_ms=p.timeout_ms, next_run_at=opt_dt(s.next_run_ms),
                        last_run_at=opt_dt(s.last_run_ms),
                        last_job_id=strawberry.ID(str(s.last_job_id)) if s.last_job_id else None,
                        next_runs=[to_dt(m) for m in s.next_runs])


@strawberry.type
class DeadLetterPage:
    jobs: list[Job]
    next_cursor: str | None


@strawberry.type
class AuditPage:
    events: list[JSON]
    next_cursor: str | None


@strawberry.type
class TimelineEntry:
    id: strawberry.ID
    queue: str
    job_type: str
    status: str
    created_ms: float
    start_ms: float | None
    end_ms: float | None
    duration_ms: float | None
    attempts: int
    worker_id: str | None


@strawberry.type
class Timeline:
    items: list[TimelineEntry]
    next_cursor: str | None


@strawberry.type
class DensityCell:
    lane: str
    bucket: int = strawberry.field(description="Slice index: starts at fromMs + bucket * bucketMs.")
    jobs: int = strawberry.field(description="Jobs that started in the slice.")
    failed: int = strawberry.field(description="Of them, failed or dead-lettered now.")


@strawberry.type(description="Started jobs per lane and time slice (the zoomed-out Gantt).")
class TimelineDensity:
    from_ms: float
    to_ms: float
    bucket_ms: float
    cells: list[DensityCell]


@strawberry.type
class HistogramBucket:
    lower_ms: float
    upper_ms: float
    count: int


@strawberry.type
class DurationHistogram:
    metric: str
    total: int
    buckets: list[HistogramBucket]
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


@strawberry.type
class ThroughputPoint:
    minute_ms: float
    submitted: int
    started: int
    completed: int
    failed: int
    retries: int
    dead_letter: int
    cancelled: int
    avg_duration_ms: float | None


@strawberry.type
class JobEvent:
    id: strawberry.ID
    type: str
    seed_type: str | None = strawberry.field(
        description="The seed's WebSocket broadcast name (job_completed, job_failed, "
                    "worker_started, queue_backlog), where there is one.")
    time: datetime
    job_id: strawberry.ID | None
    queue: str | None
    job_type: str | None
    attempt: int | None
    duration_ms: int | None
    wait_ms: int | None
    error_type: str | None
    error: str | None
    data: JSON

    @staticmethod
    def of(e: CoreEvent) -> JobEvent:
        return JobEvent(id=strawberry.ID(str(e.id)), type=e.type, seed_type=SEED_NAMES.get(e.type),
                        time=to_dt(e.time_ms),
                        job_id=strawberry.ID(str(e.job_id)) if e.job_id else None, queue=e.queue,
                        job_type=e.job_type, attempt=e.attempt, duration_ms=e.duration_ms,
                        wait_ms=e.wait_ms, error_type=e.error_type, error=e.error, data=JSON(e.data))


@strawberry.type(description="Events gathered over a short window (jobEventBatches).")
class JobEventBatch:
    raw: strawberry.Private[list[CoreEvent]]
    count: int = strawberry.field(description="Events in this batch (selecting only this does not build the events).")
    dropped: int = strawberry.field(
        description="Events this subscription lost since the previous batch because it fell "
                    "behind (its queue keeps the newest); 0 normally.")

    @strawberry.field(description="The events, oldest first.")
    def events(self) -> list[JobEvent]:
        return [JobEvent.of(e) for e in self.raw]


@strawberry.type
class Submitted:
    id: strawberry.ID
    status: JobStatus  # type: ignore[valid-type]
    queue: str
    duplicate: bool
    queue_position: int | None

    @staticmethod
    def of(r: jobs_core.SubmitResult) -> Submitted:
        s = r.submitted
        return Submitted(id=strawberry.ID(str(s.id)), status=s.status, queue=s.queue,
                         duplicate=s.duplicate, queue_position=r.queue_position)


@strawberry.type
class Transition:
    id: strawberry.ID
    status: JobStatus  # type: ignore[valid-type]
    cancel_requested: bool = False


@strawberry.type
class BulkResult:
    count: int
    ids: list[strawberry.ID]


@strawberry.type
class BatchCreated:
    id: strawberry.ID
    total: int
    jobs: list[Submitted]
    on_complete_job_id: strawberry.ID | None


@strawberry.type
class Viewer:
    role: str
    name: str


@strawberry.type(description=(
    "Where this request's dashboard, analytics and listing reads went (DATABASE_READ_URL; "
    "docs/deploy.md, \"Read replica\"). Every other read, and every write, uses the primary."))
class ReadReplica:
    source: str = strawberry.field(description="replica | primary")
    lag_ms: int | None = strawberry.field(description=(
        "Upper bound on how old a replica read is, ms; null when no replica is configured or "
        "its position is unknown"))
    max_lag_ms: int = strawberry.field(description="JOBLINE_READ_MAX_LAG_MS: past it, the "
                                                   "primary serves")
    reason: str = strawberry.field(description=(
        "replica | no_replica | unchecked | lagging | unreachable | not_standby"))
