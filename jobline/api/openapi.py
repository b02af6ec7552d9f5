"""The OpenAPI 3.1 document, generated from the pydantic models in :mod:`jobline.api.schemas`.

Schemas come from ``models_json_schema`` with refs pointing into ``components/schemas`` (pydantic's
``$defs`` hoisted there), so the document and the validators cannot disagree. Limits that come from
settings (bulk size, page size) are written in per app. A test checks every route is covered.
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobline.api import batches as b
from jobline.api import metrics, worker_routes
from jobline.api import retry_policies as rp
from jobline.api import schedule_schemas as ss
from jobline.api import schemas as s
from jobline.api.errors import JSONResponse, endpoint
from jobline.api.security_doc import add_security
from jobline.shared.core import inputs as ci
from jobline.shared.platform.config import Settings
from jobline.shared.schedules import inputs as si

_REF = "#/components/schemas/{model}"

_MODELS: list[tuple[type[BaseModel], JsonSchemaMode]] = [
    (ci.SubmitJobIn, "validation"),
    (s.BulkSubmitIn, "validation"),
    (s.SubmittedOut, "serialization"),
    (s.BulkSubmittedOut, "serialization"),
    (s.TransitionOut, "serialization"),
    (s.CancelRequestedOut, "serialization"),
    (rp.RetryPolicyIn, "validation"),
    (rp.RetryPolicyOut, "serialization"),
    (rp.RetryPolicyListOut, "serialization"),
    (s.JobOut, "serialization"),
    (s.JobListOut, "serialization"),
    (s.QueuesOut, "serialization"),
    (s.ConcurrencyIn, "validation"),
    (s.QueueControlsOut, "serialization"),
    (s.DlqSelectIn, "validation"),
    (s.DlqListOut, "serialization"),
    (s.DlqBulkOut, "serialization"),
    (si.ScheduleIn, "validation"),
    (si.SchedulePatchIn, "validation"),
    (ss.ScheduleOut, "serialization"),
    (ss.ScheduleListOut, "serialization"),
    (ss.RateLimitIn, "validation"),
    (ss.QueueRateLimitOut, "serialization"),
    (s.HealthOut, "serialization"),
    (b.BatchIn, "validation"),
    (b.BatchCreatedOut, "serialization"),
    (b.BatchOut, "serialization"),
    (b.GraphOut, "serialization"),
    (s.ErrorOut, "serialization"),
]

_ERROR_TEXT = {
    400: "Malformed JSON body",
    404: "Unknown (or malformed) id",
    409: "The job's status does not allow this transition",
    413: "Body, payload or batch too large",
    422: "Validation failed; `error.field` names the field",
    500: "Internal error (details only in the server log)",
    503: "A backing store is unavailable; retry after `Retry-After` seconds",
}


def build_openapi(settings: Settings) -> dict[str, Any]:
    refs, top = models_json_schema(_MODELS, ref_template=_REF, by_alias=True)
    components: dict[str, Any] = dict(top.get("$defs", {}))

    def ref(model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
        return dict(refs[(model, mode)])

    # Settings-dependent bounds, so generated clients and fuzzers respect this deployment.
    bulk = components[ref(s.BulkSubmitIn, "validation")["$ref"].rsplit("/", 1)[-1]]
    bulk["properties"]["jobs"]["maxItems"] = settings.max_bulk_jobs
    batch_in = components[ref(b.BatchIn, "validation")["$ref"].rsplit("/", 1)[-1]]
    batch_in["properties"]["jobs"]["maxItems"] = settings.max_bulk_jobs

    def body(schema: dict[str, Any]) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": schema}}}

    def ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": schema}}}

    error_schema = ref(s.ErrorOut, "serialization")

    def errors(*codes: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for code in (*codes, 500):
            resp = ok(_ERROR_TEXT[code], error_schema)
            if code == 503:
                resp["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                                   "description": "Seconds to wait"}}
            out[str(code)] = resp
        return out

    job_id = {"name": "jobId", "in": "path", "required": True,
              "schema": {"type": "string", "format": "uuid"}}
    statuses = list(get_args(s.StatusName))
    list_params = [
        {"name": "queue", "in": "query", "schema": {"type": "string", "maxLength": 64}},
        {"name": "status", "in": "query", "schema": {"type": "string", "enum": statuses}},
        {"name": "jobType", "in": "query", "schema": {"type": "string", "maxLength": 128}},
        {"name": "page", "in": "query",
         "schema": {"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 1}},
        {"name": "pageSize", "in": "query",
         "schema": {"type": "integer", "minimum": 1, "maximum": settings.max_page_size,
                    "default": 50}},
        {"name": "cursor", "in": "query", "description": "nextCursor of the previous page",
         "schema": {"type": "string", "format": "uuid"}},
    ]
    health = ref(s.HealthOut, "serialization")
    queue_name = {"name": "name", "in": "path", "required": True,
                  "schema": {"type": "string", "pattern": ci.QUEUE_PATTERN}}
    controls = ref(s.QueueControlsOut, "serialization")
    rate_out = ref(ss.QueueRateLimitOut, "serialization")
    schedule_out = ref(ss.ScheduleOut, "serialization")
    schedule_id = {"name": "scheduleId", "in": "path", "required": True,
                   "schema": {"type": "string", "format": "uuid"}}
    bulk_out = ref(s.DlqBulkOut, "serialization")
    when = {"type": "string", "format": "date-time"}
    dlq_params = [
        {"name": "queue", "in": "query", "schema": {"type": "string", "pattern": ci.QUEUE_PATTERN}},
        {"name": "jobType", "in": "query",
         "schema": {"type": "string", "pattern": ci.JOB_TYPE_PATTERN}},
        {"name": "errorType", "in": "query", "schema": {"type": "string", "maxLength": 255}},
        {"name": "from", "in": "query", "description": "dead-lettered at or after", "schema": when},
        {"name": "to", "in": "query", "description": "dead-lettered before", "schema": when},
    ]
    dlq_cursor = {"name": "cursor", "in": "query", "description": "nextCursor of the previous page",
                  "schema": {"type": "string", "format": "uuid"}}
    dlq_page_size = {"name": "pageSize", "in": "query",
                     "schema": {"type": "integer", "minimum": 1,
                                "maximum": settings.max_page_size, "default": 50}}
    job_type = {"name": "jobType", "in": "path", "required": True,
                "schema": {"type": "string", "pattern": ci.JOB_TYPE_PATTERN}}
    policy_out = ref(rp.RetryPolicyOut, "serialization")
    # Links let stateful testers (and readers) follow a submitted job to what can be done to it.
    links = {op: {"operationId": op, "parameters": {"jobId": "$response.body#/jobId"}}
             for op in ("getJob", "cancelJob", "retryJob")}
    created = ok("Stored and dispatched", ref(s.SubmittedOut, "serialization"))
    created["links"] = {"GetJob": links["getJob"], "CancelJob": links["cancelJob"],
                        "RetryJob": links["retryJob"]}
    paths: dict[str, Any] = {
        "/api/v1/jobs": {
            "post": {
                "operationId": "submitJob", "summary": "Submit a job",
                "requestBody": body(ref(ci.SubmitJobIn, "validation")),
                "responses": {
                    "201": created,
                    "200": ok("Idempotency key already used: the existing job, duplicate=true",
                              ref(s.SubmittedOut, "serialization")),
                    **errors(400, 413, 422, 503)},
            },
            "get": {
                "operationId": "listJobs", "summary": "List jobs, newest first",
                "parameters": list_params,
                "responses": {"200": ok("A page of jobs", ref(s.JobListOut, "serialization")),
                              **errors(422, 503)},
            },
        },
        "/api/v1/jobs/bulk": {
            "post": {
                "operationId": "submitJobs", "summary": "Submit many jobs, all or nothing",
                "requestBody": body(ref(s.BulkSubmitIn, "validation")),
                "responses": {
                    "201": ok("All stored", ref(s.BulkSubmittedOut, "serialization")),
                    **errors(400, 413, 422, 503)},
            },
        },
        "/api/v1/jobs/{jobId}": {
            "get": {
                "operationId": "getJob", "summary": "A job with its attempt history",
                "parameters": [job_id],
                "responses": {"200": ok("The job", ref(s.JobOut, "serialization")),
                              **errors(404, 503)},
            },
            "delete": {
                "operationId": "cancelJob",
                "summary": "Cancel a job; a running one is asked to stop (cooperative)",
                "parameters": [job_id],
                "responses": {"200": ok("Cancelled", ref(s.TransitionOut, "serialization")),
                              "202": ok("Running: cancel requested, handler signalled",
                                        ref(s.CancelRequestedOut, "serialization")),
                              **errors(404, 409, 503)},
            },
        },
        "/api/v1/jobs/{jobId}/retry": {
            "post": {
                "operationId": "retryJob", "summary": "Send a failed job back to pending",
                "parameters": [job_id],
                "responses": {"200": ok("Pending again", ref(s.TransitionOut, "serialization")),
                              **errors(404, 409, 503)},
            },
        },
        "/api/v1/jobs/{jobId}/graph": {
            "get": {
                "operationId": "getJobGraph",
                "summary": "The dependency DAG around a job: its ancestors and descendants",
                "parameters": [job_id],
                "responses": {"200": ok("Nodes and edges (from = dependency, to = dependent)",
                                        ref(b.GraphOut, "serialization")),
                              **errors(404, 503)},
            },
        },
        "/api/v1/job-batches": {
            "post": {
                "operationId": "createBatch",
                "summary": "Submit jobs as one batch, all or nothing, with an optional onComplete",
                "requestBody": body(ref(b.BatchIn, "validation")),
                "responses": {"201": ok("Stored", ref(b.BatchCreatedOut, "serialization")),
                              **errors(400, 413, 422, 503)},
            },
        },
        "/api/v1/job-batches/{batchId}": {
            "get": {
                "operationId": "getBatch", "summary": "Progress counts of a batch",
                "parameters": [{"name": "batchId", "in": "path", "required": True,
                                "schema": {"type": "string", "format": "uuid"}}],
                "responses": {"200": ok("The batch", ref(b.BatchOut, "serialization")),
                              **errors(404, 503)},
            },
        },
        "/api/v1/queues": {
            "get": {
                "operationId": "listQueues", "summary": "Per-queue counts",
                "responses": {"200": ok("Queues", ref(s.QueuesOut, "serialization")),
                              **errors(503)},
            },
        },
        "/api/v1/queues/{name}/pause": {
            "post": {
                "operationId": "pauseQueue",
                "summary": "Stop claims from a queue (running jobs are not touched)",
                "parameters": [queue_name],
                "responses": {"200": ok("Paused", controls), **errors(422, 503)},
            },
        },
        "/api/v1/queues/{name}/resume": {
            "post": {
                "operationId": "resumeQueue", "summary": "Allow claims again; wakes idle workers",
                "parameters": [queue_name],
                "responses": {"200": ok("Resumed", controls), **errors(422, 503)},
            },
        },
        "/api/v1/queues/{name}/concurrency": {
            "put": {
                "operationId": "setQueueConcurrency",
                "summary": "Cap the queue's jobs in flight across all workers (null = no cap)",
                "parameters": [queue_name],
                "requestBody": body(ref(s.ConcurrencyIn, "validation")),
                "responses": {"200": ok("Cap set", controls), **errors(400, 413, 422, 503)},
            },
        },
        "/api/v1/queues/{name}/rate-limit": {
            "put": {
                "operationId": "setQueueRateLimit",
                "summary": "Allow at most `limit` job starts per `windowMs`, across all workers",
                "parameters": [queue_name],
                "requestBody": body(ref(ss.RateLimitIn, "validation")),
                "responses": {"200": ok("Rate limit set", rate_out), **errors(400, 413, 422, 503)},
            },
            "delete": {
                "operationId": "clearQueueRateLimit", "summary": "Remove the queue's rate limit",
                "parameters": [queue_name],
                "responses": {"200": ok("Rate limit removed", rate_out), **errors(422, 503)},
            },
        },
        "/api/v1/scheduled-jobs": {
            "post": {
                "operationId": "createSchedule", "summary": "Create a cron schedule",
                "requestBody": body(ref(si.ScheduleIn, "validation")),
                "responses": {"201": ok("Created; nextRuns lists the next 5 fire times",
                                        schedule_out), **errors(400, 413, 422, 503)},
            },
            "get": {
                "operationId": "listSchedules", "summary": "Every cron schedule",
                "responses": {"200": ok("Schedules", ref(ss.ScheduleListOut, "serialization")),
                              **errors(503)},
            },
        },
        "/api/v1/scheduled-jobs/{scheduleId}": {
            "get": {
                "operationId": "getSchedule", "summary": "One cron schedule",
                "parameters": [schedule_id],
                "responses": {"200": ok("The schedule", schedule_out), **errors(404, 503)},
            },
            "patch": {
                "operationId": "updateSchedule",
                "summary": "Change some fields; a new expression starts from the next fire time",
                "parameters": [schedule_id],
                "requestBody": body(ref(si.SchedulePatchIn, "validation")),
                "responses": {"200": ok("Changed", schedule_out),
                              **errors(400, 404, 413, 422, 503)},
            },
            "delete": {
                "operationId": "deleteSchedule",
                "summary": "Delete a schedule (jobs it submitted are kept)",
                "parameters": [schedule_id],
                "responses": {"204": {"description": "Deleted"}, **errors(404, 503)},
            },
        },
        "/api/v1/admin/dlq": {
            "get": {
                "operationId": "listDeadLetters", "summary": "Dead-lettered jobs, newest first",
                "parameters": [*dlq_params, dlq_cursor, dlq_page_size],
                "responses": {"200": ok("A page", ref(s.DlqListOut, "serialization")),
                              **errors(422, 503)},
            },
        },
        "/api/v1/admin/dlq.csv": {
            "get": {
                "operationId": "exportDeadLetters",
                "summary": "Every matching dead-lettered job as CSV (streamed)",
                "parameters": dlq_params,
                "responses": {"200": {"description": "CSV with a header row",
                                      "content": {"text/csv": {"schema": {"type": "string"}}}},
                              **errors(422, 503)},
            },
        },
        "/api/v1/admin/dlq/retry": {
            "post": {
                "operationId": "retryDeadLetters",
                "summary": "Retry dead-lettered jobs by ids or filter (one set-based update)",
                "requestBody": body(ref(s.DlqSelectIn, "validation")),
                "responses": {"200": ok("Back to pending", bulk_out),
                              **errors(400, 413, 422, 503)},
            },
        },
        "/api/v1/admin/dlq/delete": {
            "post": {
                "operationId": "deleteDeadLetters",
                "summary": "Delete dead-lettered jobs by ids or filter, with their history",
                "requestBody": body(ref(s.DlqSelectIn, "validation")),
                "responses": {"200": ok("Deleted", bulk_out), **errors(400, 413, 422, 503)},
            },
        },
        "/api/v1/admin/jobs/{jobId}/retry-from-dlq": {
            "post": {
                "operationId": "retryFromDlq", "summary": "Retry one dead-lettered job",
                "parameters": [job_id],
                "responses": {"200": ok("Pending again", ref(s.TransitionOut, "serialization")),
                              **errors(404, 409, 503)},
            },
        },
        "/api/v1/retry-policies": {
            "get": {
                "operationId": "listRetryPolicies", "summary": "Stored per-job-type policies",
                "responses": {"200": ok("Policies", ref(rp.RetryPolicyListOut, "serialization")),
                              **errors(503)},
            },
        },
        "/api/v1/retry-policies/{jobType}": {
            "get": {
                "operationId": "getRetryPolicy", "summary": "A job type's stored retry policy",
                "parameters": [job_type],
                "responses": {"200": ok("The policy", policy_out), **errors(404, 422, 503)},
            },
            "put": {
                "operationId": "putRetryPolicy",
                "summary": "Create or replace a job type's retry policy",
                "parameters": [job_type],
                "requestBody": body(ref(rp.RetryPolicyIn, "validation")),
                "responses": {"200": ok("Stored", policy_out), **errors(400, 413, 422, 503)},
            },
            "delete": {
                "operationId": "deleteRetryPolicy",
                "summary": "Remove it (handler and global settings apply again)",
                "parameters": [job_type],
                "responses": {"204": {"description": "Deleted"}, **errors(404, 422, 503)},
            },
        },
        **event_paths(ok, errors),
        "/healthz": {
            "get": {"operationId": "healthz", "summary": "Liveness",
                    "responses": {"200": ok("Alive", health)}},
        },
        "/readyz": {
            "get": {"operationId": "readyz", "summary": "Readiness (Postgres and Redis reachable)",
                    "responses": {"200": ok("Ready", health),
                                  "503": {**ok("Not ready; names what is down", health),
                                          "headers": {"Retry-After": {
                                              "schema": {"type": "integer"}}}}}},
        },
        "/api/v1/openapi.json": {
            "get": {"operationId": "openapi", "summary": "This document",
                    "responses": {"200": ok("OpenAPI 3.1", {"type": "object"})}},
        },
    }
    worker_routes.document(paths, components)
    metrics.document(paths, ok, errors)
    return add_security({
        "openapi": "3.1.0",
        "info": {"title": "Jobline", "version": "1", "description":
                 "Durable background jobs: PostgreSQL is the truth, Redis dispatches."},
        "paths": paths,
        "components": {"schemas": components},
    }, error_schema)


def event_paths(ok: Any, errors: Any) -> dict[str, Any]:
    """``/api/v1/audit`` and ``/api/v1/events/lag`` (docs/events.md has the envelope)."""
    from jobline.shared.events.outbox import EVENT_TYPES

    def q(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {"name": name, "in": "query", "required": False, "schema": schema,
                "description": description}

    time = {"type": "string", "description": "epoch ms or ISO-8601 with zone"}
    envelope = {"type": "object", "description": "event envelope v1 (docs/events.md)"}
    return {
        "/api/v1/audit": {"get": {
            "operationId": "listAuditEvents", "summary": "Audit log, newest first",
            "parameters": [
                q("jobId", {"type": "string", "format": "uuid"}, "events of one job"),
                q("type", {"type": "string", "enum": list(EVENT_TYPES)}, "event type"),
                q("from", time, "event time >= from"), q("to", time, "event time < to"),
                q("limit", {"type": "integer", "minimum": 1}, "page size (default 100)"),
                q("cursor", {"type": "string"}, "nextCursor of the previous page")],
            "responses": {"200": ok("A page", {"type": "object", "properties": {
                "events": {"type": "array", "items": envelope},
                "nextCursor": {"type": ["string", "null"]}}}), **errors(422, 503)}}},
        "/api/v1/events/lag": {"get": {
            "operationId": "eventsLag",
            "summary": "Outbox backlog and consumer lag per group",
            "responses": {"200": ok("Lag", {"type": "object", "properties": {
                "backend": {"type": "string", "enum": ["redis", "kafka"]},
                "outbox": {"type": "object"},
                "groups": {"type": "array", "items": {"type": "object"}}}}),
                **errors(503)}}},
    }


def routes(settings: Settings) -> list[Route]:
    # Built once per app: the document only depends on settings.
    doc = JSONResponse(build_openapi(settings)).body

    @endpoint
    async def openapi(request: Request) -> Response:
        return Response(doc, media_type="application/json")

    return [Route("/api/v1/openapi.json", openapi, methods=["GET"], name="openapi")]
