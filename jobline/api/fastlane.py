"""A direct path for ``POST /api/v1/jobs``, the one route clients hit at 10k requests/s.

Why hand-rolled: py-spy of an API process under a submit flood showed Starlette's per-request
layers (exception middleware, router scan, per-route exception wrapper) at ~10% of the process's
CPU. This middleware sits *inside* :class:`~jobline.api.auth.AuthMiddleware` (so the request is
already authenticated and authorised) and hands that one route to the same endpoint function
the router would call. The endpoint (``jobline.api.errors.endpoint``) maps every exception to
the error shape itself, so nothing the skipped layers did is lost; every other request goes
through the router unchanged.
"""

from __future__ import annotations

from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from jobline.api import jobs

PATH = "/api/v1/jobs"


class SubmitFastLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["method"] == "POST"
                and get_route_path(scope) == PATH):
            response = await jobs.submit_job(Request(scope, receive, send))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
