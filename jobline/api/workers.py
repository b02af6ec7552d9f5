"""``/api/v1/workers`` and ``/api/v1/worker-groups``: the live workers, their logs, worker
groups with desired and actual counts, and the management actions (admin): scale, autoscaling,
restart / quiet / resume / stop. Each action is written to the audit log with the key that made
it (:mod:`jobline.shared.fleet.actions`); the remote-worker supervisor's group read is
``POST /api/v1/worker/group`` (developer role, like the rest of the remote-worker protocol).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobline.api.body import parse_json, read_body
from jobline.api.context import ctx, read
from jobline.api.docs import OBJECT, Op, Resp, documented, query
from jobline.api.errors import JSONResponse, by_method, endpoint
from jobline.api.jobs import validate
from jobline.api.schemas import _In
from jobline.shared.fleet import actions, control, groups
from jobline.shared.platform.errors import NotFound, ValidationFailed
from jobline.shared.security.masking import mask_text

_SMALL_BODY = 8192
MAX_LOG_LINES = control.LOG_LINES

WORKER = {"type": "object", "properties": {
    "id": {"type": "string"}, "group": {"type": "string"}, "host": {"type": ["string", "null"]},
    "pid": {"type": ["integer", "null"]}, "queues": {"type": "array", "items": {"type": "string"}},
    "concurrency": {"type": "integer"}, "inFlight": {"type": "integer"},
    "state": {"type": "string", "enum": ["starting", "idle", "busy", "draining", "stopped"]},
    "quiet": {"type": "boolean"}, "command": {"type": ["string", "null"]},
    "currentJobs": {"type": "array", "items": {"type": "string"}},
    "uptimeMs": {"type": ["integer", "null"]}, "lastSeenMs": {"type": ["integer", "null"]},
    "cpuPercent": {"type": ["number", "null"]}, "rssBytes": {"type": ["integer", "null"]},
    "processed": {"type": "integer"}, "failed": {"type": "integer"},
    "version": {"type": ["string", "null"]}}}
GROUP = {"type": "object", "properties": {
    "name": {"type": "string"}, "desired": {"type": ["integer", "null"]},
    "actual": {"type": "integer"}, "draining": {"type": "integer"}, "busy": {"type": "integer"},
    "capacity": {"type": "integer"}, "utilization": {"type": ["number", "null"]},
    "autoscale": {"type": ["object", "null"]}, "scaledAt": {"type": ["string", "null"]},
    "scaledReason": {"type": ["string", "null"]}, "crashesLastHour": {"type": "integer"}}}


class AutoscaleIn(_In):
    min: Annotated[int, Field(ge=0, le=groups.MAX_DESIRED)] = 0
    max: Annotated[int, Field(ge=0, le=groups.MAX_DESIRED)]
    target_backlog_per_worker: Annotated[int | None, Field(ge=1)] = None
    latency_sla_ms: Annotated[int | None, Field(ge=1, le=86_400_000)] = None
    up_cooldown_s: Annotated[float | None, Field(ge=0, le=86_400)] = None
    down_cooldown_s: Annotated[float | None, Field(ge=0, le=86_400)] = None
    hysteresis: Annotated[float | None, Field(ge=0, le=0.9)] = None
    queues: Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]] | None,
                      Field(max_length=100)] = None


class GroupIn(_In):
    """Exactly one of: ``desired`` (a count), ``step`` (+1 / -1 ...), ``autoscale`` (settings,
    or null to turn autoscaling off)."""

    desired: Annotated[int | None, Field(ge=0, le=groups.MAX_DESIRED)] = None
    step: Annotated[int | None, Field(ge=-groups.MAX_DESIRED, le=groups.MAX_DESIRED)] = None
    autoscale: AutoscaleIn | None = None


class SupervisorGroupIn(_In):
    group: Annotated[str, Field(min_length=1, max_length=64)]
    initial: Annotated[int | None, Field(ge=0, le=groups.MAX_DESIRED)] = None
    step: Annotated[int | None, Field(ge=-1, le=-1)] = None
    crashed: dict[str, Any] | None = None


def _actor(request: Request) -> actions.Actor:
    p = request.scope.get("state", {}).get("principal")
    if p is None:
        return actions.Actor(None, "anonymous")
    return actions.Actor(str(p.key_id), p.name)


@documented(Op("listWorkers", "Live workers: group, state, in-flight jobs, CPU and memory",
                responses={200: Resp("Workers", {"type": "object", "properties": {
                    "workers": {"type": "array", "items": WORKER}}})}, errors=(503,)))
@endpoint
async def list_workers(request: Request) -> Response:
    return JSONResponse({"workers": await read(request, actions.workers)})


@documented(Op("workerLogs", "The worker's last log lines (secrets masked)",
                params=(query("lines", {"type": "integer", "minimum": 1,
                                        "maximum": MAX_LOG_LINES}, "how many (default 100)"),),
                responses={200: Resp("Log lines, oldest first", {"type": "object", "properties": {
                    "workerId": {"type": "string"},
                    "lines": {"type": "array", "items": {"type": "string"}}}})},
                errors=(400, 404, 422, 503)))
@endpoint
async def worker_logs(request: Request) -> Response:
    deps = ctx(request).require_deps()
    raw = request.query_params.get("lines", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LOG_LINES:
        raise ValidationFailed("lines", f"an integer 1-{MAX_LOG_LINES}")
    wid = request.path_params["id"]
    lines = await control.read_logs(deps, wid, int(raw))
    if not lines and wid not in {w["id"] for w in await actions.workers(deps)}:
        raise NotFound(f"no logs for worker {wid!r}")
    keys = deps.settings.mask_keys
    return JSONResponse({"workerId": wid, "lines": [mask_text(x, keys) for x in lines]})


def _command(action: str) -> Any:
    @documented(Op(f"{action}Worker", {
        "restart": "Warm restart: stop claiming, finish or release in-flight jobs, exit; the "
                   "supervisor starts a replacement",
        "quiet": "Stop claiming new jobs (in-flight jobs finish)",
        "resume": "Claim again after quiet",
        "stop": "Warm stop; a supervised worker's group shrinks by one"}[action],
        responses={200: Resp("The worker, with the command pending", WORKER)},
        errors=(404, 422, 503)))
    @endpoint
    async def handler(request: Request) -> Response:
        w = await actions.command(ctx(request).require_deps(), request.path_params["id"], action,
                                  _actor(request))
        return JSONResponse(w)

    handler.__name__ = f"{action}_worker"
    return handler


@documented(Op("listWorkerGroups", "Worker groups: desired and actual counts, autoscaling",
                responses={200: Resp("Groups", {"type": "object", "properties": {
                    "groups": {"type": "array", "items": GROUP}}})}, errors=(503,)))
@endpoint
async def list_groups(request: Request) -> Response:
    return JSONResponse({"groups": await actions.group_views(ctx(request).require_deps())})


@documented(Op("setWorkerGroup",
                "Scale a group (`desired`, or `step` +1/-1) or set its autoscaling "
                "(`autoscale`, null = off)", body=GroupIn,
                responses={200: Resp("The group", GROUP)}, errors=(400, 404, 413, 422, 503)))
@endpoint
async def put_group(request: Request) -> Response:
    deps = ctx(request).require_deps()
    name = groups.check_group_name(request.path_params["name"])
    raw = parse_json(await read_body(request, _SMALL_BODY))
    body = validate(GroupIn, raw)
    given = [k for k in ("desired", "step", "autoscale") if isinstance(raw, dict) and k in raw]
    if len(given) != 1:
        raise ValidationFailed("body", "give exactly one of desired, step, autoscale")
    if given == ["autoscale"]:
        settings = (body.autoscale.model_dump(by_alias=True, exclude_none=True)
                    if body.autoscale is not None else None)
        return JSONResponse(await actions.configure_autoscale(deps, name, settings,
                                                              _actor(request)))
    if given == ["desired"] and body.desired is None:
        raise ValidationFailed("desired", "a count")
    if given == ["step"] and not body.step:
        raise ValidationFailed("step", "a non-zero step")
    return JSONResponse(await actions.scale(deps, name, _actor(request), desired=body.desired,
                                            step=body.step or 0))


@documented(Op("workerGroupHistory",
                "A group's worker count, utilization and crashes per minute, and its last crashes",
                params=(query("minutes", {"type": "integer", "minimum": 1, "maximum": 10080},
                              "how far back (default 60)"),),
                responses={200: Resp("History", {"type": "object", "properties": {
                    "group": {"type": "string"}, "history": {"type": "array", "items": OBJECT},
                    "crashes": {"type": "array", "items": OBJECT}}})}, errors=(400, 422, 503)))
@endpoint
async def group_history(request: Request) -> Response:
    deps = ctx(request).require_deps()
    name = groups.check_group_name(request.path_params["name"])
    raw = request.query_params.get("minutes", "60")
    if not raw.isdigit() or not 1 <= int(raw) <= 10080:
        raise ValidationFailed("minutes", "an integer 1-10080")
    since = deps.clock.now_ms() - int(raw) * 60_000
    return JSONResponse({"group": name, "history": await groups.history(deps, name, since),
                         "crashes": await groups.recent_crashes(deps, name)})


@documented(Op("workerSupervisorGroup",
                "A remote supervisor reads its group's desired count (creating it with "
                "`initial`), lowers it after a worker stopped on request (`step`: -1) or "
                "records a crash", body=SupervisorGroupIn,
                responses={200: Resp("The desired count", {"type": "object", "properties": {
                    "desired": {"type": "integer"}}})}, errors=(400, 413, 422, 503)))
@endpoint
async def supervisor_group(request: Request) -> Response:
    deps = ctx(request).require_deps()
    body = validate(SupervisorGroupIn, parse_json(await read_body(request, _SMALL_BODY)))
    name = groups.check_group_name(body.group)
    if body.crashed is not None:
        wid = str(body.crashed.get("workerId", ""))[:200]
        code = body.crashed.get("exitCode")
        await groups.record_crash(deps, wid, name, code if isinstance(code, int) else None,
                                  str(body.crashed.get("detail", ""))[:1000])
    if body.step:
        g = await groups.set_desired(deps, name, step=body.step, by="supervisor")
    else:
        g = await groups.ensure_group(deps, name, body.initial if body.initial is not None
                                      else 1, by="supervisor")
    return JSONResponse({"desired": g.desired})


routes = [
    Route("/api/v1/workers", list_workers, methods=["GET"], name="list_workers"),
    Route("/api/v1/workers/{id}/logs", worker_logs, methods=["GET"], name="worker_logs"),
    *[by_method(f"/api/v1/workers/{{id}}/{a}", {"POST": _command(a)}, name=f"worker_{a}")
      for a in control.COMMANDS],
    Route("/api/v1/worker-groups", list_groups, methods=["GET"], name="list_worker_groups"),
    by_method("/api/v1/worker-groups/{name}", {"PUT": put_group}, name="worker_group"),
    Route("/api/v1/worker-groups/{name}/history", group_history, methods=["GET"],
          name="worker_group_history"),
    by_method("/api/v1/worker/group", {"POST": supervisor_group}, name="worker_supervisor_group"),
]
