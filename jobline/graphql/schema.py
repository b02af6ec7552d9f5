"""The GraphQL schema: thin resolvers over the core functions in ``jobline.shared``.

Role checks are per field (:meth:`Context.require`); domain errors become GraphQL errors with
``extensions.code`` (:func:`domain`), anything unexpected is masked (no stack traces leave).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, ParamSpec, TypeVar

import pydantic
import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
)
from strawberry.scalars import JSON
from strawberry.types import Info

from jobline.api.errors import validation_failed
from jobline.api.schedule_schemas import ScheduleIn, SchedulePatchIn
from jobline.api.schemas import SubmitJobIn
from jobline.shared.core import jobs as jobs_core
from jobline.shared.core.job_search import JobSearch, search_jobs
from jobline.shared.core.models import Attempt as CoreAttempt
from jobline.shared.core.models import Job as CoreJob
from jobline.shared.core.models import Status
from jobline.shared.core.validation import check_spec
from jobline.shared.dispatch import queue_controls as queues
from jobline.shared.dispatch import rate_limits
from jobline.shared.dispatch.redis_dispatch import QueueControls as CoreControls
from jobline.shared.events.audit import query as audit_query
from jobline.shared.events.livefeed import EventFilter
from jobline.shared.events.outbox import Event as CoreEvent
from jobline.shared.flow import batches as batches_core
from jobline.shared.flow import dag
from jobline.shared.flow.batches import BatchStatus
from jobline.shared.observe import monitoring
from jobline.shared.platform.clock import to_dt
from jobline.shared.platform.errors import (
    IllegalTransition,
    JoblineError,
    NotFound,
    ValidationFailed,
)
from jobline.shared.retry import dlq
from jobline.shared.schedules import recurring as schedules_core
from jobline.shared.schedules.recurring import Schedule as CoreSchedule
from jobline.shared.security.auth import Forbidden, Role
from jobline.shared.security.masking import mask, mask_text

from . import loaders
from .context import Context

P = ParamSpec("P")
T = TypeVar("T")
D, A = Role.DEVELOPER, Role.ADMIN

#: The seed's WebSocket broadcast names for the events that had one.
#: Query limits: deep enough for the dashboard's job -> dependsOn -> dependsOn views; a hostile
#: query is refused at validation, before any resolver runs.
MAX_DEPTH = 8
MAX_TOKENS = 2_000
MAX_ALIASES = 20

SEED_NAMES = {"jobs.completed": "job_completed", "jobs.failed": "job_failed",
              "workers.started": "worker_started", "queues.backlog": "queue_backlog"}

CODES: list[tuple[type[Exception], str]] = [
    (ValidationFailed, "BAD_USER_INPUT"), (NotFound, "NOT_FOUND"),
    (IllegalTransition, "CONFLICT"), (Forbidden, "FORBIDDEN")]


def to_graphql_error(e: Exception) -> GraphQLError:
    if isinstance(e, pydantic.ValidationError):
        e = validation_failed(e)
    code = next((c for cls, c in CODES if isinstance(e, cls)), None)
    if code is None and isinstance(e, JoblineError):
        code = e.code.upper()
    ext: dict[str, Any] = {"code": code or "INTERNAL_SERVER_ERROR"}
    if isinstance(e, ValidationFailed):
        ext["field"] = e.field
    return GraphQLError(str(e), extensions=ext)


def domain(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Core errors -> GraphQL errors with ``extensions.code``."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except (JoblineError, pydantic.ValidationError) as e:
            raise to_graphql_error(e) from None

    return wrapper


def _uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationFailed(field, "must be a UUID") from None


def _ctx(info: Info[Context, None]) -> Context:
    return info.context


def _dt(ms: int | None) -> datetime | None:
    return to_dt(ms) if ms is not None else None


# --- types ---------------------------------------------------------------------------------------

JobStatus = strawberry.enum(Status, name="JobStatus")


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

    @strawberry.field
    def error(self, info: Info[Context, None]) -> str | None:
        return mask_text(self.raw_error, _ctx(info).deps.settings.mask_keys)

    @staticmethod
    def of(a: CoreAttempt) -> Attempt:
        return Attempt(attempt=a.attempt, worker_id=a.worker_id, started_at=to_dt(a.started_ms),
                       finished_at=to_dt(a.finished_ms), outcome=a.outcome,
                       error_type=a.error_type, raw_error=a.error, duration_ms=a.duration_ms)


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
        return Batch(id=strawberry.ID(str(b.id)), name=b.name, total=b.total,
                     completed=b.completed, failed=b.failed, pending=b.pending,
                     processing=b.processing, status=b.status, created_at=to_dt(b.created_ms),
                     completed_at=_dt(b.completed_ms),
                     on_complete_job_id=strawberry.ID(str(b.on_complete_job_id))
                     if b.on_complete_job_id else None)


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

    @staticmethod
    def of(j: CoreJob) -> Job:
        return Job(id=strawberry.ID(str(j.id)), queue=j.queue, job_type=j.job_type,
                   raw_payload=j.payload, status=j.status, priority=j.priority, attempts=j.attempts,
                   max_attempts=j.max_attempts, raw_result=j.result, raw_error=j.error,
                   error_type=j.error_type, created_at=to_dt(j.created_ms),
                   started_at=_dt(j.started_ms), completed_at=_dt(j.completed_ms),
                   scheduled_for=to_dt(j.scheduled_for_ms), timeout_ms=j.timeout_ms,
                   idempotency_key=j.idempotency_key, worker_id=j.worker_id,
                   batch_id=strawberry.ID(str(j.batch_id)) if j.batch_id else None)

    @strawberry.field
    def payload(self, info: Info[Context, None]) -> JSON:
        return JSON(mask(self.raw_payload, _ctx(info).deps.settings.mask_keys))

    @strawberry.field
    def result(self, info: Info[Context, None]) -> JSON | None:
        return JSON(mask(self.raw_result, _ctx(info).deps.settings.mask_keys))

    @strawberry.field
    def error(self, info: Info[Context, None]) -> str | None:
        return mask_text(self.raw_error, _ctx(info).deps.settings.mask_keys)

    @strawberry.field(description="Every attempt so far, in order (batched per request).")
    async def attempt_history(self, info: Info[Context, None]) -> list[Attempt]:
        return [Attempt.of(a) for a in await _ctx(info).attempts.load(uuid.UUID(self.id))]

    @strawberry.field(description="The jobs this one waits for.")
    async def depends_on(self, info: Info[Context, None]) -> list[Job]:
        c = _ctx(info)
        ids = await c.depends_on.load(uuid.UUID(self.id))
        return [Job.of(j) for j in await c.jobs.load_many(ids) if j is not None]

    @strawberry.field
    async def batch(self, info: Info[Context, None]) -> Batch | None:
        if self.batch_id is None:
            return None
        b = await _ctx(info).batches.load(uuid.UUID(self.batch_id))
        return Batch.of(b) if b is not None else None

    @strawberry.field(description="The whole dependency graph around this job (both ways).")
    @domain
    async def dependency_graph(self, info: Info[Context, None]) -> DependencyGraph:
        g = await dag.job_graph(_ctx(info).deps, uuid.UUID(self.id))
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
        c = _ctx(info)
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

    @staticmethod
    def of(w: dict[str, Any]) -> Worker:
        return Worker(id=w["id"], queues=w["queues"], concurrency=w["concurrency"],
                      host=w["host"], pid=w["pid"], status=w["status"], running=w["running"],
                      current_jobs=w["currentJobs"], started_at=_dt(w["startedMs"]),
                      last_seen_at=_dt(w["lastSeenMs"]), uptime_ms=w["uptimeMs"],
                      processed=w["processed"], failed=w["failed"])


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
                        timeout_ms=p.timeout_ms, next_run_at=_dt(s.next_run_ms),
                        last_run_at=_dt(s.last_run_ms),
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


# --- inputs --------------------------------------------------------------------------------------


@strawberry.input
class JobFilter:
    queue: str | None = None
    status: JobStatus | None = None  # type: ignore[valid-type]
    job_type: str | None = None
    error_type: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    payload_match: JSON | None = strawberry.field(
        default=None, description="JSON containment: jobs whose payload contains this object.")
    search: str | None = strawberry.field(
        default=None, description="A job id, or text within the error message.")


@strawberry.input
class SubmitJobInput:
    queue: str = "default"
    job_type: str
    payload: JSON | None = None
    priority: int | None = None
    max_attempts: int | None = None
    scheduled_for: datetime | None = None
    delay_ms: int | None = None
    timeout_ms: int | None = None
    idempotency_key: str | None = None
    depends_on: list[str] | None = strawberry.field(
        default=None, description="Job ids, or (in submitMany/createBatch) earlier indexes.")

    def to_rest(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in vars(self).items():
            if v is None:
                continue
            if k == "scheduled_for":
                v = v.isoformat()
            if k == "depends_on":
                v = [int(x) if x.isdigit() else x for x in v]
            out[k] = v
        return out


@strawberry.input
class DlqFilterInput:
    ids: list[str] | None = None
    queue: str | None = None
    job_type: str | None = None
    error_type: str | None = None
    dead_lettered_from: datetime | None = None
    dead_lettered_to: datetime | None = None

    def to_core(self) -> dlq.DlqFilter:
        return dlq.DlqFilter(
            ids=tuple(_uuid(i, f"filter.ids[{n}]") for n, i in enumerate(self.ids))
            if self.ids is not None else None, queue=self.queue, job_type=self.job_type,
            error_type=self.error_type,
            from_ms=int(self.dead_lettered_from.timestamp() * 1000)
            if self.dead_lettered_from else None,
            to_ms=int(self.dead_lettered_to.timestamp() * 1000) if self.dead_lettered_to else None)


@strawberry.input
class ScheduleInput:
    name: str | None = None
    queue: str | None = None
    job_type: str | None = None
    payload: JSON | None = None
    schedule: str | None = None
    timezone: str | None = None
    enabled: bool | None = None
    overlap_policy: str | None = None
    catch_up: str | None = None
    priority: int | None = None
    max_attempts: int | None = None
    timeout_ms: int | None = None

    def given(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}


@strawberry.input
class EventFilterInput:
    types: list[str] | None = None
    queue: str | None = None
    job_id: str | None = None


def _ms(v: datetime | None) -> int | None:
    return int(v.timestamp() * 1000) if v is not None else None


def _spec(item: SubmitJobInput, now: int, where: str, settings: Any) -> Any:
    try:
        model = SubmitJobIn.model_validate(item.to_rest())
    except pydantic.ValidationError as e:
        raise validation_failed(e, where.rstrip(".")) from None
    spec = model.to_spec(now)
    check_spec(spec, settings, where)
    return spec


@strawberry.type
class Viewer:
    role: str
    name: str


# --- query ---------------------------------------------------------------------------------------


@strawberry.type
class Query:
    @strawberry.field
    @domain
    async def job(self, info: Info[Context, None], id: strawberry.ID) -> Job | None:
        c = _ctx(info)
        c.require(D, "read jobs")
        try:
            j = await jobs_core.get_job(c.deps, _uuid(id, "id"), history=False)
        except NotFound:
            return None
        return Job.of(j)

    @strawberry.field(description="Newest first; Relay-style cursor paging.")
    @domain
    async def jobs(self, info: Info[Context, None], filter: JobFilter | None = None,
                   first: int = 50, after: str | None = None) -> JobConnection:
        c = _ctx(info)
        c.require(D, "list jobs")
        f = filter or JobFilter()
        page = await search_jobs(c.deps, JobSearch(
            queue=f.queue, status=f.status.value if f.status else None, job_type=f.job_type,
            error_type=f.error_type, from_ms=_ms(f.created_from), to_ms=_ms(f.created_to),
            payload_match=f.payload_match,  # type: ignore[arg-type]
            text=f.search), first=first, after=after)
        return JobConnection(
            edges=[JobEdge(cursor=str(j.id), node=Job.of(j)) for j in page.jobs],
            page_info=PageInfo(has_next_page=page.next_cursor is not None,
                               end_cursor=str(page.jobs[-1].id) if page.jobs else None))

    @strawberry.field
    @domain
    async def queues(self, info: Info[Context, None]) -> list[Queue]:
        c = _ctx(info)
        c.require(D, "list queues")
        out = []
        for q in await jobs_core.queue_stats(c.deps):
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
        c = _ctx(info)
        c.require(A, "list workers")
        return [Worker.of(w) for w in await monitoring.worker_metrics(c.deps)]

    @strawberry.field
    @domain
    async def batch(self, info: Info[Context, None], id: strawberry.ID) -> Batch | None:
        c = _ctx(info)
        c.require(D, "read batches")
        b = await c.batches.load(_uuid(id, "id"))
        return Batch.of(b) if b is not None else None

    @strawberry.field
    @domain
    async def batches(self, info: Info[Context, None], ids: list[strawberry.ID]) -> list[Batch]:
        c = _ctx(info)
        c.require(D, "read batches")
        if len(ids) > 100:
            raise ValidationFailed("ids", "at most 100")
        found = await c.batches.load_many([_uuid(i, "ids") for i in ids])
        return [Batch.of(b) for b in found if b is not None]

    @strawberry.field(description="Cron schedules with their next fire times.")
    @domain
    async def scheduled_jobs(self, info: Info[Context, None]) -> list[Schedule]:
        c = _ctx(info)
        c.require(D, "list schedules")
        return [Schedule.of(s) for s in await schedules_core.list_schedules(c.deps)]

    @strawberry.field
    @domain
    async def dead_letters(self, info: Info[Context, None], filter: DlqFilterInput | None = None,
                           first: int = 50, after: str | None = None) -> DeadLetterPage:
        c = _ctx(info)
        c.require(A, "list the dead-letter queue")
        if not 1 <= first <= 500:
            raise ValidationFailed("first", "must be 1-500")
        page = await dlq.list_dead_letters(
            c.deps, (filter or DlqFilterInput()).to_core(),
            cursor=_uuid(after, "after") if after else None, limit=first)
        return DeadLetterPage(jobs=[Job.of(j) for j in page.jobs], next_cursor=page.next_cursor)

    @strawberry.field
    @domain
    async def audit_events(self, info: Info[Context, None], job_id: strawberry.ID | None = None,
                           type: str | None = None, from_: Annotated[
                               datetime | None, strawberry.argument(name="from")] = None,
                           to: datetime | None = None, first: int = 100,
                           after: str | None = None) -> AuditPage:
        c = _ctx(info)
        c.require(A, "read the audit log")
        page = await audit_query(c.deps, job_id=_uuid(job_id, "jobId") if job_id else None,
                                 type_=type, from_ms=_ms(from_), to_ms=_ms(to), limit=first,
                                 cursor=after)
        return AuditPage(events=[JSON(e) for e in page.events], next_cursor=page.next_cursor)

    @strawberry.field(description="Per-queue live depth and recent rollup figures (admin).")
    @domain
    async def queue_metrics(self, info: Info[Context, None],
                            queue: str | None = None) -> list[QueueMetrics]:
        c = _ctx(info)
        c.require(A, "read queue metrics")
        return [QueueMetrics.of(m) for m in await monitoring.queue_metrics(c.deps, queue)]

    @strawberry.field(description="Jobs created in [from, to) for a Gantt chart (admin).")
    @domain
    async def job_timeline(self, info: Info[Context, None],
                           from_: Annotated[datetime | None, strawberry.argument(name="from")]
                           = None, to: datetime | None = None, queue: str | None = None,
                           first: int = 500, after: str | None = None) -> Timeline:
        c = _ctx(info)
        c.require(A, "read metrics")
        page = await monitoring.job_timeline(c.deps, _ms(from_), _ms(to), queue=queue,
                                             limit=first, cursor=after)
        return Timeline(items=[TimelineEntry(
            id=strawberry.ID(i["id"]), queue=i["queue"], job_type=i["jobType"],
            status=i["status"], created_ms=i["createdMs"], start_ms=i["startMs"],
            end_ms=i["endMs"], duration_ms=i["durationMs"], attempts=i["attempts"],
            worker_id=i["workerId"]) for i in page.items], next_cursor=page.next_cursor)

    @strawberry.field(description="Duration (or wait) histogram from the rollups (admin).")
    @domain
    async def duration_histogram(self, info: Info[Context, None], queue: str | None = None,
                                 job_type: str | None = None, metric: str = "duration",
                                 from_: Annotated[datetime | None,
                                                  strawberry.argument(name="from")] = None,
                                 to: datetime | None = None) -> DurationHistogram:
        c = _ctx(info)
        c.require(A, "read metrics")
        h = await monitoring.duration_histogram(c.deps, queue=queue, job_type=job_type,
                                                metric=metric, from_ms=_ms(from_), to_ms=_ms(to))
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
        c = _ctx(info)
        c.require(A, "read metrics")
        return [ThroughputPoint(
            minute_ms=p["minuteMs"], submitted=p["submitted"], started=p["started"],
            completed=p["completed"], failed=p["failed"], retries=p["retries"],
            dead_letter=p["deadLetter"], cancelled=p["cancelled"],
            avg_duration_ms=p["avgDurationMs"])
            for p in await monitoring.throughput_series(c.deps, queue=queue, from_ms=_ms(from_),
                                                        to_ms=_ms(to))]

    @strawberry.field(description="Who the API key belongs to: the dashboard follows its role.")
    def viewer(self, info: Info[Context, None]) -> Viewer:
        p = _ctx(info).require(D, "read its own key")
        return Viewer(role=str(p.role), name=p.name)

    @strawberry.field(description="The newest batches first (at most 100).")
    @domain
    async def recent_batches(self, info: Info[Context, None], first: int = 20) -> list[Batch]:
        c = _ctx(info)
        c.require(D, "read batches")
        if not 1 <= first <= 100:
            raise ValidationFailed("first", "must be 1-100")
        found = await c.batches.load_many(await loaders.recent_batch_ids(c.deps, first))
        return [Batch.of(b) for b in found if b is not None]

    @strawberry.field(description="How many dead-lettered jobs the filter matches (admin).")
    @domain
    async def dead_letter_count(self, info: Info[Context, None],
                                filter: DlqFilterInput | None = None) -> int:
        c = _ctx(info)
        c.require(A, "count the dead-letter queue")
        return await dlq.count_dead_letters(c.deps, (filter or DlqFilterInput()).to_core())


# --- mutations -----------------------------------------------------------------------------------


@strawberry.type
class Mutation:
    @strawberry.mutation
    @domain
    async def submit(self, info: Info[Context, None], input: SubmitJobInput) -> Submitted:
        c = _ctx(info)
        c.require(D, "submit jobs")
        spec = _spec(input, c.deps.clock.now_ms(), "input.", c.deps.settings)
        return Submitted.of(await jobs_core.submit(c.deps, spec))

    @strawberry.mutation
    @domain
    async def submit_many(self, info: Info[Context, None],
                          inputs: list[SubmitJobInput]) -> list[Submitted]:
        c = _ctx(info)
        c.require(D, "submit jobs")
        if not 1 <= len(inputs) <= c.deps.settings.max_bulk_jobs:
            raise ValidationFailed("inputs", f"1-{c.deps.settings.max_bulk_jobs} jobs")
        now = c.deps.clock.now_ms()
        specs = [_spec(x, now, f"inputs[{i}].", c.deps.settings) for i, x in enumerate(inputs)]
        return [Submitted.of(r) for r in await jobs_core.submit_many(c.deps, specs)]

    @strawberry.mutation
    @domain
    async def cancel(self, info: Info[Context, None], id: strawberry.ID) -> Transition:
        c = _ctx(info)
        c.require(D, "cancel jobs")
        status = await jobs_core.cancel(c.deps, _uuid(id, "id"))
        return Transition(id=id, status=status, cancel_requested=status == Status.PROCESSING)

    @strawberry.mutation
    @domain
    async def retry(self, info: Info[Context, None], id: strawberry.ID) -> Transition:
        c = _ctx(info)
        c.require(D, "retry jobs")
        return Transition(id=id, status=await jobs_core.retry_now(c.deps, _uuid(id, "id")))

    @strawberry.mutation
    @domain
    async def retry_from_dlq(self, info: Info[Context, None], id: strawberry.ID) -> Transition:
        c = _ctx(info)
        c.require(D, "retry jobs")
        return Transition(id=id, status=await dlq.retry_from_dlq(c.deps, _uuid(id, "id")))

    @strawberry.mutation(description="Retry every dead-lettered job matching (admin).")
    @domain
    async def retry_dead_letters(self, info: Info[Context, None],
                                 filter: DlqFilterInput) -> BulkResult:
        c = _ctx(info)
        c.require(A, "bulk-retry the dead-letter queue")
        ids = await dlq.retry_dead_letters(c.deps, filter.to_core())
        return BulkResult(count=len(ids), ids=[strawberry.ID(str(i)) for i in ids])

    @strawberry.mutation(description="Delete every dead-lettered job matching (admin).")
    @domain
    async def delete_dead_letters(self, info: Info[Context, None],
                                  filter: DlqFilterInput) -> BulkResult:
        c = _ctx(info)
        c.require(A, "bulk-delete the dead-letter queue")
        ids = await dlq.delete_dead_letters(c.deps, filter.to_core())
        return BulkResult(count=len(ids), ids=[strawberry.ID(str(i)) for i in ids])

    @strawberry.mutation
    @domain
    async def pause_queue(self, info: Info[Context, None], queue: str) -> QueueControls:
        c = _ctx(info)
        c.require(A, "pause queues")
        queues.check_queue_name(queue, "queue")
        return QueueControls.of(await queues.pause_queue(c.deps, queue))

    @strawberry.mutation
    @domain
    async def resume_queue(self, info: Info[Context, None], queue: str) -> QueueControls:
        c = _ctx(info)
        c.require(A, "resume queues")
        queues.check_queue_name(queue, "queue")
        return QueueControls.of(await queues.resume_queue(c.deps, queue))

    @strawberry.mutation(description="limit null removes the rate limit.")
    @domain
    async def set_rate_limit(self, info: Info[Context, None], queue: str, limit: int | None,
                             window_ms: int = 1000) -> QueueControls:
        c = _ctx(info)
        c.require(A, "set rate limits")
        if limit is None:
            queues.check_queue_name(queue, "queue")
            return QueueControls.of(await rate_limits.clear_rate_limit(c.deps, queue))
        return QueueControls.of(await rate_limits.set_rate_limit(c.deps, queue, limit=limit,
                                                                 window_ms=window_ms))

    @strawberry.mutation(description="maxInFlight null removes the cap.")
    @domain
    async def set_concurrency(self, info: Info[Context, None], queue: str,
                              max_in_flight: int | None) -> QueueControls:
        c = _ctx(info)
        c.require(A, "set concurrency caps")
        queues.check_queue_name(queue, "queue")
        return QueueControls.of(await queues.set_queue_limits(c.deps, queue,
                                                              max_in_flight=max_in_flight))

    @strawberry.mutation
    @domain
    async def create_schedule(self, info: Info[Context, None], input: ScheduleInput) -> Schedule:
        c = _ctx(info)
        c.require(D, "create schedules")
        spec = ScheduleIn.model_validate(input.given()).to_spec()
        return Schedule.of(await schedules_core.create_schedule(c.deps, spec))

    @strawberry.mutation
    @domain
    async def update_schedule(self, info: Info[Context, None], id: strawberry.ID,
                              input: ScheduleInput) -> Schedule:
        c = _ctx(info)
        c.require(D, "update schedules")
        changes = SchedulePatchIn.model_validate(input.given()).model_dump(exclude_unset=True)
        return Schedule.of(await schedules_core.update_schedule(c.deps, _uuid(id, "id"),
                                                                changes))

    @strawberry.mutation
    @domain
    async def delete_schedule(self, info: Info[Context, None], id: strawberry.ID) -> bool:
        c = _ctx(info)
        c.require(D, "delete schedules")
        await schedules_core.delete_schedule(c.deps, _uuid(id, "id"))
        return True

    @strawberry.mutation
    @domain
    async def create_batch(self, info: Info[Context, None], name: str,
                           jobs: list[SubmitJobInput],
                           on_complete: SubmitJobInput | None = None) -> BatchCreated:
        c = _ctx(info)
        c.require(D, "create batches")
        now = c.deps.clock.now_ms()
        specs = [_spec(x, now, f"jobs[{i}].", c.deps.settings) for i, x in enumerate(jobs)]
        oc = _spec(on_complete, now, "onComplete.", c.deps.settings) if on_complete else None
        b = await batches_core.create_batch(c.deps, name, specs, oc)
        return BatchCreated(id=strawberry.ID(str(b.id)), total=b.total,
                            jobs=[Submitted.of(r) for r in b.jobs],
                            on_complete_job_id=strawberry.ID(str(b.on_complete_job_id))
                            if b.on_complete_job_id else None)


# --- subscriptions -------------------------------------------------------------------------------


def _event_filter(f: EventFilterInput | None) -> EventFilter:
    if f is None:
        return EventFilter()
    from jobline.shared.events.outbox import EVENT_TYPES

    for t in f.types or ():
        if t not in EVENT_TYPES:
            raise ValidationFailed("filter.types", f"unknown event type {t!r}")
    return EventFilter(types=frozenset(f.types) if f.types else None, queue=f.queue,
                       job_id=_uuid(f.job_id, "filter.jobId") if f.job_id else None)


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Job, worker and queue events as they are published.")
    async def job_events(self, info: Info[Context, None],
                         filter: EventFilterInput | None = None) -> AsyncGenerator[JobEvent, None]:
        c = _ctx(info)
        c.require(D, "subscribe to job events")
        try:
            flt = _event_filter(filter)
        except JoblineError as e:
            raise to_graphql_error(e) from None
        with (await c.feed()).subscribe(flt) as sub:
            async for ev in sub:
                yield JobEvent.of(ev)

    @strawberry.subscription(description="The job, re-read after each of its events.")
    async def job_updated(self, info: Info[Context, None],
                          id: strawberry.ID) -> AsyncGenerator[Job, None]:
        c = _ctx(info)
        c.require(D, "subscribe to jobs")
        try:
            job_id = _uuid(id, "id")
            with (await c.feed()).subscribe(EventFilter(job_id=job_id)) as sub:
                yield Job.of(await jobs_core.get_job(c.deps, job_id, history=False))
                async for _ in sub:
                    yield Job.of(await jobs_core.get_job(c.deps, job_id, history=False))
        except JoblineError as e:
            raise to_graphql_error(e) from None

    @strawberry.subscription(description="Queue metrics now, every intervalMs, and whenever "
                                         "the queue's backlog changes (admin).")
    async def queue_stats(self, info: Info[Context, None], queue: str,
                          interval_ms: int | None = None) -> AsyncGenerator[QueueMetrics, None]:
        c = _ctx(info)
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
        c = _ctx(info)
        c.require(A, "subscribe to worker events")
        flt = EventFilter(types=frozenset({"workers.started", "workers.stopped",
                                           "workers.heartbeat_lost"}))
        with (await c.feed()).subscribe(flt) as sub:
            async for e in sub:
                yield JobEvent.of(e)


def _mask(error: GraphQLError) -> bool:
    ext = error.extensions or {}
    return "code" not in ext and error.original_error is not None


schema = strawberry.Schema(
    query=Query, mutation=Mutation, subscription=Subscription,
    extensions=[
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: MaskErrors(should_mask_error=_mask, error_message="internal error"),
    ],
)
