"""AI operations over GraphQL: the same calls as REST ``/api/v1/ai`` (:mod:`jobline.api.ai`) on
the same core (:mod:`jobline.analytics.ai`); admin only. Mixed into the ``Query`` and
``Mutation`` roots."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from jobline.analytics.ai import anomaly, forecast, predict, scaling, top_issues, training
from jobline.analytics.ai import dlq as dlq_ai
from jobline.shared.core.inputs import JOB_TYPE_PATTERN, QUEUE_PATTERN
from jobline.shared.platform.clock import to_dt
from jobline.shared.platform.errors import ValidationFailed
from jobline.shared.retry import adaptive

from .common import A, D, ctx
from .context import Context
from .errors import domain

_GROUP_ID = re.compile(r"^[0-9a-f]{16}$")


@strawberry.type(description="Dead letters sharing one error template (a root cause).")
class DlqGroup:
    group_id: str
    template: str = strawberry.field(description="The message with its variable parts masked.")
    count: int
    job_types: list[str]
    queues: list[str]
    error_types: list[str]
    first_seen: datetime
    last_seen: datetime
    sample_job_ids: list[strawberry.ID]
    retryable: bool = strawberry.field(
        description="Whether a retry can help: the error type's measured recovery rate, else "
                    "its wording.")
    evidence: str
    suggestion: str
    narrated: bool = strawberry.field(description="Whether suggestion was phrased by the LLM.")


@strawberry.type
class DlqInsights:
    groups: list[DlqGroup]
    analyzed: int
    limit: int
    complete: bool


@strawberry.type
class DlqGroupRetry:
    count: int
    job_ids: list[strawberry.ID]


def _selection(queue: str | None, job_type: str | None, limit: int) -> None:
    if queue is not None and not re.fullmatch(QUEUE_PATTERN, queue):
        raise ValidationFailed("queue", "not a valid queue name")
    if job_type is not None and not re.fullmatch(JOB_TYPE_PATTERN, job_type):
        raise ValidationFailed("jobType", "not a valid job type")
    if not 1 <= limit <= dlq_ai.MAX_LIMIT:
        raise ValidationFailed("limit", f"must be 1-{dlq_ai.MAX_LIMIT}")


@strawberry.type
class ScalingInputs:
    arrivals_per_minute: float
    arrivals_source: str
    average_job_duration_ms: float
    duration_source: str
    pending_jobs: int
    pending_source: str
    target_latency_ms: int
    service_level: float


@strawberry.type(description="Worker slots a queue needs for a wait target (M/M/c).")
class ScalingRecommendation:
    queue: str
    suggested_workers: int
    expected_wait_ms: float | None
    current_workers: int
    suggested_processes: int | None
    slots_per_process: int | None
    reasoning: list[str]
    narrated: bool = strawberry.field(description="Whether reasoning was phrased by the LLM.")
    inputs: ScalingInputs


@strawberry.type
class ModelInfo:
    version: int
    trained_at: datetime
    roc_auc: float | None
    pr_auc: float | None
    brier: float | None


@strawberry.type(description="How likely an attempt is to succeed, and why.")
class SuccessPrediction:
    success_probability: float
    reasons: list[str]
    suggestions: list[str]
    model: ModelInfo


def _f(v: object) -> float | None:
    return float(v) if isinstance(v, int | float) and v == v else None  # NaN -> null


@strawberry.type(description="An anomaly episode of one queue and metric (docs/ai.md).")
class Anomaly:
    id: int
    metric: str
    queue: str
    detected_at: datetime
    last_seen: datetime
    ended_at: datetime | None
    current_value: float
    baseline: float
    score: float
    peak_score: float
    possible_causes: list[str]
    baseline_source: str | None
    causes_summary: str | None = strawberry.field(
        description="The possible causes in one text (LLM-phrased when narrated).")
    narrated: bool


@strawberry.type
class ForecastPoint:
    at: datetime
    jobs: float
    lower: float
    upper: float


@strawberry.type
class ForecastDay:
    date: str
    jobs: float
    lower: float
    upper: float
    peak_jobs_per_hour: float
    workers_needed: int | None
    busy_worker_hours: float | None
    cost: float | None


@strawberry.type
class ForecastBacktest:
    holdout_hours: int
    season_hours: int
    mase_prophet: float | None
    mase_seasonal_naive: float | None


@strawberry.type(description="Hourly submissions forecast (Prophet) with capacity per day.")
class Forecast:
    queue: str
    horizon_days: int
    model: str
    capacity_model: str
    backtest: ForecastBacktest
    history_hours: int
    points: list[ForecastPoint]
    days: list[ForecastDay]
    mean_duration_ms: float | None
    wait_target_ms: float
    target_source: str
    price_per_worker_hour: float
    total_cost: float


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


@strawberry.type(description="The retry advisor's switches (REST: /api/v1/ai/adaptive-retries).")
class AdaptiveRetries:
    enabled: bool
    setting: bool
    runtime: bool
    model_version: int | None


async def _adaptive(deps: Any) -> AdaptiveRetries:
    adaptive.forget(deps)
    runtime = await adaptive.runtime_enabled(deps)
    model = await adaptive.current_model(deps)
    return AdaptiveRetries(enabled=deps.settings.adaptive_retries and runtime,
                           setting=deps.settings.adaptive_retries, runtime=runtime,
                           model_version=model.version if model is not None else None)

@strawberry.type(description="One of the top issues of a range (docs/ai.md \"Top issues\"). "
                              "Named AiTopIssue: TopIssue is analytics.topIssues' type.")
class AiTopIssue:
    kind: str = strawberry.field(
        description="dead_letters | anomaly | sla | slow_job_type | retry_storm")
    title: str
    detail: str = strawberry.field(description="The computed explanation (LLM-phrased when "
                                               "narrated).")
    queue: str | None
    job_type: str | None
    impact_jobs: float = strawberry.field(description="Jobs at stake: the ranking key.")
    impact_sla_minutes: float = strawberry.field(
        description="Minutes late jobs spent over their SLA target (SLA issues; 0 otherwise).")
    link: str = strawberry.field(description="A dashboard path to investigate.")
    narrated: bool


@strawberry.type
class AiTopIssues:
    issues: list[AiTopIssue]


def _epoch_ms(v: float | None, field: str) -> int | None:
    if v is None:
        return None
    if not math.isfinite(v) or not 0 <= v < 253_402_300_800_000:
        raise ValidationFailed(field, "epoch milliseconds out of range")
    return int(v)


@strawberry.type
class AiQueries:
    @strawberry.field(description="REST: GET /api/v1/ai/adaptive-retries.")
    @domain
    async def adaptive_retries(self, info: Info[Context, None]) -> AdaptiveRetries:
        c = ctx(info)
        c.require(A, "read the retry advisor's switches")
        return await _adaptive(c.deps)

    @strawberry.field(description="The top 3 issues of [fromMs, toMs) (epoch ms; default the "
                                  "last 24 hours) ranked by jobs at stake. REST: GET "
                                  "/api/v1/ai/top-issues.")
    @domain
    async def ai_top_issues(self, info: Info[Context, None], from_ms: float | None = None,
                            to_ms: float | None = None) -> AiTopIssues:
        c = ctx(info)
        c.require(A, "read top issues")
        frm, to = _epoch_ms(from_ms, "fromMs"), _epoch_ms(to_ms, "toMs")
        if frm is not None and to is not None and frm >= to:
            raise ValidationFailed("fromMs", "must be before toMs")
        out = await c.read(lambda d: top_issues.top_issues(d, frm, to))
        return AiTopIssues(issues=[AiTopIssue(
            kind=i["kind"], title=i["title"], detail=i["detail"], queue=i["queue"],
            job_type=i["jobType"], impact_jobs=i["impactJobs"],
            impact_sla_minutes=i["impactSlaMinutes"], link=i["link"], narrated=i["narrated"])
            for i in out["issues"]])

    @strawberry.field(description="REST: GET /api/v1/ai/forecast.")
    @domain
    async def forecast(self, info: Info[Context, None], queue: str,
                       horizon_days: int = 7) -> Forecast:
        c = ctx(info)
        c.require(A, "read forecasts")
        _selection(queue, None, 1)
        f = await forecast.forecast(c.deps, queue, horizon_days)
        b, a = f["backtest"], f["assumptions"]
        return Forecast(
            queue=f["queue"], horizon_days=f["horizonDays"], model=f["model"],
            capacity_model=f["capacityModel"],
            backtest=ForecastBacktest(holdout_hours=b["holdoutHours"],
                                      season_hours=b["seasonHours"],
                                      mase_prophet=_finite(b["maseProphet"]),
                                      mase_seasonal_naive=_finite(b["maseSeasonalNaive"])),
            history_hours=f["historyHours"],
            points=[ForecastPoint(at=datetime.fromisoformat(p["at"]), jobs=p["jobs"],
                                  lower=p["lower"], upper=p["upper"]) for p in f["points"]],
            days=[ForecastDay(date=d["date"], jobs=d["jobs"], lower=d["lower"],
                              upper=d["upper"], peak_jobs_per_hour=d["peakJobsPerHour"],
                              workers_needed=d["workersNeeded"],
                              busy_worker_hours=d["busyWorkerHours"], cost=d["cost"])
                  for d in f["days"]],
            mean_duration_ms=a["meanDurationMs"], wait_target_ms=a["waitTargetMs"],
            target_source=a["targetSource"], price_per_worker_hour=a["pricePerWorkerHour"],
            total_cost=f["totalCost"])

    @strawberry.field(description="Anomaly episodes detected in [from, to) (default: the last "
                                  "24 hours). REST: GET /api/v1/ai/anomalies.")
    @domain
    async def anomalies(
            self, info: Info[Context, None],
            from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
            to: datetime | None = None, queue: str | None = None) -> list[Anomaly]:
        c = ctx(info)
        c.require(A, "read anomalies")
        _selection(queue, None, 1)
        to_ms = int(to.timestamp() * 1000) if to is not None else c.deps.clock.now_ms() + 60_000
        from_ms = int(from_.timestamp() * 1000) if from_ is not None else to_ms - 86_400_000
        if from_ms >= to_ms:
            raise ValidationFailed("from", "must be before to")
        return [Anomaly(id=a["id"], metric=a["metric"], queue=a["queue"],
                        detected_at=to_dt(a["detectedAtMs"]), last_seen=to_dt(a["lastSeenMs"]),
                        ended_at=to_dt(a["endedAtMs"]) if a["endedAtMs"] is not None else None,
                        current_value=a["currentValue"], baseline=a["baseline"],
                        score=a["score"], peak_score=a["peakScore"],
                        possible_causes=a["possibleCauses"],
                        baseline_source=a["baselineSource"],
                        causes_summary=a["causesSummary"], narrated=a["narrated"])
                for a in await anomaly.summarize(
                    c.deps, await anomaly.list_anomalies(c.deps, from_ms, to_ms, queue))]

    @strawberry.field(description="REST: POST /api/v1/jobs/predict-success.")
    @domain
    async def predict_success(self, info: Info[Context, None], job_type: str, payload: JSON,
                              queue: str | None = None, queue_backlog: float | None = None,
                              worker_load: float | None = None, attempt: int = 1,
                              previous_error: str | None = None) -> SuccessPrediction:
        c = ctx(info)
        c.require(D, "predict success")
        _selection(queue, job_type, 1)
        if not isinstance(payload, dict):
            raise ValidationFailed("payload", "must be a JSON object")
        if queue_backlog is not None and queue_backlog < 0:
            raise ValidationFailed("queueBacklog", "must not be negative")
        if worker_load is not None and not 0 <= worker_load <= 1:
            raise ValidationFailed("workerLoad", "must be 0-1")
        if not 1 <= attempt <= 100:
            raise ValidationFailed("attempt", "must be 1-100")
        out = await predict.predict(c.deps, job_type=job_type, payload=payload, queue=queue,
                                    queue_backlog=queue_backlog, worker_load=worker_load,
                                    attempt=attempt, previous_error=previous_error)
        mi = out["model"]
        return SuccessPrediction(
            success_probability=out["successProbability"], reasons=out["reasons"],
            suggestions=out["suggestions"],
            model=ModelInfo(version=mi["version"],
                            trained_at=datetime.fromisoformat(mi["trainedAt"]),
                            roc_auc=_f(mi["rocAuc"]), pr_auc=_f(mi["prAuc"]),
                            brier=_f(mi["brier"])))

    @strawberry.field(description="REST: POST /api/v1/ai/scaling-recommendation; missing "
                                  "inputs are measured from live data.")
    @domain
    async def scaling_recommendation(
            self, info: Info[Context, None], queue: str, target_latency_ms: int,
            pending_jobs: int | None = None, average_job_duration_ms: float | None = None,
            current_workers: int | None = None) -> ScalingRecommendation:
        c = ctx(info)
        c.require(A, "read scaling advice")
        _selection(queue, None, 1)
        if not 1 <= target_latency_ms <= 86_400_000:
            raise ValidationFailed("targetLatencyMs", "must be 1-86400000")
        for name, v in (("pendingJobs", pending_jobs), ("currentWorkers", current_workers)):
            if v is not None and v < 0:
                raise ValidationFailed(name, "must not be negative")
        if average_job_duration_ms is not None and not 0 < average_job_duration_ms <= 86_400_000:
            raise ValidationFailed("averageJobDurationMs", "must be positive")
        out = await scaling.recommend(c.deps, queue, target_latency_ms, pending_jobs=pending_jobs,
                                      average_job_duration_ms=average_job_duration_ms,
                                      current_workers=current_workers)
        return ScalingRecommendation(
            queue=out["queue"], suggested_workers=out["suggestedWorkers"],
            expected_wait_ms=out["expectedWaitMs"], current_workers=out["currentWorkers"],
            suggested_processes=out["suggestedProcesses"],
            slots_per_process=out["slotsPerProcess"], reasoning=out["reasoning"],
            narrated=out["narrated"],
            inputs=ScalingInputs(
                arrivals_per_minute=out["inputs"]["arrivalsPerMinute"],
                arrivals_source=out["inputs"]["arrivalsSource"],
                average_job_duration_ms=out["inputs"]["averageJobDurationMs"],
                duration_source=out["inputs"]["durationSource"],
                pending_jobs=out["inputs"]["pendingJobs"],
                pending_source=out["inputs"]["pendingSource"],
                target_latency_ms=out["inputs"]["targetLatencyMs"],
                service_level=out["inputs"]["serviceLevel"]))

    @strawberry.field(description="Dead letters grouped by error template, with root-cause "
                                  "evidence (REST: GET /api/v1/ai/dlq-insights).")
    @domain
    async def dlq_insights(self, info: Info[Context, None], queue: str | None = None,
                           job_type: str | None = None,
                           limit: int = dlq_ai.DEFAULT_LIMIT) -> DlqInsights:
        c = ctx(info)
        c.require(A, "read DLQ insights")
        _selection(queue, job_type, limit)
        out = await dlq_ai.insights(c.deps, queue=queue, job_type=job_type, limit=limit)
        return DlqInsights(
            groups=[DlqGroup(
                group_id=g["groupId"], template=g["template"], count=g["count"],
                job_types=g["jobTypes"], queues=g["queues"], error_types=g["errorTypes"],
                first_seen=to_dt(g["firstSeenMs"]), last_seen=to_dt(g["lastSeenMs"]),
                sample_job_ids=[strawberry.ID(i) for i in g["sampleJobIds"]],
                retryable=g["retryable"], evidence=g["evidence"], suggestion=g["suggestion"],
                narrated=g["narrated"])
                for g in out["groups"]],
            analyzed=out["analyzed"], limit=out["limit"], complete=out["complete"])


@strawberry.type
class AiMutations:
    @strawberry.mutation(description="Turn the retry advisor on or off at run time (REST: PUT "
                                     "/api/v1/ai/adaptive-retries).")
    @domain
    async def set_adaptive_retries(self, info: Info[Context, None], enabled: bool
                                   ) -> AdaptiveRetries:
        c = ctx(info)
        c.require(A, "switch the retry advisor")
        await adaptive.set_enabled(c.deps, enabled)
        return await _adaptive(c.deps)

    @strawberry.mutation(description="Train the failure-prediction model on the last `days` of "
                                     "history; the holdout and baseline metrics (REST: POST "
                                     "/api/v1/ai/train).")
    @domain
    async def train_models(self, info: Info[Context, None], days: int = predict.DEFAULT_DAYS
                           ) -> JSON:
        c = ctx(info)
        c.require(A, "train models")
        return JSON(await training.train_all(c.deps, days=days))

    @strawberry.mutation(description="Retry exactly the dead letters of one root-cause group "
                                     "(REST: POST /api/v1/ai/dlq-insights/retry).")
    @domain
    async def retry_dlq_group(self, info: Info[Context, None], group_id: str,
                              queue: str | None = None, job_type: str | None = None,
                              limit: int = dlq_ai.DEFAULT_LIMIT) -> DlqGroupRetry:
        c = ctx(info)
        c.require(A, "retry a DLQ group")
        if not _GROUP_ID.fullmatch(group_id):
            raise ValidationFailed("groupId", "16 hex digits, as dlqInsights returns")
        _selection(queue, job_type, limit)
        ids = await dlq_ai.retry_group(c.deps, group_id, queue=queue, job_type=job_type,
                                       limit=limit)
        return DlqGroupRetry(count=len(ids), job_ids=[strawberry.ID(str(i)) for i in ids])
