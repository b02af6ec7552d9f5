"""``/api/v1/admin``: the dead-letter queue — list, CSV export, retry and delete (one or bulk).

Every endpoint is a thin shell over :mod:`jobline.shared.retry.dlq`: validate, one core operation,
serialise. Bulk operations are set-based in the core, so their cost does not grow with round
trips per job.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from jobline.api.body import bulk_body_limit, parse_json, read_body
from jobline.api.context import ctx, read, read_deps
from jobline.api.docs import Op, Resp, cursor, documented, page_size, query
from jobline.api.errors import JSONResponse, by_method, check_query_params, endpoint
from jobline.api.jobs import job_id_param, validate
from jobline.api.schemas import (
    DlqBulkOut,
    DlqListOut,
    DlqQuery,
    DlqSelectIn,
    TransitionOut,
    iso_ms,
    job_json,
    transition_json,
)
from jobline.shared.core.inputs import JOB_TYPE_PATTERN, QUEUE_PATTERN
from jobline.shared.core.models import Job
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import ValidationFailed
from jobline.shared.retry import dlq
from jobline.shared.security.masking import mask, mask_text

#: CSV columns, in order. ``deadLetteredAt`` is when the last attempt ended.
CSV_COLUMNS = ["id", "queue", "jobType", "errorType", "error", "attempts", "maxAttempts",
               "priority", "createdAt", "deadLetteredAt", "payload"]


_WHEN = {"type": "string", "format": "date-time"}
#: The filter query parameters of the listing and the CSV export.
DLQ_FILTER = (
    query("queue", {"type": "string", "pattern": QUEUE_PATTERN}),
    query("jobType", {"type": "string", "pattern": JOB_TYPE_PATTERN}),
    query("errorType", {"type": "string", "maxLength": 255}),
    query("from", _WHEN, "dead-lettered at or after"),
    query("to", _WHEN, "dead-lettered before"),
)


def _query(request: Request) -> DlqQuery:
    check_query_params(request.query_params.keys(), DlqQuery)
    q = validate(DlqQuery, dict(request.query_params))
    if q.page_size > ctx(request).settings.max_page_size:
        raise ValidationFailed("pageSize", f"must be at most {ctx(request).settings.max_page_size}")
    return q


@documented(Op(
    "listDeadLetters", "Dead-lettered jobs, newest first", params=(*DLQ_FILTER, cursor(), page_size),
    responses={200: Resp("A page", DlqListOut)}, errors=(400, 422, 503)))
@endpoint
async def list_dlq(request: Request) -> Response:
    q = _query(request)
    c = ctx(request)
    f = q.to_filter()
    page = await read(request, lambda deps: dlq.list_dead_letters(
        deps, f, cursor=q.cursor, limit=q.page_size))
    return JSONResponse({"jobs": [job_json(j, history=False, mask_keys=c.settings.mask_keys)
                                  for j in page.jobs],
                         "pageSize": q.page_size, "nextCursor": page.next_cursor})


def _cell(text: str | None) -> str:
    # Error text comes from handlers (and through them from outside input); a spreadsheet would
    # run a cell starting with = + - @ as a formula, so such cells are quoted (OWASP advice).
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text or ""


def _csv_row(j: Job, mask_keys: Sequence[str]) -> list[str]:
    return [str(j.id), j.queue, j.job_type, _cell(j.error_type),
            _cell(mask_text(j.error, mask_keys)), str(j.attempts),
            str(j.max_attempts), str(j.priority), iso_ms(j.created_ms) or "",
            iso_ms(j.completed_ms) or "", orjson.dumps(mask(j.payload, mask_keys)).decode()]


@documented(Op(
    "exportDeadLetters", "Every matching dead-lettered job as CSV (streamed)", params=DLQ_FILTER,
    responses={200: Resp("CSV with a header row", {"type": "string"}, media_type="text/csv")},
    errors=(400, 422, 503)))
@endpoint
async def export_dlq_csv(request: Request) -> Response:
    q = _query(request)
    if q.cursor is not None:
        raise ValidationFailed("cursor", "the export always covers the whole selection")
    f = q.to_filter()
    # Validate (and fail with a proper 4xx) before the 200 status line is sent.
    f.args()
    deps = read_deps(request)

    async def rows(deps: Deps) -> AsyncIterator[str]:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow(CSV_COLUMNS)
        async for page in dlq.iter_dead_letters(deps, f):
            for j in page:
                w.writerow(_csv_row(j, deps.settings.mask_keys))
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
        yield buf.getvalue()

    return StreamingResponse(rows(deps), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="dlq.csv"'})


@documented(Op("retryFromDlq", "Retry one dead-lettered job",
                responses={200: Resp("Pending again", TransitionOut)}, errors=(404, 409, 503)))
@endpoint
async def retry_from_dlq(request: Request) -> Response:
    job_id = job_id_param(request)
    status = await dlq.retry_from_dlq(ctx(request).require_deps(), job_id)
    return JSONResponse(transition_json(job_id, status))


async def _selection(request: Request) -> dlq.DlqFilter:
    c = ctx(request)
    return validate(DlqSelectIn, parse_json(
        await read_body(request, bulk_body_limit(c.settings)))).to_filter()


@documented(Op(
    "retryDeadLetters", "Retry dead-lettered jobs by ids or filter (one set-based update)",
    body=DlqSelectIn, responses={200: Resp("Back to pending", DlqBulkOut)},
    errors=(400, 413, 422, 503)))
@endpoint
async def bulk_retry(request: Request) -> Response:
    ids = await dlq.retry_dead_letters(ctx(request).require_deps(), await _selection(request))
    return JSONResponse({"count": len(ids), "jobIds": [str(i) for i in ids]})


@documented(Op(
    "deleteDeadLetters", "Delete dead-lettered jobs by ids or filter, with their history",
    body=DlqSelectIn, responses={200: Resp("Deleted", DlqBulkOut)}, errors=(400, 413, 422, 503)))
@endpoint
async def bulk_delete(request: Request) -> Response:
    ids = await dlq.delete_dead_letters(ctx(request).require_deps(), await _selection(request))
    return JSONResponse({"count": len(ids), "jobIds": [str(i) for i in ids]})


routes = [
    by_method("/api/v1/admin/dlq", {"GET": list_dlq}, name="dlq"),
    by_method("/api/v1/admin/dlq.csv", {"GET": export_dlq_csv}, name="dlq_csv"),
    by_method("/api/v1/admin/dlq/retry", {"POST": bulk_retry}, name="dlq_retry"),
    by_method("/api/v1/admin/dlq/delete", {"POST": bulk_delete}, name="dlq_delete"),
    by_method("/api/v1/admin/jobs/{jobId:uuid}/retry-from-dlq", {"POST": retry_from_dlq},
              name="job_retry_from_dlq"),
]
