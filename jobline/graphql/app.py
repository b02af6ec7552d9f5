"""Mounting the schema at ``/graphql`` (HTTP and websockets) inside the REST app.

HTTP requests arrive already authenticated (``AuthMiddleware`` put the principal in the scope).
A websocket is authenticated by its ``connection_init`` payload (``{"apiKey": "..."}``), or,
as HTTP is, by an ``X-Api-Key`` (or ``Authorization: Bearer``) header on the upgrade request
(browsers cannot set one; other clients often do): without a valid key the connection is closed
with 4403 (graphql-transport-ws) or a ``connection_error`` (legacy graphql-ws) before any
operation runs, the message saying where the key goes.

This shell does not import the REST shell: the hosting app hands it what it needs (a
:class:`Host`, which the REST ``ApiContext`` is, and the app's event-bus accessor).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from jobline.shared.events.bus import EventBus
from jobline.shared.events.livefeed import LiveFeed
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import JoblineError
from jobline.shared.security.auth import authenticate, key_from_headers

from .context import Context
from .schema import schema


class Host(Protocol):
    """What the hosting app provides (``jobline.api.context.ApiContext`` in the REST app)."""

    settings: Settings

    def require_deps(self) -> Deps: ...


#: The hosting app's one event bus (created on first use, closed by the app's lifespan).
BusOf = Callable[[Starlette], Awaitable[EventBus]]


async def live_feed(app: Starlette, bus_of: BusOf) -> LiveFeed:
    """The app's one live feed (a single bus tail shared by every subscription)."""
    feed: LiveFeed | None = getattr(app.state, "live_feed", None)
    if feed is None:
        feed = LiveFeed(await bus_of(app))
        app.state.live_feed = feed
    await feed.start()
    return feed


async def close(app: Starlette) -> None:
    feed: LiveFeed | None = getattr(app.state, "live_feed", None)
    if feed is not None:
        app.state.live_feed = None
        await feed.close()


class JoblineGraphQL(GraphQL[Context, None]):
    def __init__(self, app_context: Host, bus_of: BusOf, **kw: Any) -> None:
        super().__init__(schema, **kw)
        self.app_context = app_context
        self.bus_of = bus_of

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        app = request.app
        state = request.scope.get("state") or {}

        async def feed() -> LiveFeed:
            return await live_feed(app, self.bus_of)

        async def bus() -> Any:
            return await self.bus_of(app)

        return Context(deps=self.app_context.require_deps(), principal=state.get("principal"),
                       feed_factory=feed, bus_factory=bus,
                       queue_stats_interval_s=self.app_context.settings.graphql_stats_interval_s,
                       cache=not isinstance(request, WebSocket),
                       upgrade_key=key_from_headers(request.headers)
                       if isinstance(request, WebSocket) else None)

    async def on_ws_connect(self, context: Context) -> Any:
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        key = params.get("apiKey") or params.get("X-Api-Key") or context.upgrade_key
        try:
            context.principal = await authenticate(context.deps, key if isinstance(key, str)
                                                   else None)
        except JoblineError:
            raise ConnectionRejectionError({"message": (
                "invalid or missing API key: send it in the connection_init payload as "
                '{"apiKey": "<key>"} (or as an X-Api-Key header on the upgrade request)')}
            ) from None
        return None


def routes(app_context: Host, bus_of: BusOf) -> list[BaseRoute]:
    view = JoblineGraphQL(
        app_context, bus_of,
        graphql_ide="graphiql" if app_context.settings.dev_mode else None,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL))
    return [Route("/graphql", view, methods=["GET", "POST"], name="graphql"),
            WebSocketRoute("/graphql", view, name="graphql_ws")]
