"""Analytics over GraphQL (issue 16, docs/analytics.md): ``analytics(from, to, queue, jobType)``,
``criticalPath(jobId)`` and the ``setQueueSla``/``setQueueCost`` mutations, admin only.

Resolved by the functions REST serves (:mod:`jobline.analytics.query`): each returns the
contract's camelCase dicts, turned into these types by :func:`build` (a field's GraphQL name is
the dict key), so the two shells cannot drift. Sub-fields of ``Analytics`` are resolved only
when asked for: a page that wants the summary does not pay for the cost report.

The contract's ``HistogramBucket`` is named ``AnalyticsHistogramBucket`` here: the monitoring
schema already has a ``HistogramBucket`` with an ``Int`` count; the fields are the contract's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import strawberry
from strawberry.types import Info
from strawberry.types.base import StrawberryList, StrawberryOptional, has_object_definition

from jobline.analytics import query as aq
from jobline.shared.platform.clock import from_dt, to_dt

from .common import A, ctx
from .context import Context
from .errors import domain

T = TypeVar("T")


def build(cls: type[T], d: dict[str, Any]) -> T:
    """An instance of the strawberry type ``cls`` from the core's dict (keys = GraphQL names);
    fields with a resolver are skipped (they compute themselves)."""
    kwargs: dict[str, Any] = {}
    for f in cls.__strawberry_definition__.fields:  # type: ignore[attr-defined]
        if f.base_resolver is not None:
            continue
        kwargs[f.python_name] = _value(f.type, d.get(f.graphql_name or _camel(f.python_name)))
    return cls(**kwargs)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _value(t: Any, v: Any) -> Any:
    if v is None:
        return None
    if isinstance(t, StrawberryOptional):
        return _value(t.of_type, v)
    if isinstance(t, StrawberryList):
        return [_value(t.of_type, x) for x in v]
    if has_object_definition(t):
        return build(t, v)
    return v


@strawberry.type(description="value over [from, to); previous over the equal period before; "
                             "change = (value - previous) / previous (null if previous is 0 "
                             "or null)")
class Trend:
    value: float | None
    previous: float | None
    change: float | None


@strawberry.type
class AnalyticsSummary:
    processed: Trend = strawberry.field(description="completed + deadLettered jobs")
    succeeded: Trend = strawberry.field(description="completed jobs")
    failed: Trend = strawberry.field(description="failed attempts")
    dead_lettered: Trend
    success_rate: Trend = strawberry.field(description="completed / (completed + deadLettered)")
    avg_duration_ms: Trend
    p50_ms: Trend
    p95_ms: Trend
    p99_ms: Trend


@strawberry.type
class ThroughputBucket:
    at: datetime
    submitted: float
    started: float
    completed: float
    failed: float
    dead_lettered: float


@strawberry.type
class AnalyticsHistogramBucket:
    lower_ms: float
    upper_ms: float
    count: float


@strawberry.type
class JobTypeLatency:
    queue: str
    job_type: str
    count: float
    avg_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


@strawberry.type
class AnalyticsDurations:
    metric: str
    count: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    histogram: list[AnalyticsHistogramBucket]
    by_job_type: list[JobTypeLatency]


@strawberry.type
class ErrorTypeCount:
    error_type: str
    count: float
    share: float


@strawberry.type
class FailureRatePoint:
    at: datetime
    failed: float
    finished: float
    rate: float | None


@strawberry.type
class JobTypeFailures:
    queue: str
    job_type: str
    failed: float
    finished: float
    rate: float | None


@strawberry.type
class AnalyticsFailures:
    scope: strawberry.Private[aq.Scope]

    @strawberry.field
    @domain
    async def error_types(self, info: Info[Context, None]) -> list[ErrorTypeCount]:
        rows = await ctx(info).read(lambda d: aq.error_types(d, self.scope))
        return [build(ErrorTypeCount, r) for r in rows]

    @strawberry.field
    @domain
    async def trend(self, info: Info[Context, None],
                    interval: str = "hour") -> list[FailureRatePoint]:
        rows = await ctx(info).read(lambda d: aq.failure_trend(d, self.scope, interval))
        return [build(FailureRatePoint, r) for r in rows]

    @strawberry.field
    @domain
    async def top_job_types(self, info: Info[Context, None],
                            limit: int = 10) -> list[JobTypeFailures]:
        rows = await ctx(info).read(lambda d: aq.top_failing(d, self.scope, limit))
        return [build(JobTypeFailures, r) for r in rows]

    @strawberry.field
    @domain
    async def time_to_failure(self, info: Info[Context, None]) -> list[AnalyticsHistogramBucket]:
        rows = await ctx(info).read(lambda d: aq.time_to_failure(d, self.scope))
        return [build(AnalyticsHistogramBucket, r) for r in rows]


@strawberry.type
class RetryByType:
    queue: str
    job_type: str
    jobs: float
    retries: float
    avg_retries: float | None
    wasted_compute_seconds: float


@strawberry.type
class AttemptSuccess:
    attempt: int
    completed: float
    failed: float
    success_rate: float | None


@strawberry.type
class AnalyticsRetries:
    by_job_type: list[RetryByType]
    by_attempt: list[AttemptSuccess]
    wasted_compute_seconds: float


@strawberry.type
class SamplePoint:
    at: datetime
    value: float


@strawberry.type
class QueueHealth:
    queue: str
    depth: list[SamplePoint]
    oldest_pending_age_ms: list[SamplePoint]
    current_depth: float | None
    current_oldest_pending_age_ms: float | None
    throughput_per_minute: float
    utilization: float | None = strawberry.field(
        description="busy worker time / available worker time, 0..1")
    estimated_clear_ms: float | None = strawberry.field(
        description="null when the backlog is not draining")


@strawberry.type
class WorkerResource:
    worker_id: str
    cpu_pct: float | None
    rss_bytes: float | None


@strawberry.type
class TableSize:
    table: str
    bytes: float


@strawberry.type
class SampleSeries:
    subject: str
    points: list[SamplePoint]


@strawberry.type
class AnalyticsResources:
    worker_count: list[SamplePoint]
    utilization: list[SamplePoint]
    idle_ratio: float | None
    per_worker: list[WorkerResource]
    crashes: float
    crash_rate_per_hour: float | None
    redis_memory_bytes: list[SamplePoint]
    postgres_bytes: list[SamplePoint]
    tables: list[TableSize]
    event_lag: list[SampleSeries]


@strawberry.type
class CostRow:
    key: str
    jobs: float
    worker_hours: float
    cost: float
    cost_per_job: float | None


@strawberry.type
class AnalyticsCost:
    group_by: str
    rows: list[CostRow]
    most_expensive_job_types: list[CostRow]
    total_cost: float
    storage_growth_bytes_per_day: float | None
    projected_monthly_cost: float
    default_price_per_worker_hour: float


@strawberry.type
class SlaPoint:
    at: datetime
    compliance: float | None


@strawberry.type
class SlaReport:
    queue: str
    objective: float
    target_ms: float
    metric: str
    compliance: float | None
    met: bool | None
    violations: float
    trend: list[SlaPoint]


@strawberry.type
class Incident:
    component: str
    started_at: datetime
    ended_at: datetime | None
    duration_ms: float
    cause: str


@strawberry.type
class ComponentUptime:
    component: str
    uptime: float | None


@strawberry.type
class AnalyticsAvailability:
    uptime: float | None
    components: list[ComponentUptime]
    incidents: list[Incident]
    mttr_ms: float | None


@strawberry.type
class SlowJobType:
    queue: str
    job_type: str
    count: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    compute_share: float
    suggestions: list[str]


@strawberry.type
class TopIssue:
    kind: str
    title: str
    detail: str
    queue: str | None
    job_type: str | None
    impact: float
    link: str


@strawberry.type
class DagNode:
    job_id: strawberry.ID
    job_type: str
    queue: str
    status: str
    started_at: datetime | None
    completed_at: datetime | None
    duration_ms: float | None
    wait_ms: float | None
    on_critical_path: bool


@strawberry.type
class DagEdge:
    from_: strawberry.ID = strawberry.field(name="from")
    to: strawberry.ID


@strawberry.type
class Bottleneck:
    job_id: strawberry.ID
    job_type: str
    reason: str
    ms: float


@strawberry.type
class CriticalPath:
    job_id: strawberry.ID
    nodes: list[DagNode]
    edges: list[DagEdge]
    path: list[strawberry.ID]
    total_ms: float | None
    bottlenecks: list[Bottleneck]


@strawberry.type
class QueueSla:
    queue: str
    objective: float
    target_ms: float
    metric: str


@strawberry.type
class QueueCost:
    queue: str
    price_per_worker_hour: float


@strawberry.type
class Analytics:
    scope: strawberry.Private[aq.Scope]
    from_: datetime = strawberry.field(name="from")
    to: datetime

    @strawberry.field
    @domain
    async def summary(self, info: Info[Context, None]) -> AnalyticsSummary:
        return build(AnalyticsSummary, await ctx(info).read(lambda d: aq.summary(d, self.scope)))

    @strawberry.field
    @domain
    async def throughput(self, info: Info[Context, None],
                         interval: str = "hour") -> list[ThroughputBucket]:
        rows = await ctx(info).read(lambda d: aq.throughput(d, self.scope, interval))
        return [build(ThroughputBucket, r) for r in rows]

    @strawberry.field
    @domain
    async def durations(self, info: Info[Context, None],
                        metric: str = "duration") -> AnalyticsDurations:
        return build(AnalyticsDurations, await ctx(info).read(lambda d: aq.durations(d, self.scope, metric)))

    @strawberry.field
    def failures(self) -> AnalyticsFailures:
        return AnalyticsFailures(scope=self.scope)

    @strawberry.field
    @domain
    async def retries(self, info: Info[Context, None]) -> AnalyticsRetries:
        return build(AnalyticsRetries, await ctx(info).read(lambda d: aq.retries(d, self.scope)))

    @strawberry.field
    @domain
    async def queues_health(self, info: Info[Context, None]) -> list[QueueHealth]:
        return [build(QueueHealth, r) for r in await ctx(info).read(lambda d: aq.queues_health(d,
                                                                       self.scope))]

    @strawberry.field
    @domain
    async def resources(self, info: Info[Context, None]) -> AnalyticsResources:
        return build(AnalyticsResources, await ctx(info).read(lambda d: aq.resources(d, self.scope)))

    @strawberry.field
    @domain
    async def cost(self, info: Info[Context, None], group_by: str = "queue") -> AnalyticsCost:
        return build(AnalyticsCost, await ctx(info).read(lambda d: aq.cost(d, self.scope, group_by)))

    @strawberry.field
    @domain
    async def sla(self, info: Info[Context, None]) -> list[SlaReport]:
        return [build(SlaReport, r) for r in await ctx(info).read(lambda d: aq.sla(d, self.scope))]

    @strawberry.field
    @domain
    async def availability(self, info: Info[Context, None]) -> AnalyticsAvailability:
        return build(AnalyticsAvailability, await ctx(info).read(lambda d: aq.availability(d, self.scope)))

    @strawberry.field
    @domain
    async def slow_jobs(self, info: Info[Context, None], limit: int = 10) -> list[SlowJobType]:
        rows = await ctx(info).read(lambda d: aq.slow_jobs(d, self.scope, limit))
        return [build(SlowJobType, r) for r in rows]

    @strawberry.field
    @domain
    async def top_issues(self, info: Info[Context, None], limit: int = 3) -> list[TopIssue]:
        rows = await ctx(info).read(lambda d: aq.top_issues(d, self.scope, limit))
        return [build(TopIssue, r) for r in rows]


@strawberry.type
class AnalyticsQueries:
    @strawberry.field(description="Admin only. from < to, at most 400 days; bad input -> "
                                  "BAD_USER_INPUT naming the field.")
    @domain
    async def analytics(self, info: Info[Context, None],
                        from_: Annotated[datetime, strawberry.argument(name="from")],
                        to: datetime,
                        queue: str | None = None, job_type: str | None = None) -> Analytics:
        c = ctx(info)
        c.require(A, "read analytics")
        s = aq.scope(c.deps.clock.now_ms(), _ms(from_, "from"), _ms(to, "to"), queue, job_type)
        return Analytics(scope=s, from_=to_dt(s.from_ms), to=to_dt(s.to_ms))

    @strawberry.field(description="Admin only. REST: GET "
                                  "/api/v1/analytics/dependencies/critical-path?jobId=")
    @domain
    async def critical_path(self, info: Info[Context, None],
                            job_id: strawberry.ID) -> CriticalPath:
        c = ctx(info)
        c.require(A, "read analytics")
        job = aq.parse_job_id(job_id)
        return build(CriticalPath, await c.read(lambda d: aq.critical_path(d, job)))


def _ms(v: datetime, field: str) -> int:
    """Epoch ms; a time without a zone is UTC (as in REST)."""
    return from_dt(v if v.tzinfo is not None else v.replace(tzinfo=UTC))


@strawberry.type
class AnalyticsMutations:
    @strawberry.mutation(description='REST: PUT /api/v1/queues/{name}/sla  {objective: 0.95, '
                                     'targetMs: 300000, metric: "e2e"}')
    @domain
    async def set_queue_sla(self, info: Info[Context, None], queue: str, objective: float,
                            target_ms: float, metric: str = "e2e") -> QueueSla:
        c = ctx(info)
        c.require(A, "set queue SLAs")
        return build(QueueSla, await aq.set_queue_sla(c.deps, queue, objective, target_ms,
                                                      metric))

    @strawberry.mutation(description="REST: PUT /api/v1/queues/{name}/cost  "
                                     "{pricePerWorkerHour: 0.12}")
    @domain
    async def set_queue_cost(self, info: Info[Context, None], queue: str,
                             price_per_worker_hour: float) -> QueueCost:
        c = ctx(info)
        c.require(A, "set queue prices")
        return build(QueueCost, await aq.set_queue_cost(c.deps, queue, price_per_worker_hour))
