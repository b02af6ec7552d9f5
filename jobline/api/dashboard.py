"""Serves the built React dashboard (``frontend/`` → ``jobline/api/dashboard_dist/``) at ``/``.

Client-side routes (``/jobs/<id>``, ``/queues``...) fall back to ``index.html``; API paths
(``/api``, ``/graphql``, ``/metrics``, the probes) are never served from here, so an unknown API
path or a wrong method still gets the API's own JSON 404 or 405. The assets ship inside the Python package, so an
installed wheel or a container serves the dashboard without Node. The page itself holds no data
(it asks for an API key and calls ``/graphql``), so it is public like ``/healthz``.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send

DIST = Path(__file__).resolve().parent / "dashboard_dist"
#: Not the dashboard's: an unknown path here is an API 404, not a client-side route.
API_PREFIXES = ("api/", "graphql", "metrics", "healthz", "readyz")
#: Vite names assets by content hash, so they can be cached forever; index.html never is.
IMMUTABLE = "public, max-age=31536000, immutable"


def is_api(path: str) -> bool:
    p = path.lstrip("/")
    return p == "api" or p.startswith(API_PREFIXES)


def _not_found(detail: str) -> Response:
    return JSONResponse({"error": {"code": "not_found", "message": detail}}, status_code=404)


async def serve(request: Request) -> Response:
    path = request.url.path.lstrip("/")
    index = DIST / "index.html"
    if not index.is_file():
        return _not_found("the dashboard is not built: `make run` builds it "
                          "(or `cd frontend && npm ci && npm run build`)")
    if path:
        candidate = (DIST / path).resolve()
        # Never serve outside the build directory (``..`` or symlinks).
        if candidate.is_file() and candidate.is_relative_to(DIST):
            headers = {"Cache-Control": IMMUTABLE} if path.startswith("assets/") else None
            return FileResponse(candidate, headers=headers)
        if path.startswith("assets/"):
            return _not_found(f"no asset {path}")
    return FileResponse(index, headers={"Cache-Control": "no-cache"})


def install(app: Starlette) -> None:
    """Serve the dashboard where no route matched. As the router's fallback (not a catch-all
    route) it never shadows an API route: a wrong method on an API path stays the router's 405,
    an unknown API path its JSON 404, and the route table (and OpenAPI) stays the API's."""
    not_found = app.router.default

    async def fallback(scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["method"] in ("GET", "HEAD")
                and not is_api(scope["path"])):
            response = await serve(Request(scope, receive))
            await response(scope, receive, send)
            return
        await not_found(scope, receive, send)

    app.router.default = fallback
