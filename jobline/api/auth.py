"""Authentication and role checks for every HTTP endpoint, as one ASGI middleware.

One table (:data:`RULES`) says which role each (method, path) needs, so a new route cannot be
forgotten: anything under ``/api/v1``, ``/graphql`` or ``/metrics`` that matches no rule needs
``admin``. Open without a key: ``/healthz`` and ``/readyz`` (orchestrator probes) and the OpenAPI
document (it describes the API, it holds no data).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from jobline.shared.platform.errors import JoblineError, Unavailable
from jobline.shared.security.auth import (
    Role,
    Unauthenticated,
    authenticate,
    authorize,
    key_from_headers,
)
from jobline.shared.security.key_rate_limit import KeyRate, RateLimited, admit, parse_rate

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

READ = frozenset({"GET", "HEAD"})
ANY = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})
D, A = Role.DEVELOPER, Role.ADMIN

#: (methods, path regex, role). First match wins.
RULES: list[tuple[frozenset[str], re.Pattern[str], Role]] = [
    (ANY, re.compile(r"^/api/v1/jobs(/bulk)?$"), D),
    (ANY, re.compile(r"^/api/v1/jobs/[^/]+(/retry|/graph)?$"), D),
    (ANY, re.compile(r"^/api/v1/job-batches(/[^/]+)?$"), D),
    (READ, re.compile(r"^/api/v1/queues$"), D),
    (ANY, re.compile(r"^/api/v1/queues/[^/]+/(pause|resume|purge|concurrency|rate-limit|sla|cost)$"),
     A),
    (ANY, re.compile(r"^/api/v1/scheduled-jobs(/[^/]+)?$"), D),
    (ANY, re.compile(r"^/api/v1/retry-policies(/[^/]+)?$"), D),
    (READ, re.compile(r"^/api/v1/job-types$"), D),
    # remote workers process jobs: a developer key is enough; managing workers is admin
    (ANY, re.compile(r"^/api/v1/worker/(claim|complete|heartbeat|release|wait|job-types|group)$"),
     D),
    # alerting: reads and acknowledging are a developer's; rule/channel/silence writes admin
    (READ, re.compile(r"^/api/v1/alert-(rules|channels|silences|deliveries)(/[^/]+)?$"), D),
    (READ, re.compile(r"^/api/v1/alerts(/[^/]+(/deliveries)?)?$"), D),
    (ANY, re.compile(r"^/api/v1/alerts/[^/]+/acknowledge$"), D),
    (ANY, re.compile(r"^/api/v1/admin(/.*)?$"), A),
    (ANY, re.compile(r"^/api/v1/(audit|events/lag|metrics(/.*)?|analytics(/.*)?)$"), A),
    # GraphQL checks each operation's role itself; entering needs any valid key
    (ANY, re.compile(r"^/graphql$"), D),
    (READ, re.compile(r"^/metrics$"), A),
]
PUBLIC = re.compile(r"^/(healthz|readyz|api/v1/openapi\.json)$")
PROTECTED = re.compile(r"^/(api/v1|graphql|metrics)(/|$)")


@functools.lru_cache(maxsize=4096)
def required_role(method: str, path: str) -> Role | None:
    """The role a request needs; None when the path is public or not ours. Cached: the rule
    table is fixed, and matching its regexes was ~2% of an API process's CPU per submit."""
    if PUBLIC.match(path) or not PROTECTED.match(path):
        return None
    for methods, pattern, role in RULES:
        if method in methods and pattern.match(path):
            return role
    return Role.ADMIN


_KEY_HEADERS = frozenset({b"x-api-key", b"authorization"})


class AuthMiddleware:
    """Rejects unauthenticated (401) and unauthorised (403) requests before any route runs and
    puts the :class:`~jobline.shared.security.auth.Principal` into ``scope["state"]["principal"]``.
    Websockets (GraphQL subscriptions) are authenticated in ``connection_init`` instead."""

    def __init__(self, app: ASGIApp, get_deps: Callable[[], Any]) -> None:
        self.app = app
        self.get_deps = get_deps
        self._rates: dict[str, KeyRate | None] = {}

    def _rate(self, raw: str) -> KeyRate | None:
        if raw not in self._rates:
            self._rates[raw] = parse_rate(raw)
        return self._rates[raw]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        needed = required_role(scope["method"], scope["path"])
        if needed is None:
            await self.app(scope, receive, send)
            return
        # Only the two credential headers are decoded: building a dict of every header was a
        # measurable share of a small request's CPU.
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", []) if k.lower() in _KEY_HEADERS}
        try:
            deps = self.get_deps()
            principal = await authenticate(deps, key_from_headers(headers))
            authorize(principal, needed, f"{scope['method']} {scope['path']}")
            rate = self._rate(deps.settings.rate_per_key)
            if rate is not None:
                # after authentication: an unauthenticated flood cannot drain a real key's bucket
                await admit(deps, str(principal.key_id), rate)
        except JoblineError as e:
            await _error(send, e)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


async def _error(send: Send, e: JoblineError) -> None:
    body = orjson.dumps({"error": {"code": e.code, "message": str(e)}})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if isinstance(e, Unauthenticated):
        headers.append((b"www-authenticate", b'Bearer realm="jobline"'))
    if isinstance(e, (Unavailable, RateLimited)):
        headers.append((b"retry-after", str(e.retry_after_s).encode()))
    await send({"type": "http.response.start", "status": e.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
