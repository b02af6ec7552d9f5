"""Lambda ``submit``: ``POST /api/v1/jobs`` and ``POST /api/v1/jobs/bulk``.

The same endpoints as the REST API (validation, error shapes, group commit), served from a
Starlette app holding only these routes so the function's cold start stays small.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobline.functions._runtime import http_handler, routes_app

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from jobline.shared.platform.connections import Deps


def _app(deps: Deps) -> Starlette:
    from jobline.api import jobs

    return routes_app([r for r in jobs.routes if r.name in ("jobs", "jobs_bulk")], deps)


handler = http_handler("submit", _app)
