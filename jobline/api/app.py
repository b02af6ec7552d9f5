"""The Starlette application factory for the REST API (the seed's contract).

``create_app(settings)`` owns its connections: the lifespan opens them and closes them. Given
``deps`` the caller owns them (tests, or an embedding process) and the app only borrows them.
Either way the app starts one :class:`GroupCommitter` so concurrent ``POST /api/v1/jobs``
requests share INSERTs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from jobline.api import (
    admin,
    ai,
    alerts,
    analytics,
    batches,
    dashboard,
    events,
    health,
    job_types,
    jobs,
    metrics,
    openapi,
    queues,
    retry_policies,
    schedules,
    worker_routes,
    workers,
)
from jobline.api.auth import AuthMiddleware
from jobline.api.context import ApiContext
from jobline.api.errors import EXCEPTION_HANDLERS, install_malformed_id_hint
from jobline.api.fastlane import SubmitFastLane
from jobline.graphql import app as graphql_app
from jobline.shared.core.group_commit import GroupCommitter
from jobline.shared.platform.clock import SYSTEM_CLOCK, Clock
from jobline.shared.platform.config import Settings, load
from jobline.shared.platform.connections import Deps, connect
from jobline.shared.security.key_rate_limit import parse_rate


def create_app(settings: Settings | None = None, *, deps: Deps | None = None,
               clock: Clock | None = None) -> Starlette:
    """``clock`` is used only when the app connects its own ``deps`` (theirs carry a clock)."""
    if settings is None:
        settings = deps.settings if deps is not None else load()
    context = ApiContext(settings, deps)
    parse_rate(settings.rate_per_key)  # a bad JOBLINE_RATE_PER_KEY fails at startup, not per request

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owned = context.deps is None
        if owned:
            context.deps = await connect(settings, clock or SYSTEM_CLOCK)
        assert context.deps is not None
        context.committer = GroupCommitter(context.deps)
        context.committer.start()
        try:
            yield
        finally:
            # Flush queued submissions before the connections they need go away.
            await context.committer.aclose()
            context.committer = None
            await graphql_app.close(app)
            await events.close(app)
            if owned:
                await context.deps.close()
                context.deps = None

    app = Starlette(
        routes=[*jobs.routes, *batches.routes, *queues.routes, *schedules.routes, *admin.routes,
                *retry_policies.routes, *events.routes, *health.routes, *worker_routes.routes, *workers.routes, *job_types.routes,
                *metrics.routes, *alerts.routes, *ai.routes, *analytics.routes,
                *graphql_app.routes(context, events.bus_of),
                *openapi.routes(settings)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.jobline = context
    # Where no route matches: the built dashboard, client-side routes falling back to index.html.
    dashboard.install(app)
    # Before the plain 404: "'abc' is not a valid id" on an id route given a malformed id.
    install_malformed_id_hint(app)
    # Inside authentication: the submit route's direct path (see fastlane.py).
    app.add_middleware(SubmitFastLane)
    # Outermost: nothing runs for a request that is not authenticated and authorised.
    app.add_middleware(AuthMiddleware, get_deps=context.require_deps)
    return app
