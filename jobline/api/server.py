"""Running the API under uvicorn (uvloop event loop, httptools parser when installed)."""

from __future__ import annotations

import importlib.util

from jobline.shared.platform.config import Settings, load


def serve(settings: Settings | None = None, *, log_level: str = "info",
          access_log: bool = False) -> None:
    """Serve the REST API on ``settings.api_host:api_port`` until interrupted (blocking).

    The access log is off by default: at tens of thousands of requests a second it costs more
    than the requests themselves; turn it on for debugging.
    """
    import uvicorn

    from jobline.api.app import create_app

    settings = settings or load()
    http = "httptools" if importlib.util.find_spec("httptools") is not None else "h11"
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port,
                loop="uvloop", http=http, log_level=log_level, access_log=access_log,
                lifespan="on")
