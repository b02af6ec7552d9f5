"""Lambda ``complete``: ``POST /api/v1/worker/complete`` (a batch of ok/failed outcomes, each
fenced by its lease token; failures retry with backoff or dead-letter) and
``POST /api/v1/worker/release`` (warm-shutdown give-back)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobline.functions._runtime import http_handler, routes_app

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from jobline.shared.platform.connections import Deps


def _app(deps: Deps) -> Starlette:
    from jobline.api import worker_routes

    names = ("worker_complete", "worker_release")
    return routes_app([r for r in worker_routes.routes if r.name in names], deps)


handler = http_handler("complete", _app)
