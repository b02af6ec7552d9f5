"""The seed's monitoring endpoints (``/api/v1/metrics/*``) and the Prometheus ``/metrics``.

Both are shells over :mod:`jobline.shared.observe.monitoring`, the same functions GraphQL resolves
with. ``/metrics`` is stateless: a collector built per scrape reads the rollups, Redis and the
bus lag, so every API replica reports the same cluster-wide figures (scrape one of them).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobline.analytics import rollups
from jobline.analytics.consumer import KINDS
from jobline.api.context import read
from jobline.api.docs import OBJECT, TIME, Op, Resp, cursor, documented, query
from jobline.api.errors import JSONResponse, endpoint
from jobline.api.events import _time_ms, bus_of
from jobline.shared.core import job_types
from jobline.shared.events import outbox as core_events
from jobline.shared.fleet import actions as fleet_actions
from jobline.shared.observe import monitoring
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import UnknownParameter, ValidationFailed

ADMIN = "Admin key required."


def _only(request: Request, allowed: set[str]) -> None:
    for k, v in request.query_params.items():
        if k not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise UnknownParameter(k, f"unknown query parameter; known: {known}")
        if "\x00" in v:
            raise ValidationFailed(k, "must not contain the NUL character")


@documented(Op(
    "metricsQueues", "Per queue: depth (ready/delayed/leased), controls, throughput and failure "
    "rate over the last 15 minutes (rollups), oldest pending age, health", description=ADMIN,
    params=(query("queue", {"type": "string"}, "one queue only"),),
    responses={200: Resp("Queues", {"type": "object", "properties": {
        "queues": {"type": "array", "items": OBJECT}}})}, errors=(400, 422, 503)))
@endpoint
async def metrics_queues(request: Request) -> Response:
    _only(request, {"queue"})
    queue = request.query_params.get("queue") or None
    return JSONResponse({"queues": await read(
        request, lambda deps: monitoring.queue_metrics(deps, queue))})


@documented(Op(
    "metricsWorkers", "Live workers: queues, busy/idle, current jobs, uptime, processed/failed",
    description=ADMIN, responses={200: Resp("Workers", {"type": "object", "properties": {
        "workers": {"type": "array", "items": OBJECT}}})}, errors=(400, 503)))
@endpoint
async def metrics_workers(request: Request) -> Response:
    _only(request, set())
    return JSONResponse({"workers": await read(request, monitoring.worker_metrics)})


@documented(Op(
    "metricsTimeline", "Jobs created in [from, to) for a Gantt chart, oldest first, paged",
    description=ADMIN, params=(
        query("from", TIME, "default: to - 1 h"), query("to", TIME, "default: now"),
        query("queue", {"type": "string"}, "one queue only"),
        query("limit", {"type": "integer", "minimum": 1, "maximum": 1000},
              "page size (default 500)"),
        cursor(schema={"type": "string"})),
    responses={200: Resp("A page", {"type": "object", "properties": {
        "jobs": {"type": "array", "items": OBJECT},
        "nextCursor": {"type": ["string", "null"]}}})}, errors=(400, 422, 503)))
@endpoint
async def metrics_timeline(request: Request) -> Response:
    _only(request, {"from", "to", "queue", "limit", "cursor"})
    q = request.query_params
    limit = 500
    if q.get("limit"):
        if not q["limit"].isdigit():
            raise ValidationFailed("limit", "must be an integer")
        limit = int(q["limit"])
    frm, to = _time_ms("from", q.get("from")), _time_ms("to", q.get("to"))
    page = await read(request, lambda deps: monitoring.job_timeline(
        deps, frm, to, queue=q.get("queue") or None, limit=limit,
        cursor=q.get("cursor") or None))
    return JSONResponse({"jobs": page.items, "nextCursor": page.next_cursor})


@documented(Op(
    "metricsDurationHistogram", "Run-duration (or wait) histogram with p50/p95/p99, from the "
    "rollups", description=ADMIN, params=(
        query("queue", {"type": "string"}, "one queue only"),
        query("jobType", {"type": "string"}, "one job type only"),
        query("metric", {"type": "string", "enum": ["duration", "wait"]}, "default duration"),
        query("from", TIME, "default: to - 24 h"), query("to", TIME, "default: now")),
    responses={200: Resp("Histogram", OBJECT)}, errors=(400, 422, 503)))
@endpoint
async def metrics_histogram(request: Request) -> Response:
    _only(request, {"queue", "jobType", "metric", "from", "to"})
    q = request.query_params
    frm, to = _time_ms("from", q.get("from")), _time_ms("to", q.get("to"))
    return JSONResponse(await read(request, lambda deps: monitoring.duration_histogram(
        deps, queue=q.get("queue") or None, job_type=q.get("jobType") or None,
        metric=q.get("metric") or "duration", from_ms=frm, to_ms=to)))


@documented(Op(
    "metricsThroughput", "Per-minute counts (submitted, completed, failed, ...) from the rollups",
    description=ADMIN, params=(
        query("queue", {"type": "string"}, "one queue only"),
        query("from", TIME, "default: to - 1 h"), query("to", TIME, "default: now")),
    responses={200: Resp("Series", {"type": "object", "properties": {
        "series": {"type": "array", "items": OBJECT}}})}, errors=(400, 422, 503)))
@endpoint
async def metrics_throughput(request: Request) -> Response:
    _only(request, {"queue", "from", "to"})
    q = request.query_params
    frm, to = _time_ms("from", q.get("from")), _time_ms("to", q.get("to"))
    return JSONResponse({"series": await read(request, lambda deps: monitoring.throughput_series(
        deps, queue=q.get("queue") or None, from_ms=frm, to_ms=to))})


# --- Prometheus ----------------------------------------------------------------------------------

#: The one bucket set of every histogram series (``le`` upper bounds in seconds: log2
#: milliseconds, 1 ms .. 2^31 ms). Every series lists every bound, even empty ones:
#: ``histogram_quantile`` over series summed by ``le`` is only right when they share the bounds.
#: Coarser than the rollups' 505-bucket sketch on purpose: a scrape of every bucket of every
#: (queue, job type) would be too large; the analytics API gives the precise percentiles.
BUCKETS: tuple[float, ...] = tuple(2 ** b / 1000 for b in range(32))


def _le_index(b: int) -> int:
    """The first ``le`` bound holding every value of sketch bucket ``b`` (its largest is hi - 1),
    so a count is never reported under a bound below its value."""
    top = max(rollups.bucket_bounds(b)[1] - 1, 1)
    return min(max(top - 1, 0).bit_length(), len(BUCKETS) - 1)


class Snapshot(Collector):
    """The figures gathered for one scrape (collect() is synchronous; the reads are not)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def collect(self) -> Iterator[Metric]:
        d = self.data
        # Jobs and attempts are apart: a job is submitted and ends once (completed, dead_letter,
        # cancelled), but may be started and fail several times.
        jobs = CounterMetricFamily("jobline_jobs", "Jobs submitted or ended, by status "
                                   "(from rollups)", labels=["queue", "job_type", "status"])
        attempts = CounterMetricFamily("jobline_attempts", "Attempts started or failed "
                                       "(from rollups)", labels=["queue", "job_type", "outcome"])
        retries = CounterMetricFamily("jobline_retries", "Attempts that were retried",
                                      labels=["queue", "job_type"])
        dead = CounterMetricFamily("jobline_dead_letter", "Jobs moved to the dead-letter queue",
                                   labels=["queue", "job_type"])
        for t in d["totals"]:
            lab = [t["queue_name"], t["job_type"]]
            for status in ("submitted", "completed", "dead_letter", "cancelled"):
                jobs.add_metric([*lab, status], t[status])
            for outcome in ("started", "failed"):
                attempts.add_metric([*lab, outcome], t[outcome])
            retries.add_metric(lab, t["retries"])
            dead.add_metric(lab, t["dead_letter"])
        yield jobs
        yield attempts
        yield retries
        yield dead
        sums = {(t["queue_name"], t["job_type"]): t for t in d["totals"]}
        for metric, name, col in (("duration", "jobline_job_duration_seconds", "duration_sum_ms"),
                                  ("wait", "jobline_job_wait_seconds", "wait_sum_ms")):
            h = HistogramMetricFamily(name, f"Job {metric} (from rollups)",
                                      labels=["queue", "job_type"])
            for (q, jt, m), buckets in d["histograms"].items():
                if m != metric:
                    continue
                per_le = [0] * len(BUCKETS)
                for b, n in buckets:
                    per_le[_le_index(b)] += n
                cum, out = 0, []
                for le, n in zip(BUCKETS, per_le, strict=True):
                    cum += n
                    out.append((str(le), cum))
                out.append(("+Inf", cum))
                h.add_metric([q, jt], out, sums.get((q, jt), {}).get(col, 0) / 1000)
            yield h
        depth = GaugeMetricFamily("jobline_queue_depth", "Jobs per queue and dispatch state",
                                  labels=["queue", "state"])
        for q in d["queues"]:
            for state in ("ready", "delayed", "leased"):
                depth.add_metric([q["name"], state], q[state])
        yield depth
        age = GaugeMetricFamily("jobline_queue_oldest_pending_seconds",
                                "Age of the oldest pending job", labels=["queue"])
        for q in d["queues"]:
            age.add_metric([q["name"]], q["oldestPendingAgeMs"] / 1000)
        yield age
        workers = GaugeMetricFamily("jobline_workers", "Live workers by queue and state",
                                    labels=["queue", "state"])
        counts: dict[tuple[str, str], int] = {}
        for w in d["workers"]:
            for q in w["queues"]:
                counts[(q, w["status"])] = counts.get((q, w["status"]), 0) + 1
        for (q, s), n in sorted(counts.items()):
            workers.add_metric([q, s], n)
        yield workers
        lag = d["lag"]
        yield GaugeMetricFamily("jobline_event_outbox_pending",
                                "Committed events not yet on the bus",
                                value=lag["outbox"]["pending"])
        yield GaugeMetricFamily("jobline_event_outbox_oldest_seconds",
                                "Age of the oldest unpublished event",
                                value=lag["outbox"]["oldestAgeMs"] / 1000)
        served = GaugeMetricFamily("jobline_job_type_workers",
                                   "Live workers serving each registered job type (0: nobody "
                                   "runs its jobs)", labels=["job_type"])
        unserved = GaugeMetricFamily("jobline_job_type_unserved_jobs",
                                     "Pending or scheduled jobs of a type waiting where no live worker with its handler claims "
                                     f"(capped at {job_types.UNSERVED_COUNT_CAP})",
                                     labels=["job_type"])
        for t in d["jobTypes"]:
            served.add_metric([t.defaults.job_type], len(t.served_by))
            if not t.served or t.unserved_jobs:
                unserved.add_metric([t.defaults.job_type], t.unserved_jobs)
        yield served
        yield unserved
        # Worker groups (docs/workers.md): KEDA scales a Deployment to
        # jobline_worker_group_desired{group="..."}, the count the autoscaler decided.
        desired = GaugeMetricFamily("jobline_worker_group_desired",
                                    "Desired worker processes of each worker group",
                                    labels=["group"])
        actual = GaugeMetricFamily("jobline_worker_group_workers",
                                   "Live worker processes of each worker group",
                                   labels=["group"])
        crashes = GaugeMetricFamily("jobline_worker_group_crashes_last_hour",
                                    "Workers of the group that ended without a clean stop in "
                                    "the last hour", labels=["group"])
        for grp in d["groups"]:
            if grp["desired"] is not None:
                desired.add_metric([grp["name"]], grp["desired"])
            actual.add_metric([grp["name"]], grp["actual"])
            crashes.add_metric([grp["name"]], grp["crashesLastHour"])
        yield desired
        yield actual
        yield crashes
        g = GaugeMetricFamily("jobline_event_consumer_lag",
                              "Events on the bus a consumer group has not processed",
                              labels=["group"])
        for grp in lag["groups"]:
            g.add_metric([grp["group"]], grp["lag"] + grp["pending"])
        yield g


async def snapshot(request: Request) -> dict[str, Any]:
    bus = await bus_of(request.app)

    async def gather(deps: Deps) -> dict[str, Any]:
        return {"totals": await monitoring.totals(deps),
                "histograms": await monitoring.histogram_totals(deps),
                "queues": await monitoring.queue_metrics(deps),
                "workers": await monitoring.worker_metrics(deps),
                "groups": await fleet_actions.group_views(deps),
                "jobTypes": await job_types.list_job_types(deps),
                "lag": await core_events.lag(deps, bus, KINDS)}

    # A scrape tolerates the replica's bounded staleness (docs/deploy.md, "Read replica").
    return await read(request, gather)


@documented(Op(
    "prometheus", "Prometheus exposition (jobline_jobs_total, jobline_queue_depth, ...)",
    description=ADMIN, responses={200: Resp("text/plain; version=0.0.4", {"type": "string"},
                                            media_type="text/plain")}, errors=(503,)))
@endpoint
async def prometheus(request: Request) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Snapshot(await snapshot(request)))
    return Response(generate_latest(registry),
                    media_type="text/plain; version=0.0.4; charset=utf-8")


routes = [
    Route("/api/v1/metrics/queues", metrics_queues, methods=["GET"], name="metrics_queues"),
    Route("/api/v1/metrics/workers", metrics_workers, methods=["GET"], name="metrics_workers"),
    Route("/api/v1/metrics/jobs/timeline", metrics_timeline, methods=["GET"],
          name="metrics_timeline"),
    Route("/api/v1/metrics/job-duration-histogram", metrics_histogram, methods=["GET"],
          name="metrics_histogram"),
    Route("/api/v1/metrics/throughput", metrics_throughput, methods=["GET"],
          name="metrics_throughput"),
    Route("/metrics", prometheus, methods=["GET"], name="prometheus"),
]
