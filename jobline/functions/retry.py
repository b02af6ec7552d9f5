"""Lambda ``retry``: ``POST /api/v1/jobs/{jobId}/retry`` — send a failed or dead-lettered job
back to pending with fresh attempts (``jobline.shared.core.jobs.retry_now``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobline.functions._runtime import http_handler, routes_app

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from jobline.shared.platform.connections import Deps


def _app(deps: Deps) -> Starlette:
    from jobline.api import jobs

    return routes_app([r for r in jobs.routes if r.name == "job_retry"], deps)


handler = http_handler("retry", _app)
