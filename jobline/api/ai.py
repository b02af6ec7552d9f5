"""``/api/v1/ai``: AI operations (issue 17). Admin only (the auth rules' default).

Thin shells over :mod:`jobline.analytics.ai`: validate, one call, serialise.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.requests import Request
from starlette.responses import Response

from jobline.analytics import query as aq
from jobline.analytics.ai import anomaly, forecast, predict, scaling, top_issues, training
from jobline.analytics.ai import dlq as dlq_ai
from jobline.api.body import parse_json, read_body, single_body_limit
from jobline.api.context import ctx, read
from jobline.api.docs import OBJECT, Op, Resp, documented, query
from jobline.api.errors import JSONResponse, by_method, check_query_params, endpoint
from jobline.api.jobs import validate
from jobline.api.schemas import _In, _Out, iso_ms
from jobline.shared.core.inputs import JOB_TYPE_PATTERN, QUEUE_PATTERN
from jobline.shared.platform.clock import from_dt
from jobline.shared.platform.errors import ValidationFailed
from jobline.shared.retry import adaptive

GroupId = Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
Limit = Annotated[int, Field(ge=1, le=dlq_ai.MAX_LIMIT)]


class DlqInsightsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)

    queue: Annotated[str, Field(pattern=QUEUE_PATTERN)] | None = None
    job_type: Annotated[str, Field(pattern=JOB_TYPE_PATTERN)] | None = None
    limit: Limit = dlq_ai.DEFAULT_LIMIT


class DlqGroupOut(_Out):
    group_id: str
    #: The error message with its variable parts masked (``<NUM>``, ``<UUID>``, ``<*>``...).
    template: str
    count: int
    job_types: list[str]
    queues: list[str]
    error_types: list[str]
    first_seen: str
    last_seen: str
    sample_job_ids: list[uuid.UUID]
    #: Whether a retry can help: the error type's measured recovery rate, else its wording.
    retryable: bool
    evidence: str
    suggestion: str
    #: Whether ``suggestion`` was phrased by the LLM (docs/ai.md "Narration")
    narrated: bool


class DlqInsightsOut(_Out):
    groups: list[DlqGroupOut]
    #: Dead letters grouped (the newest ``limit``); ``complete`` when that was all of them.
    analyzed: int
    limit: int
    complete: bool


class RetryGroupIn(_In):
    group_id: GroupId
    queue: Annotated[str, Field(pattern=QUEUE_PATTERN)] | None = None
    job_type: Annotated[str, Field(pattern=JOB_TYPE_PATTERN)] | None = None
    limit: Limit = dlq_ai.DEFAULT_LIMIT


class RetryGroupOut(_Out):
    count: int
    job_ids: list[uuid.UUID]


class ScalingIn(_In):
    queue: Annotated[str, Field(pattern=QUEUE_PATTERN)]
    #: 95% of jobs should start within this many ms.
    target_latency_ms: Annotated[int, Field(ge=1, le=86_400_000)]
    #: Missing values are measured: the queue's ready + delayed jobs now.
    pending_jobs: Annotated[int, Field(ge=0)] | None = None
    #: Missing: the mean run time of the queue's jobs over the last hour (rollups).
    average_job_duration_ms: Annotated[float, Field(gt=0, le=86_400_000)] | None = None
    #: Worker slots (concurrent jobs) serving the queue; missing: the live workers' concurrency.
    current_workers: Annotated[int, Field(ge=0, le=scaling.MAX_SLOTS)] | None = None


class ScalingInputsOut(_Out):
    arrivals_per_minute: float
    arrivals_source: str
    average_job_duration_ms: float
    duration_source: str
    pending_jobs: int
    pending_source: str
    target_latency_ms: int
    service_level: float


class ScalingOut(_Out):
    queue: str
    #: Worker slots (concurrent jobs) the queue needs.
    suggested_workers: int
    #: Mean wait with that many slots (M/M/c); null if even they cannot keep up.
    expected_wait_ms: float | None
    current_workers: int
    suggested_processes: int | None
    slots_per_process: int | None
    reasoning: list[str]
    #: Whether ``reasoning`` was phrased by the LLM (docs/ai.md "Narration")
    narrated: bool
    inputs: ScalingInputsOut


class PredictIn(_In):
    job_type: Annotated[str, Field(pattern=JOB_TYPE_PATTERN)]
    queue: Annotated[str, Field(pattern=QUEUE_PATTERN)] | None = None
    payload: dict[str, Any]
    #: Jobs ready in the queue; missing: the live depth when ``queue`` is given.
    queue_backlog: Annotated[float, Field(ge=0)] | None = None
    #: Busy share of the worker slots, 0..1.
    worker_load: Annotated[float, Field(ge=0, le=1)] | None = None
    attempt: Annotated[int, Field(ge=1, le=100)] = 1
    previous_error: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class ModelInfoOut(_Out):
    version: int
    trained_at: str
    roc_auc: float | None
    pr_auc: float | None
    brier: float | None


class PredictOut(_Out):
    success_probability: float
    #: The features that moved this estimate most (the model's own contributions).
    reasons: list[str]
    #: Advice quoting the failure rates the history shows for those features.
    suggestions: list[str]
    model: ModelInfoOut


class AnomalyQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)

    from_: Annotated[AwareDatetime | None, Field(alias="from")] = None
    to: AwareDatetime | None = None
    queue: Annotated[str, Field(pattern=QUEUE_PATTERN)] | None = None


class AnomalyOut(_Out):
    id: int
    metric: str
    queue: str
    detected_at: str
    last_seen: str
    #: null while the episode is still going on
    ended_at: str | None
    current_value: float
    baseline: float
    #: robust z-score at detection (value - median) / scale, in the metric's bad direction
    score: float
    peak_score: float
    possible_causes: list[str]
    baseline_source: str | None
    #: The possible causes in one text (null without any); LLM-phrased when ``narrated``
    causes_summary: str | None
    narrated: bool


class AnomaliesOut(_Out):
    anomalies: list[AnomalyOut]


class ForecastQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)

    queue: Annotated[str, Field(pattern=QUEUE_PATTERN)]
    horizon_days: int = 7  # 7 or 30, checked by forecast()


class ForecastPointOut(_Out):
    at: str
    jobs: float
    lower: float
    upper: float


class ForecastDayOut(_Out):
    date: str
    jobs: float
    lower: float
    upper: float
    peak_jobs_per_hour: float
    #: Worker slots for the busiest hour to meet the wait target (M/M/c); null without runs
    workers_needed: int | None
    busy_worker_hours: float | None
    cost: float | None


class BacktestOut(_Out):
    holdout_hours: int
    season_hours: int
    mase_prophet: float | None
    mase_seasonal_naive: float | None


class ForecastOut(_Out):
    queue: str
    horizon_days: int
    #: the model of ``points`` (always Prophet)
    model: str
    #: the model with the lower backtest MASE, used for ``days``' capacity and cost
    capacity_model: str
    backtest: BacktestOut
    history_hours: int
    points: list[ForecastPointOut]
    days: list[ForecastDayOut]
    assumptions: dict[str, Any]
    total_cost: float


class TrainIn(_In):
    days: Annotated[int, Field(ge=1, le=400)] = predict.DEFAULT_DAYS


class AdaptiveRetriesIn(_In):
    enabled: bool


class AdaptiveRetriesOut(_Out):
    #: Both switches are on: adaptive jobs' failures are decided by the advisor.
    enabled: bool
    #: JOBLINE_ADAPTIVE_RETRIES (off: the advisor is off whatever the run-time switch says).
    setting: bool
    #: The run-time switch (PUT this endpoint).
    runtime: bool
    #: The recovery table in use (None: not trained yet; priors only).
    model_version: int | None


def insights_json(out: dict[str, object]) -> dict[str, object]:
    groups = []
    for g in out["groups"]:  # type: ignore[attr-defined]
        g = dict(g)
        g["firstSeen"] = iso_ms(g.pop("firstSeenMs"))
        g["lastSeen"] = iso_ms(g.pop("lastSeenMs"))
        groups.append(g)
    return {**out, "groups": groups}


@documented(Op(
    "dlqInsights", "Dead letters grouped by error template, with root-cause evidence",
    params=(query("queue", {"type": "string", "pattern": QUEUE_PATTERN}),
            query("jobType", {"type": "string", "pattern": JOB_TYPE_PATTERN}),
            query("limit", {"type": "integer", "minimum": 1, "maximum": dlq_ai.MAX_LIMIT,
                            "default": dlq_ai.DEFAULT_LIMIT},
                  "how many of the newest dead letters to group")),
    responses={200: Resp("The groups, largest first", DlqInsightsOut)}, errors=(400, 422, 503)))
@endpoint
async def dlq_insights(request: Request) -> Response:
    check_query_params(request.query_params.keys(), DlqInsightsQuery)
    q = validate(DlqInsightsQuery, dict(request.query_params))
    out = await dlq_ai.insights(ctx(request).require_deps(), queue=q.queue, job_type=q.job_type,
                                limit=q.limit)
    return JSONResponse(insights_json(out))


@documented(Op(
    "retryDlqGroup", "Retry exactly the dead letters of one root-cause group",
    body=RetryGroupIn, responses={200: Resp("Back to pending", RetryGroupOut)},
    errors=(400, 404, 422, 503)))
@endpoint
async def retry_dlq_group(request: Request) -> Response:
    c = ctx(request)
    body = validate(RetryGroupIn, parse_json(await read_body(request,
                                                             single_body_limit(c.settings))))
    ids = await dlq_ai.retry_group(c.require_deps(), body.group_id, queue=body.queue,
                                   job_type=body.job_type, limit=body.limit)
    return JSONResponse({"count": len(ids), "jobIds": [str(i) for i in ids]})


@documented(Op(
    "scalingRecommendation", "Worker slots a queue needs for a wait target (M/M/c, Erlang C)",
    body=ScalingIn, responses={200: Resp("The advice, with its inputs and reasoning",
                                         ScalingOut)}, errors=(400, 422, 503)))
@endpoint
async def scaling_recommendation(request: Request) -> Response:
    c = ctx(request)
    b = validate(ScalingIn, parse_json(await read_body(request, single_body_limit(c.settings))))
    return JSONResponse(await scaling.recommend(
        c.require_deps(), b.queue, b.target_latency_ms, pending_jobs=b.pending_jobs,
        average_job_duration_ms=b.average_job_duration_ms, current_workers=b.current_workers))


@documented(Op(
    "predictSuccess", "How likely a job's attempt is to succeed, and why",
    body=PredictIn, responses={200: Resp("The calibrated estimate", PredictOut)},
    errors=(400, 404, 422, 503),
    description="404 until a model is trained (POST /api/v1/ai/train)."))
@endpoint
async def predict_success(request: Request) -> Response:
    c = ctx(request)
    b = validate(PredictIn, parse_json(await read_body(request, single_body_limit(c.settings))))
    return JSONResponse(await predict.predict(
        c.require_deps(), job_type=b.job_type, payload=b.payload, queue=b.queue,
        queue_backlog=b.queue_backlog, worker_load=b.worker_load, attempt=b.attempt,
        previous_error=b.previous_error))


@documented(Op(
    "trainModels", "Train the failure-prediction model on the last days of history",
    body=TrainIn, responses={200: Resp("The new version with its holdout metrics", OBJECT)},
    errors=(400, 422, 503)))
@endpoint
async def train(request: Request) -> Response:
    c = ctx(request)
    raw = await read_body(request, single_body_limit(c.settings))
    b = validate(TrainIn, parse_json(raw) if raw.strip() else {})
    return JSONResponse(await training.train_all(c.require_deps(), days=b.days))


_WHEN = {"type": "string", "format": "date-time"}


@documented(Op(
    "listAnomalies", "Anomaly episodes detected over the rollups (default: the last 24 hours)",
    params=(query("from", _WHEN), query("to", _WHEN),
            query("queue", {"type": "string", "pattern": QUEUE_PATTERN})),
    responses={200: Resp("Episodes by detection time", AnomaliesOut)}, errors=(400, 422, 503)))
@endpoint
async def anomalies(request: Request) -> Response:
    check_query_params(request.query_params.keys(), AnomalyQuery)
    q = validate(AnomalyQuery, dict(request.query_params))
    deps = ctx(request).require_deps()
    to_ms = from_dt(q.to) if q.to is not None else deps.clock.now_ms() + 60_000
    from_ms = from_dt(q.from_) if q.from_ is not None else to_ms - 86_400_000
    if from_ms >= to_ms:
        raise ValidationFailed("from", "must be before to")
    rows = await anomaly.summarize(deps, await anomaly.list_anomalies(deps, from_ms, to_ms,
                                                                       q.queue))
    return JSONResponse({"anomalies": [anomaly_json(a) for a in rows]})


def anomaly_json(a: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in a.items() if not k.endswith("Ms")}
    out["detectedAt"] = iso_ms(a["detectedAtMs"])
    out["lastSeen"] = iso_ms(a["lastSeenMs"])
    out["endedAt"] = iso_ms(a["endedAtMs"])
    return out


@documented(Op(
    "forecast", "Hourly submissions forecast (Prophet) with capacity and cost per day",
    params=(query("queue", {"type": "string", "pattern": QUEUE_PATTERN}),
            query("horizonDays", {"type": "integer", "enum": [7, 30], "default": 7})),
    responses={200: Resp("Points with 80% intervals, the backtest, and capacity per day",
                         ForecastOut)}, errors=(400, 422, 503)))
@endpoint
async def forecast_queue(request: Request) -> Response:
    check_query_params(request.query_params.keys(), ForecastQuery)
    q = validate(ForecastQuery, dict(request.query_params))
    return JSONResponse(await forecast.forecast(ctx(request).require_deps(), q.queue,
                                                q.horizon_days))


class TopIssuesQuery(BaseModel):
    """The query parameters (documentation and the unknown-parameter check)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    from_: Annotated[str | None, Field(alias="from")] = None
    to: str | None = None


class TopIssueOut(_Out):
    #: dead_letters | anomaly | sla | slow_job_type | retry_storm
    kind: str
    title: str
    #: The computed explanation (narrated by the LLM when one is configured)
    detail: str
    queue: str | None
    job_type: str | None
    #: Jobs at stake, the ranking key (docs/ai.md "Top issues")
    impact_jobs: float
    #: Minutes the late jobs spent over their SLA target (SLA issues; 0 otherwise)
    impact_sla_minutes: float
    #: A dashboard path to investigate
    link: str
    #: Whether ``detail`` was phrased by the LLM (false: the computed template)
    narrated: bool


class TopIssuesOut(_Out):
    issues: list[TopIssueOut]


def when(raw: str | None, field: str) -> int | None:
    """Epoch milliseconds (digits) or an ISO 8601 time, as the analytics endpoints take."""
    if raw is None:
        return None
    v = raw.strip()
    if v.isdigit() or (v.startswith("-") and v[1:].isdigit()):
        ms = int(v)
        if not 0 <= ms < 253_402_300_800_000:  # year 10000
            raise aq.BadParameter(field, "epoch milliseconds out of range")
        return ms
    if "\x00" in v:
        raise aq.BadParameter(field, "must not contain the NUL character")
    return aq.parse_time(v, field)


_TIME = {"type": "string"}


@documented(Op(
    "aiTopIssues", "The top 3 issues of a range ranked by jobs at stake: dead-letter groups, "
    "anomalies, SLA misses, slow job types, retry storms",
    params=(query("from", _TIME, "epoch ms or ISO 8601 start (inclusive); default: to - 24 h"),
            query("to", _TIME, "epoch ms or ISO 8601 end (exclusive); default: now")),
    responses={200: Resp("The issues, most impact first", TopIssuesOut)},
    errors=(400, 503)))
@endpoint
async def ai_top_issues(request: Request) -> Response:
    check_query_params(request.query_params.keys(), TopIssuesQuery)
    q = request.query_params
    frm, to = when(q.get("from"), "from"), when(q.get("to"), "to")
    return JSONResponse(await read(request, lambda deps: top_issues.top_issues(deps, frm, to)))


async def _adaptive_state(c: Any) -> dict[str, Any]:
    deps = c.require_deps()
    adaptive.forget(deps)
    runtime = await adaptive.runtime_enabled(deps)
    model = await adaptive.current_model(deps)
    return {"enabled": deps.settings.adaptive_retries and runtime,
            "setting": deps.settings.adaptive_retries, "runtime": runtime,
            "modelVersion": model.version if model is not None else None}


@documented(Op("getAdaptiveRetries", "The retry advisor's switches and model version",
               responses={200: Resp("The switches", AdaptiveRetriesOut)}))
@endpoint
async def get_adaptive_retries(request: Request) -> Response:
    return JSONResponse(await _adaptive_state(ctx(request)))


@documented(Op("putAdaptiveRetries", "Turn the retry advisor on or off at run time (every "
               "process follows within 30 s)", body=AdaptiveRetriesIn,
               responses={200: Resp("The switches", AdaptiveRetriesOut)}, errors=(400, 422)))
@endpoint
async def put_adaptive_retries(request: Request) -> Response:
    c = ctx(request)
    b = validate(AdaptiveRetriesIn, parse_json(await read_body(request, 1024)))
    await adaptive.set_enabled(c.require_deps(), b.enabled)
    return JSONResponse(await _adaptive_state(c))


routes = [
    by_method("/api/v1/ai/adaptive-retries", {"GET": get_adaptive_retries,
                                              "PUT": put_adaptive_retries},
              name="ai_adaptive_retries"),
    by_method("/api/v1/ai/top-issues", {"GET": ai_top_issues}, name="ai_top_issues"),
    by_method("/api/v1/ai/forecast", {"GET": forecast_queue}, name="ai_forecast"),
    by_method("/api/v1/ai/anomalies", {"GET": anomalies}, name="ai_anomalies"),
    by_method("/api/v1/jobs/predict-success", {"POST": predict_success}, name="ai_predict"),
    by_method("/api/v1/ai/train", {"POST": train}, name="ai_train"),
    by_method("/api/v1/ai/scaling-recommendation", {"POST": scaling_recommendation},
              name="ai_scaling"),
    by_method("/api/v1/ai/dlq-insights", {"GET": dlq_insights}, name="ai_dlq_insights"),
    by_method("/api/v1/ai/dlq-insights/retry", {"POST": retry_dlq_group},
              name="ai_dlq_retry_group"),
]
