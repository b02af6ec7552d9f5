"""The analytics API over REST (issue 16, docs/analytics.md): ``/api/v1/analytics/*`` and the
per-queue SLA and price, ``PUT /api/v1/queues/{name}/sla|cost``. Admin only (the auth rule
table).

Thin shells over :mod:`jobline.analytics.query`, the functions GraphQL's ``analytics`` field
resolves with: each response body is exactly the value of the GraphQL field of the same name
(an object, or an array for list fields), with the contract's camelCase names. Every endpoint
takes ``from``/``to`` (ISO 8601; default the last 24 hours) and the ``queue``/``jobType``
filters; a value outside its domain is a 400 naming the parameter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from jobline.analytics import query as aq
from jobline.api.body import parse_json, read_body
from jobline.api.context import ctx, read
from jobline.api.docs import OBJECT, Op, Param, Resp, documented, query
from jobline.api.errors import JSONResponse, by_method, endpoint
from jobline.shared.core.inputs import InputModel
from jobline.shared.platform.connections import Deps

ADMIN = "Admin key required. Computed from the rollups (docs/analytics.md), never from jobs."
_ARRAY = {"type": "array", "items": OBJECT}
_BODY = 4096

RANGE: tuple[Param, ...] = (
    query("from", {"type": "string", "format": "date-time"},
          "ISO 8601 start (inclusive); default: to - 24 h"),
    query("to", {"type": "string", "format": "date-time"}, "ISO 8601 end (exclusive); "
          "default: now. At most 400 days after from"),
    query("queue", {"type": "string"}, "one queue only"),
    query("jobType", {"type": "string"}, "one job type only"),
)
INTERVAL = query("interval", {"type": "string", "enum": list(aq.INTERVALS), "default": "hour"})


def _limit(default: int, hi: int) -> Param:
    return query("limit", {"type": "integer", "minimum": 1, "maximum": hi, "default": default})


def scope_of(request: Request, deps: Deps) -> aq.Scope:
    q = request.query_params
    for k, v in q.items():
        if "\x00" in v:
            raise aq.BadParameter(k, "must not contain the NUL character")
    frm = aq.parse_time(q["from"], "from") if "from" in q else None
    to = aq.parse_time(q["to"], "to") if "to" in q else None
    return aq.scope(deps.clock.now_ms(), frm, to, q.get("queue"), q.get("jobType"))


Handler = Callable[[Deps, aq.Scope, Request], Awaitable[Any]]


def analytics_route(op_id: str, summary: str, params: tuple[Param, ...],
                    array: bool = False) -> Callable[[Handler], Callable[..., Any]]:
    """An analytics GET endpoint: validated scope in, the core function's value out."""

    def wrap(fn: Handler) -> Callable[..., Any]:
        @documented(Op(op_id, summary, description=ADMIN, params=(*RANGE, *params),
                       responses={200: Resp(summary, _ARRAY if array else OBJECT)},
                       errors=(400, 503)))
        @endpoint
        async def handler(request: Request) -> Response:
            s = scope_of(request, ctx(request).require_deps())
            return JSONResponse(await read(request, lambda deps: fn(deps, s, request)))

        handler.__name__ = fn.__name__
        return handler

    return wrap


@analytics_route("analyticsSummary", "Processed, succeeded, failed, dead-lettered, success rate, "
                 "average and p50/p95/p99 duration, each with the previous equal period", ())
async def summary(deps: Deps, s: aq.Scope, request: Request) -> Any:
    return await aq.summary(deps, s)


@analytics_route("analyticsThroughput", "Submitted/started/completed/failed/dead-lettered per "
                 "interval", (INTERVAL,), array=True)
async def throughput(deps: Deps, s: aq.Scope, request: Request) -> Any:
    return await aq.throughput(deps, s, request.query_params.get("interval", "hour"))


@analytics_route("analyticsDurations", "Percentiles and histogram of run (or wait, end-to-end) "
                 "time, overall and by job type",
                 (query("metric", {"type": "string", "enum": list(aq.DURATION_METRICS),
                                   "default": "duration"}),))
async def durations(deps: Deps, s: aq.Scope, request: Request) -> Any:
    return await aq.durations(deps, s, request.query_params.get("metric", "duration"))


@analytics_route("analyticsFailures", "Error types, failure-rate trend (interval), the job types "
                 "failing most (limit), time-to-failure histogram", (INTERVAL, _limit(10, 100)))
async def failures(deps: Deps, s: aq.Scope, request: Request) -> Any:
    q = request.query_params
    return await aq.failures(deps, s, q.get("interval", "hour"),
                             aq.parse_int("limit", q.get("limit"), 10, 1, 100))


@analytics_route("analyticsRetries", "Retries per job type, success rate by attempt number, "
                 "compute spent on failed attempts", ())
async def retries(deps: Deps, s: aq.Scope, request: Request) -> Any:
    return await aq.retries(deps, s)


@analytics_route("analyticsQueuesHealth", "Per queue: depth and oldest pending age over time, "
                 "throughput, utilization, estimated time to clear the backlog", (), array=True)
async def queues_health(deps: Deps, s: aq.Scope, request: Request) -> Any:
    return await aq.queues_health(deps, s)


@analytics_route("analyticsResources", "Workers over time, utilization, CPU/memory per worker, "
                 "crashes, Redis memory, PostgreSQL size per table, event lag", ())
async def resources(deps: Deps, s: aq.Scope, request: Request) -> Any:
    return await aq.resources(deps, s)


@analytics_route("analyticsCost", "Worker-hours and cost per queue or job type, most expensive "
                 "types, storage growth, monthly projection",
                 (query("groupBy", {"type": "string", "enum": list(aq.GROUP_BYS),
                                    "default": "queue"}),))
async def cost(deps: Deps, s: aq.Scope, request: Request) -> Any:
    return await aq.cost(deps, s, request.query_params.get("groupBy", "queue"))


@analytics_route("analyticsSla", "Per-queue SLA compliance, violations and trend", (),
                 array=True)
async def sla(deps: Deps, s: aq.Scope, request: Request) -> Any:
    return await aq.sla(deps, s)


@analytics_route("analyticsAvailability", "Uptime per component, incidents with duration and "
                 "cause, MTTR (health samples)", ())
async def availability(deps: Deps, s: aq.Scope, request: Request) -> Any:
    return await aq.availability(deps, s)


@analytics_route("analyticsSlowJobs", "Slowest job types by p95 with data-backed suggestions",
                 (_limit(10, 100),), array=True)
async def slow_jobs(deps: Deps, s: aq.Scope, request: Request) -> Any:
    return await aq.slow_jobs(deps, s, aq.parse_int("limit", request.query_params.get("limit"),
                                                    10, 1, 100))


@analytics_route("analyticsTopIssues", "The issues needing attention, ranked by jobs at stake",
                 (_limit(3, 50),), array=True)
async def top_issues(deps: Deps, s: aq.Scope, request: Request) -> Any:
    return await aq.top_issues(deps, s, aq.parse_int("limit", request.query_params.get("limit"),
                                                     3, 1, 50))


@documented(Op("analyticsCriticalPath", "A job's DAG (ancestors and descendants), its critical "
               "path by wait + run time and the path's bottlenecks", description=ADMIN,
               params=(query("jobId", {"type": "string", "format": "uuid"}, "required"),),
               responses={200: Resp("The DAG", OBJECT)}, errors=(400, 404, 503)))
@endpoint
async def critical_path(request: Request) -> Response:
    raw = request.query_params.get("jobId")
    if raw is None:
        raise aq.BadParameter("jobId", "is required")
    job_id = aq.parse_job_id(raw)
    return JSONResponse(await read(request, lambda deps: aq.critical_path(deps, job_id)))


async def _object(request: Request, allowed: set[str], required: set[str]) -> dict[str, Any]:
    body = parse_json(await read_body(request, _BODY))
    if not isinstance(body, dict):
        raise aq.BadParameter("body", "must be a JSON object")
    for k in body:
        if k not in allowed:
            raise aq.BadParameter(k, "unknown field; known: " + ", ".join(sorted(allowed)))
    for k in sorted(required):
        if k not in body:
            raise aq.BadParameter(k, "is required")
    return body


class QueueSlaIn(InputModel):
    """``PUT /api/v1/queues/{name}/sla`` (documentation; :func:`aq.set_queue_sla` validates)."""

    objective: float = Field(gt=0, lt=1, description="share of jobs within the target, 0.95")
    target_ms: int = Field(ge=1, le=2**31 - 1)
    metric: Literal["e2e", "wait"] = "e2e"


class QueueCostIn(InputModel):
    """``PUT /api/v1/queues/{name}/cost`` (documentation; :func:`aq.set_queue_cost` validates)."""

    price_per_worker_hour: float = Field(ge=0, lt=1e8)


@documented(Op("setQueueSla", "Set the queue's SLA, e.g. 95% within 5 minutes end to end "
               "(admin)", description=ADMIN, body=QueueSlaIn,
               responses={200: Resp("The SLA", OBJECT)}, errors=(400, 404, 413, 503)))
@endpoint
async def put_sla(request: Request) -> Response:
    body = await _object(request, {"objective", "targetMs", "metric"}, {"objective", "targetMs"})
    return JSONResponse(await aq.set_queue_sla(
        ctx(request).require_deps(), request.path_params["name"], body["objective"],
        body["targetMs"], body.get("metric", "e2e")))


@documented(Op("setQueueCost", "Set the queue's price per worker-hour (admin)",
               description=ADMIN, body=QueueCostIn,
               responses={200: Resp("The price", OBJECT)}, errors=(400, 404, 413, 503)))
@endpoint
async def put_cost(request: Request) -> Response:
    body = await _object(request, {"pricePerWorkerHour"}, {"pricePerWorkerHour"})
    return JSONResponse(await aq.set_queue_cost(
        ctx(request).require_deps(), request.path_params["name"], body["pricePerWorkerHour"]))


_A = "/api/v1/analytics"
routes = [
    by_method(f"{_A}/summary", {"GET": summary}, name="analytics_summary"),
    by_method(f"{_A}/throughput", {"GET": throughput}, name="analytics_throughput"),
    by_method(f"{_A}/durations", {"GET": durations}, name="analytics_durations"),
    by_method(f"{_A}/failures", {"GET": failures}, name="analytics_failures"),
    by_method(f"{_A}/retries", {"GET": retries}, name="analytics_retries"),
    by_method(f"{_A}/queues/health", {"GET": queues_health}, name="analytics_queues_health"),
    by_method(f"{_A}/resources", {"GET": resources}, name="analytics_resources"),
    by_method(f"{_A}/cost", {"GET": cost}, name="analytics_cost"),
    by_method(f"{_A}/sla", {"GET": sla}, name="analytics_sla"),
    by_method(f"{_A}/availability", {"GET": availability}, name="analytics_availability"),
    by_method(f"{_A}/slow-jobs", {"GET": slow_jobs}, name="analytics_slow_jobs"),
    by_method(f"{_A}/top-issues", {"GET": top_issues}, name="analytics_top_issues"),
    by_method(f"{_A}/dependencies/critical-path", {"GET": critical_path},
              name="analytics_critical_path"),
    by_method("/api/v1/queues/{name}/sla", {"PUT": put_sla}, name="queue_sla"),
    by_method("/api/v1/queues/{name}/cost", {"PUT": put_cost}, name="queue_cost"),
]
