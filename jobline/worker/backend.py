"""What the worker loop needs from the outside world, and the direct implementation of it.

:class:`~jobline.worker.runtime.Worker` runs handlers; *where* it claims jobs and records outcomes
is a backend: :class:`DirectBackend` calls the core over Postgres + Redis (the fast path, unchanged
cost), :class:`~jobline.worker.remote.RemoteBackend` goes through the HTTP API for workers that
cannot reach the stores. Both keep the same contract: leases with fencing tokens, heartbeats that
report lost leases, and outcomes rejected when their token is stale.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from jobline.shared.core import job_types, jobs, remote
from jobline.shared.core.models import ClaimedJob, Outcome
from jobline.shared.dispatch.redis_dispatch import Dispatch
from jobline.shared.fleet import control
from jobline.shared.flow import dependencies as flow
from jobline.shared.platform.clock import Clock, SystemClock
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, create_redis
from jobline.shared.retry.policy import RetryPolicy


@dataclass
class Recorded:
    processed: int = 0
    failed: int = 0
    rejected: list[uuid.UUID] = field(default_factory=list)


class WorkerBackend(Protocol):
    settings: Settings
    clock: Clock
    #: ``interrupt`` ends a pending ``wait_and_claim`` promptly, having claimed nothing; without
    #: it, stopping cancels the wait instead.
    interruptible: bool

    async def open(self) -> None: ...
    async def aclose(self) -> None: ...
    async def known_queues(self) -> list[str]: ...
    async def claim(self, worker_id: str, queues: Sequence[str], n: int,
                    rotate: int) -> jobs.ClaimResult: ...
    async def record(self, batch: Sequence[tuple[Outcome, ClaimedJob, RetryPolicy | None]]
                     ) -> Recorded: ...
    async def heartbeat(self, held: Sequence[tuple[str, uuid.UUID, int]]
                        ) -> jobs.HeartbeatReport: ...
    async def release(self, held: Sequence[tuple[uuid.UUID, int]]) -> int: ...
    async def wait_for_work(self, queues: Sequence[str] | None, timeout_s: float,
                            owner: str) -> None: ...
    async def wait_and_claim(self, worker_id: str, wait_on: Sequence[str] | None,
                             timeout_s: float, queues: Sequence[str], n: int,
                             rotate: int) -> jobs.ClaimResult: ...
    async def interrupt(self, owner: str) -> None: ...
    async def register(self, info: Mapping[str, Any], ttl_ms: int) -> None: ...
    async def deregister(self, worker_id: str) -> None: ...
    async def job_types(self, published: Sequence[job_types.JobTypeDefaults],
                        unhandled: Sequence[str]) -> None: ...
    async def dependency_results(self, job_id: uuid.UUID) -> dict[str, Any]: ...
    async def command(self, worker_id: str) -> str | None:
        """This worker's pending management command (quiet/stop/restart), None: run."""
        ...
    async def push_logs(self, worker_id: str, lines: Sequence[str]) -> None: ...


async def wait_then_claim(backend: WorkerBackend, worker_id: str,
                          wait_on: Sequence[str] | None, timeout_s: float,
                          queues: Sequence[str], n: int, rotate: int) -> jobs.ClaimResult:
    """``wait_and_claim`` as two steps, for backends (or clocks) without the combined one."""
    await backend.wait_for_work(wait_on, timeout_s, worker_id)
    return await backend.claim(worker_id, queues, n, rotate)


class DirectBackend:
    """The core over Postgres + Redis, in-process."""

    interruptible = True

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.settings = deps.settings
        self.clock = deps.clock
        self._block: Dispatch | None = None

    async def open(self) -> None:
        assert self.settings.redis_url
        # BLPOP holds its connection, so waiting uses a client of its own.
        self._block = Dispatch(create_redis(self.settings.redis_url, blocking=True),
                               self.settings.redis_prefix, self.settings.redis_slot_groups)

    async def aclose(self) -> None:
        if self._block is not None:
            await self._block.aclose_waiters()
            await self._block.r.aclose()

    async def known_queues(self) -> list[str]:
        return await jobs.translate_errors(self.deps.dispatch.known_queues)()

    async def claim(self, worker_id: str, queues: Sequence[str], n: int,
                    rotate: int) -> jobs.ClaimResult:
        return await jobs.claim_batch(self.deps, worker_id, queues, n, rotate)

    async def record(self, batch: Sequence[tuple[Outcome, ClaimedJob, RetryPolicy | None]]
                     ) -> Recorded:
        # The worker already knows each job's attempt and retry policy from its claim, so the
        # direct path skips the lookup the remote path does.
        out = Recorded()
        oks = [o for o, _, _ in batch if o.ok]
        bad = [(o, j, p) for o, j, p in batch if not o.ok]
        if oks:
            rep = await jobs.complete(self.deps, oks)
            out.processed = len(rep.accepted)
            out.rejected += rep.rejected
        if bad:
            rep = await jobs.fail(self.deps, [o for o, _, _ in bad], [j.attempt for _, j, _ in bad],
                                  [j.backoff for _, j, _ in bad],
                                  handler_policies=[p for _, _, p in bad])
            out.failed = len(rep.accepted)
            out.rejected += rep.rejected
        return out

    async def heartbeat(self, held: Sequence[tuple[str, uuid.UUID, int]]
                        ) -> jobs.HeartbeatReport:
        return await jobs.heartbeat(self.deps, held)

    async def release(self, held: Sequence[tuple[uuid.UUID, int]]) -> int:
        return len((await jobs.release(self.deps, held)).accepted)

    async def wait_for_work(self, queues: Sequence[str] | None, timeout_s: float,
                            owner: str) -> None:
        assert self._block is not None
        await self._block.wait_for_work(queues, timeout_s, owner=owner)

    async def wait_and_claim(self, worker_id: str, wait_on: Sequence[str] | None,
                             timeout_s: float, queues: Sequence[str], n: int,
                             rotate: int) -> jobs.ClaimResult:
        assert self._block is not None
        if not isinstance(self.clock, SystemClock) or self._block.spans_groups(wait_on, queues):
            # the one-round-trip path leases on Valkey's clock (an injected clock must rule),
            # and needs the wait and the claim on one node (one slot group)
            return await wait_then_claim(self, worker_id, wait_on, timeout_s, queues, n, rotate)
        return await jobs.wait_and_claim(self.deps, self._block, worker_id, wait_on, timeout_s,
                                         queues, n, rotate)

    async def interrupt(self, owner: str) -> None:
        await self.deps.dispatch.interrupt(owner)

    async def register(self, info: Mapping[str, Any], ttl_ms: int) -> None:
        await remote.register_worker(self.deps, info, ttl_ms)

    async def deregister(self, worker_id: str) -> None:
        await remote.deregister_worker(self.deps, worker_id)
        await control.mark_stopped(self.deps, worker_id)

    async def command(self, worker_id: str) -> str | None:
        return await control.command_for(self.deps, worker_id)

    async def push_logs(self, worker_id: str, lines: Sequence[str]) -> None:
        await control.push_logs(self.deps, worker_id, lines)

    async def job_types(self, published: Sequence[job_types.JobTypeDefaults],
                        unhandled: Sequence[str]) -> None:
        await job_types.publish(self.deps, published)
        await job_types.note_unhandled(self.deps, unhandled)

    async def dependency_results(self, job_id: uuid.UUID) -> dict[str, Any]:
        return await jobs.translate_errors(flow.dependency_results)(self.deps, job_id)
