"""``/api/v1/queues``: per-queue counts and controls; pause, resume, the in-flight cap and the
rate limit."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobline.api.body import parse_json, read_body
from jobline.api.context import ctx, read
from jobline.api.docs import Op, Resp, documented
from jobline.api.errors import JSONResponse, by_method, endpoint
from jobline.api.jobs import validate
from jobline.api.schedule_schemas import QueueRateLimitOut, RateLimitIn
from jobline.api.schemas import (
    ConcurrencyIn,
    PurgedOut,
    QueueControlsOut,
    QueuesOut,
    queue_controls_json,
)
from jobline.shared.core import jobs as core
from jobline.shared.dispatch import queue_controls as qcore
from jobline.shared.dispatch import rate_limits
from jobline.shared.dispatch.redis_dispatch import QueueControls

#: A concurrency body is a few bytes; anything large is not one.
_SMALL_BODY = 4096


@documented(Op("listQueues", "Per-queue counts", responses={200: Resp("Queues", QueuesOut)},
                errors=(503,)))
@endpoint
async def list_queues(request: Request) -> Response:
    return JSONResponse({"queues": await read(request, core.queue_stats)})


def _name(request: Request) -> str:
    name: str = request.path_params["name"]
    qcore.check_queue_name(name)
    return name


@documented(Op("pauseQueue", "Stop claims from a queue (running jobs are not touched)",
                responses={200: Resp("Paused", QueueControlsOut)}, errors=(422, 503)))
@endpoint
async def pause_queue(request: Request) -> Response:
    c = await qcore.pause_queue(ctx(request).require_deps(), _name(request))
    return JSONResponse(queue_controls_json(c))


@documented(Op("resumeQueue", "Allow claims again; wakes idle workers",
                responses={200: Resp("Resumed", QueueControlsOut)}, errors=(422, 503)))
@endpoint
async def resume_queue(request: Request) -> Response:
    c = await qcore.resume_queue(ctx(request).require_deps(), _name(request))
    return JSONResponse(queue_controls_json(c))


@documented(Op("purgeQueue",
                "Cancel every pending and scheduled job of the queue (admin); running jobs "
                "finish, waiting ones stay",
                responses={200: Resp("Purged", PurgedOut)}, errors=(422, 503)))
@endpoint
async def purge_queue(request: Request) -> Response:
    name = _name(request)
    n = await core.purge_queue(ctx(request).require_deps(), name)
    return JSONResponse({"queue": name, "cancelled": n})


@documented(Op(
    "setQueueConcurrency", "Cap the queue's jobs in flight across all workers (null = no cap)",
    body=ConcurrencyIn, responses={200: Resp("Cap set", QueueControlsOut)},
    errors=(400, 413, 422, 503)))
@endpoint
async def set_concurrency(request: Request) -> Response:
    name = _name(request)
    body = validate(ConcurrencyIn, parse_json(await read_body(request, _SMALL_BODY)))
    c = await qcore.set_queue_limits(ctx(request).require_deps(), name,
                                     max_in_flight=body.max_in_flight)
    return JSONResponse(queue_controls_json(c))


def _with_rate_limit(c: QueueControls) -> dict[str, object]:
    rate = (None if c.rate_limit is None
            else {"limit": c.rate_limit, "windowMs": c.rate_window_ms})
    return {**queue_controls_json(c), "rateLimit": rate}


@documented(Op(
    "setQueueRateLimit", "Allow at most `limit` job starts per `windowMs`, across all workers",
    body=RateLimitIn, responses={200: Resp("Rate limit set", QueueRateLimitOut)},
    errors=(400, 413, 422, 503)))
@endpoint
async def set_rate_limit(request: Request) -> Response:
    name = _name(request)
    body = validate(RateLimitIn, parse_json(await read_body(request, _SMALL_BODY)))
    c = await rate_limits.set_rate_limit(ctx(request).require_deps(), name, limit=body.limit,
                                         window_ms=body.window_ms)
    return JSONResponse(_with_rate_limit(c))


@documented(Op("clearQueueRateLimit", "Remove the queue's rate limit",
                responses={200: Resp("Rate limit removed", QueueRateLimitOut)},
                errors=(422, 503)))
@endpoint
async def clear_rate_limit(request: Request) -> Response:
    c = await rate_limits.clear_rate_limit(ctx(request).require_deps(), _name(request))
    return JSONResponse(_with_rate_limit(c))


routes = [
    Route("/api/v1/queues", list_queues, methods=["GET"], name="list_queues"),
    by_method("/api/v1/queues/{name}/pause", {"POST": pause_queue}, name="queue_pause"),
    by_method("/api/v1/queues/{name}/resume", {"POST": resume_queue}, name="queue_resume"),
    by_method("/api/v1/queues/{name}/purge", {"POST": purge_queue}, name="queue_purge"),
    by_method("/api/v1/queues/{name}/concurrency", {"PUT": set_concurrency},
              name="queue_concurrency"),
    by_method("/api/v1/queues/{name}/rate-limit",
              {"PUT": set_rate_limit, "DELETE": clear_rate_limit}, name="queue_rate_limit"),
]
