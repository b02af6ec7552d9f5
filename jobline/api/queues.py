"""``/api/v1/queues``: per-queue counts by status (Postgres) and live dispatch depth (Redis)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobline.api.context import ctx
from jobline.api.errors import JSONResponse, endpoint
from jobline.shared import jobs as core


@endpoint
async def list_queues(request: Request) -> Response:
    return JSONResponse({"queues": await core.queue_stats(ctx(request).require_deps())})


routes = [Route("/api/v1/queues", list_queues, methods=["GET"], name="list_queues")]
