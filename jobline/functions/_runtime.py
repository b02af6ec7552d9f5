"""What one Lambda container keeps between invocations: an event loop and the connections.

Lambda reuses a container for many invocations, one at a time. Opening an asyncpg pool and a
Redis client costs several round trips, so they are opened on the first invocation and reused.
They are bound to the event loop they were created on, which is why the handlers do not use
``asyncio.run`` (it closes its loop after every call, killing the pool): the runtime keeps one
loop for the container's life and drives each invocation with ``run_until_complete``. Between
invocations the loop is simply not running (Lambda freezes the process), and background tasks
such as the group committer's flusher resume with the next invocation.

Heavy modules are imported on first use, not at import time, so a cold start pays only for what
its handler needs (``bench/coldstart.py`` measures it).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.routing import BaseRoute

    from jobline.shared.platform.config import Settings
    from jobline.shared.platform.connections import Deps

T = TypeVar("T")
LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def load_settings() -> Settings:
    """Settings from the environment, after loading SSM parameters under ``JOBLINE_SSM_PREFIX``
    (explicit environment variables win over SSM)."""
    from jobline.shared.platform.config import load

    prefix = os.environ.get("JOBLINE_SSM_PREFIX")
    if prefix:
        from jobline.shared.platform.ssm import apply_parameters

        apply_parameters(prefix)
    return load()


class Runtime:
    """The container's loop and dependencies, created lazily and reused."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deps: Deps | None = None
        self._mangum: dict[str, Any] = {}
        # Lambda runs one invocation at a time; the lock makes in-process use (tests, a local
        # server calling handlers from threads) safe too: a loop cannot be run re-entrantly.
        self._lock = threading.Lock()
        self.invocations = 0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._loop.is_closed():
            try:
                import uvloop

                self._loop = uvloop.new_event_loop()
            except ImportError:  # pragma: no cover - uvloop is a dependency
                self._loop = asyncio.new_event_loop()
        return self._loop

    @property
    def deps(self) -> Deps | None:
        return self._deps

    async def _ensure_deps(self) -> Deps:
        if self._deps is None:
            from jobline.shared.platform.connections import connect

            # One invocation at a time per container: a small pool is enough, and keeps the
            # total connection count (containers x pool) within what Postgres allows.
            self._deps = await connect(load_settings(), pool_size=int(
                os.environ.get("JOBLINE_LAMBDA_PG_POOL", "2")))
        return self._deps

    def run(self, fn: Callable[[Deps], Awaitable[T]]) -> T:
        """Run ``fn(deps)`` to completion on the container's loop."""

        async def call() -> T:
            return await fn(await self._ensure_deps())

        with self._lock:
            self.invocations += 1
            loop = self.loop
            asyncio.set_event_loop(loop)
            return loop.run_until_complete(call())

    def http(self, name: str, build: Callable[[Deps], Starlette], event: dict[str, Any],
             context: Any) -> dict[str, Any]:
        """Serve an API Gateway event with the app ``build(deps)`` (built once per container)."""
        with self._lock:
            self.invocations += 1
            loop = self.loop
            asyncio.set_event_loop(loop)  # mangum drives the loop it finds current
            adapter = self._mangum.get(name)
            if adapter is None:
                deps = loop.run_until_complete(self._ensure_deps())
                from mangum import Mangum

                # lifespan off: mangum would run startup/shutdown around every invocation; the
                # app borrows the container's connections instead.
                adapter = self._mangum[name] = Mangum(build(deps), lifespan="off")
            result: dict[str, Any] = adapter(event, context)
            return result

    def reset(self) -> None:
        """Close the connections and the loop (tests; a container never needs it)."""
        with self._lock:
            if self._loop is not None and not self._loop.is_closed():
                for adapter in self._mangum.values():
                    committer = adapter.app.state.jobline.committer
                    if committer is not None:
                        self._loop.run_until_complete(committer.aclose())
                if self._deps is not None:
                    self._loop.run_until_complete(self._deps.close())
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
                self._loop.close()
            self._loop = None
            self._deps = None
            self._mangum.clear()
            self.invocations = 0


def routes_app(routes: list[BaseRoute], deps: Deps) -> Starlette:
    """A Starlette app of just ``routes`` over ``deps``: a function serving one operation does
    not import (or cold-start) the rest of the API."""
    from starlette.applications import Starlette

    from jobline.api.auth import AuthMiddleware
    from jobline.api.context import ApiContext
    from jobline.api.errors import EXCEPTION_HANDLERS

    app = Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS)
    # The group committer starts lazily on the first submit; its flusher task lives on the
    # container's loop and resumes with each invocation.
    context = ApiContext(deps.settings, deps)
    app.state.jobline = context
    app.add_middleware(AuthMiddleware, get_deps=context.require_deps)
    return app


#: The one runtime of this container.
RUNTIME = Runtime()


def http_handler(name: str, build: Callable[[Deps], Starlette]) -> LambdaHandler:
    """A Lambda handler serving API Gateway (HTTP API v2 or REST) events with ``build(deps)``."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return RUNTIME.http(name, build, event, context)

    handler.__name__ = f"{name}_handler"
    return handler
