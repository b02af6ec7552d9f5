"""Lambda ``claim``: the lease side of the remote-worker protocol —
``POST /api/v1/worker/claim`` (lease jobs with fencing tokens), ``/heartbeat`` (extend leases,
answer lost ones) and ``/wait`` (long poll for work)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobline.functions._runtime import http_handler, routes_app

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from jobline.shared.platform.connections import Deps


def _app(deps: Deps) -> Starlette:
    from jobline.api import worker_routes

    names = ("worker_claim", "worker_heartbeat", "worker_wait")
    return routes_app([r for r in worker_routes.routes if r.name in names], deps)


handler = http_handler("claim", _app)
