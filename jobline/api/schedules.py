"""``/api/v1/scheduled-jobs``: cron schedules (create, list, read, change, delete).

Thin shells over :mod:`jobline.shared.schedules.recurring`: validate, one core operation, serialise. The
schedulers' cron loop is woken by the core on every change, so a new schedule fires on time.
"""

from __future__ import annotations

import uuid

from starlette.requests import Request
from starlette.responses import Response

from jobline.api.body import parse_json, read_body, single_body_limit
from jobline.api.context import ctx
from jobline.api.docs import Op, Resp, documented
from jobline.api.errors import JSONResponse, by_method, endpoint
from jobline.api.jobs import validate
from jobline.api.schedule_schemas import ScheduleListOut, ScheduleOut, schedule_json
from jobline.shared.platform.errors import NotFound
from jobline.shared.schedules import recurring as core
from jobline.shared.schedules.inputs import ScheduleIn, SchedulePatchIn


def _id(request: Request) -> uuid.UUID:
    raw = request.path_params["scheduleId"]
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"schedule {raw} not found") from None


@documented(Op(
    "createSchedule", "Create a cron schedule", body=ScheduleIn,
    responses={201: Resp("Created; nextRuns lists the next 5 fire times", ScheduleOut)},
    errors=(400, 413, 422, 503)))
@endpoint
async def create(request: Request) -> Response:
    c = ctx(request)
    body = validate(ScheduleIn, parse_json(await read_body(request, single_body_limit(c.settings))))
    s = await core.create_schedule(c.require_deps(), body.to_spec())
    return JSONResponse(schedule_json(s, ctx(request).settings.mask_keys), status_code=201)


@documented(Op("listSchedules", "Every cron schedule",
                responses={200: Resp("Schedules", ScheduleListOut)}, errors=(503,)))
@endpoint
async def list_all(request: Request) -> Response:
    items = await core.list_schedules(ctx(request).require_deps())
    return JSONResponse({"scheduledJobs": [schedule_json(s, ctx(request).settings.mask_keys) for s in items]})


@documented(Op("getSchedule", "One cron schedule",
                responses={200: Resp("The schedule", ScheduleOut)}, errors=(404, 503)))
@endpoint
async def get_one(request: Request) -> Response:
    s = await core.get_schedule(ctx(request).require_deps(), _id(request))
    return JSONResponse(schedule_json(s, ctx(request).settings.mask_keys))


@documented(Op(
    "updateSchedule", "Change some fields; a new expression starts from the next fire time",
    body=SchedulePatchIn, responses={200: Resp("Changed", ScheduleOut)},
    errors=(400, 404, 413, 422, 503)))
@endpoint
async def patch(request: Request) -> Response:
    c = ctx(request)
    schedule_id = _id(request)
    body = validate(SchedulePatchIn,
                    parse_json(await read_body(request, single_body_limit(c.settings))))
    s = await core.update_schedule(c.require_deps(), schedule_id, body.changes())
    return JSONResponse(schedule_json(s, ctx(request).settings.mask_keys))


@documented(Op("deleteSchedule", "Delete a schedule (jobs it submitted are kept)",
                responses={204: Resp("Deleted")}, errors=(404, 503)))
@endpoint
async def delete(request: Request) -> Response:
    await core.delete_schedule(ctx(request).require_deps(), _id(request))
    return Response(status_code=204)


routes = [
    by_method("/api/v1/scheduled-jobs", {"POST": create, "GET": list_all}, name="schedules"),
    by_method("/api/v1/scheduled-jobs/{scheduleId}",
              {"GET": get_one, "PATCH": patch, "DELETE": delete}, name="schedule"),
]
