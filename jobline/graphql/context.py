"""Per-request (or per-websocket) GraphQL context: the core's deps, who is asking, DataLoaders."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from graphql import GraphQLError
from strawberry.dataloader import DataLoader

from jobline.shared.core.models import Attempt, Job
from jobline.shared.events.livefeed import LiveFeed
from jobline.shared.flow.batches import BatchStatus
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.replica import ReadSource, is_replica_failure
from jobline.shared.security.auth import Forbidden, Principal, Role, authorize

from . import loaders

T = TypeVar("T")


@dataclass
class Context:
    deps: Deps
    principal: Principal | None
    feed_factory: Any  # async () -> LiveFeed (started lazily: only subscriptions need the bus)
    bus_factory: Any  # async () -> EventBus
    queue_stats_interval_s: float
    #: graphql-ws protocols store the connection_init payload here
    connection_params: Any = None
    cache: bool = True
    #: a websocket's key from its upgrade request's headers (used if connection_init has none)
    upgrade_key: str | None = None
    attempts: DataLoader[uuid.UUID, list[Attempt]] = field(init=False)
    jobs: DataLoader[uuid.UUID, Job | None] = field(init=False)
    batches: DataLoader[uuid.UUID, BatchStatus | None] = field(init=False)
    depends_on: DataLoader[uuid.UUID, list[uuid.UUID]] = field(init=False)
    #: This request's read routing, decided once at its first staleness-tolerant read (a
    #: websocket decides per read: it lives for hours).
    _reads: tuple[Deps, ReadSource] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        d = self.deps
        self.attempts = DataLoader(lambda ids: loaders.attempts(d, ids), cache=self.cache)
        self.jobs = DataLoader(lambda ids: loaders.jobs(d, ids), cache=self.cache)
        self.batches = DataLoader(lambda ids: loaders.batches(d, ids), cache=self.cache)
        self.depends_on = DataLoader(lambda ids: loaders.depends_on(d, ids), cache=self.cache)

    def read_source(self) -> ReadSource:
        """Where this request's staleness-tolerant reads go (the ``readReplica`` field)."""
        if self._reads is None or not self.cache:
            self._reads = self.deps.for_reads()
        return self._reads[1]

    async def read(self, fn: Callable[[Deps], Awaitable[T]]) -> T:
        """Run a read that tolerates the replica's bounded staleness (dashboard, analytics,
        listings) where :meth:`read_source` says; if the replica fails under it, retry on the
        primary and send the rest of the request there. Never for writes, claims, or a read
        a client expects to see its own write in."""
        self.read_source()
        assert self._reads is not None
        deps, src = self._reads
        if src.source != "replica":
            return await fn(deps)
        try:
            return await fn(deps)
        except Exception as e:
            if self.deps.reads is None or not is_replica_failure(e):
                raise
            self.deps.reads.replica_failed(e)
        self._reads = (self.deps, self.deps.read_source())
        return await fn(self.deps)

    def require(self, role: Role, action: str) -> Principal:
        if self.principal is None:
            raise GraphQLError("an API key is required", extensions={"code": "UNAUTHENTICATED"})
        try:
            authorize(self.principal, role, action)
        except Forbidden as e:
            raise GraphQLError(str(e), extensions={"code": "FORBIDDEN"}) from None
        return self.principal

    async def feed(self) -> LiveFeed:
        feed: LiveFeed = await self.feed_factory()
        return feed
