"""Lambda ``http``: the whole API (every REST route, OpenAPI, health) behind API Gateway's
catch-all route, via mangum. The per-operation functions take their own routes first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobline.functions._runtime import http_handler

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from jobline.shared.platform.connections import Deps


def _app(deps: Deps) -> Starlette:
    from jobline.api.app import create_app

    # Given deps, the app only borrows the container's connections.
    return create_app(deps.settings, deps=deps)


handler = http_handler("http", _app)
