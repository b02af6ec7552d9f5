"""Mounting the schema at ``/graphql`` (HTTP and websockets) inside the REST app.

HTTP requests arrive already authenticated (``AuthMiddleware`` put the principal in the scope).
A websocket is authenticated by its ``connection_init`` payload (``{"apiKey": "..."}``): without
a valid key the connection is closed with 4403 (graphql-transport-ws) or a ``connection_error``
(legacy graphql-ws) before any operation runs.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from jobline.api.context import ApiContext
from jobline.shared.events.livefeed import LiveFeed
from jobline.shared.platform.errors import JoblineError
from jobline.shared.security.auth import authenticate

from .context import Context
from .schema import schema


async def live_feed(app: Starlette) -> LiveFeed:
    """The app's one live feed (a single bus tail shared by every subscription)."""
    from jobline.api.events import _bus

    feed: LiveFeed | None = getattr(app.state, "live_feed", None)
    if feed is None:
        feed = LiveFeed(await _bus(app))
        app.state.live_feed = feed
    await feed.start()
    return feed


async def close(app: Starlette) -> None:
    feed: LiveFeed | None = getattr(app.state, "live_feed", None)
    if feed is not None:
        app.state.live_feed = None
        await feed.close()


class JoblineGraphQL(GraphQL[Context, None]):
    def __init__(self, app_context: ApiContext, **kw: Any) -> None:
        super().__init__(schema, **kw)
        self.app_context = app_context

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        app = request.app
        state = request.scope.get("state") or {}
        from jobline.api.events import _bus

        async def feed() -> LiveFeed:
            return await live_feed(app)

        async def bus() -> Any:
            return await _bus(app)

        return Context(deps=self.app_context.require_deps(), principal=state.get("principal"),
                       feed_factory=feed, bus_factory=bus,
                       queue_stats_interval_s=self.app_context.settings.graphql_stats_interval_s,
                       cache=not isinstance(request, WebSocket))

    async def on_ws_connect(self, context: Context) -> Any:
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        key = params.get("apiKey") or params.get("X-Api-Key")
        try:
            context.principal = await authenticate(context.deps, key if isinstance(key, str)
                                                   else None)
        except JoblineError:
            raise ConnectionRejectionError({"message": "invalid or missing apiKey"}) from None
        return None


def routes(app_context: ApiContext) -> list[BaseRoute]:
    view = JoblineGraphQL(
        app_context,
        graphql_ide="graphiql" if app_context.settings.dev_mode else None,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL))
    return [Route("/graphql", view, methods=["GET", "POST"], name="graphql"),
            WebSocketRoute("/graphql", view, name="graphql_ws")]
