"""What the endpoints share: settings, the core's dependencies and the group committer.

Kept on ``app.state`` (no module globals) so several apps, e.g. one per test, can coexist in a
process.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from starlette.requests import Request
from starlette.responses import Response

from jobline.shared.core.group_commit import GroupCommitter
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import Unavailable
from jobline.shared.platform.replica import ReadSource

T = TypeVar("T")

#: Where ``read`` records the request's read source (``request.state``) for the headers.
_STATE_KEY = "jobline_read_source"
#: Response headers of an endpoint whose reads may be served by the replica.
SOURCE_HEADER = "X-Jobline-Read-Source"
LAG_HEADER = "X-Jobline-Read-Lag-Ms"
#: The operations whose reads go through :func:`read` / :func:`read_deps` (so the replica may
#: serve them): the OpenAPI document lists the two headers on their 200 responses, and
#: tests/test_read_replica.py checks each really is served by the replica.
READ_ROUTED: frozenset[str] = frozenset({
    "listJobs", "listQueues", "listWorkers", "listAuditEvents", "metricsQueues",
    "metricsWorkers", "metricsTimeline", "metricsDurationHistogram", "metricsThroughput",
    "prometheus", "listDeadLetters", "exportDeadLetters", "aiTopIssues",
    "analyticsSummary", "analyticsThroughput", "analyticsDurations", "analyticsFailures",
    "analyticsRetries", "analyticsQueuesHealth", "analyticsResources", "analyticsCost",
    "analyticsSla", "analyticsAvailability", "analyticsSlowJobs", "analyticsTopIssues",
    "analyticsCriticalPath"})
#: Their OpenAPI description.
READ_HEADERS: dict[str, object] = {
    SOURCE_HEADER: {"schema": {"type": "string", "enum": ["replica", "primary"]},
                    "description": "Where this read ran: the DATABASE_READ_URL replica (within "
                                   "JOBLINE_READ_MAX_LAG_MS) or the primary"},
    LAG_HEADER: {"schema": {"type": "integer", "minimum": 0},
                 "description": "Upper bound on how old the replica's data is, ms (absent when "
                                "no replica is configured or its position is unknown)"}}


@dataclass
class ApiContext:
    settings: Settings
    deps: Deps | None = None
    committer: GroupCommitter | None = None

    def require_deps(self) -> Deps:
        if self.deps is None:  # lifespan not run yet, or shutting down
            raise Unavailable("service is starting or stopping", retry_after_s=1)
        return self.deps

    def require_committer(self) -> GroupCommitter:
        deps = self.require_deps()
        if self.committer is None:
            # Created lazily so an app whose lifespan is not driven (some test transports)
            # still works; the flusher task starts on the first submit.
            self.committer = GroupCommitter(deps)
        return self.committer


def ctx(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.jobline
    return context


async def read(request: Request, fn: Callable[[Deps], Awaitable[T]]) -> T:
    """Run a staleness-tolerant read (``Deps.read``: the replica within the bound, else the
    primary) and note where it ran; :func:`add_read_headers` reports it on the response.
    Only for reads that may be ``JOBLINE_READ_MAX_LAG_MS`` old: never a write, a claim, or a
    read a client expects to see its own write in (docs/deploy.md, "Read replica")."""
    value, src = await ctx(request).require_deps().read(fn)
    note_read_source(request, src)
    return value


def read_deps(request: Request) -> Deps:
    """The deps a streamed read uses (no retry on the primary once the body has started)."""
    deps, src = ctx(request).require_deps().for_reads()
    note_read_source(request, src)
    return deps


def note_read_source(request: Request, src: ReadSource) -> None:
    setattr(request.state, _STATE_KEY, src)


def add_read_headers(request: Request, response: Response) -> None:
    """``X-Jobline-Read-Source: replica|primary`` and, when known, ``X-Jobline-Read-Lag-Ms``
    (an upper bound on the staleness of a replica read) on a routed read's response."""
    src: ReadSource | None = request.scope.get("state", {}).get(_STATE_KEY)
    if src is None:
        return
    response.headers[SOURCE_HEADER] = src.source
    if src.lag_ms is not None:
        response.headers[LAG_HEADER] = str(src.lag_ms)
