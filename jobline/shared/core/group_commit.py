"""Group commit: many concurrent single submissions share one multi-row INSERT.

An API process receiving thousands of ``POST /jobs`` a second would otherwise pay one Postgres
transaction (and fsync) plus one Redis round trip per job. :class:`GroupCommitter` queues each
caller's spec and a background flusher hands everything queued so far to
:func:`jobline.shared.core.jobs.submit_many` in one call.

There is no linger timer: a flush starts as soon as a slot is free, so an idle system adds no
latency, and while ``max_inflight`` flushes are busy new arrivals pile up and form the next,
larger batch. Batches therefore grow exactly when the database is the bottleneck.

Invariant: a caller's future resolves with a result only after ``submit_many`` returned, i.e.
after the transaction holding that caller's row committed (Redis dispatch failures after the
commit are absorbed by ``submit_many``; reconcile re-dispatches). Validation and Postgres errors
arrive as exceptions with nothing of that caller's submission committed. The one ambiguous case
is a flush interrupted by cancellation/shutdown mid-commit: callers then get :class:`Unavailable`
and should resubmit with an idempotency key, which makes the resubmission safe.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import asyncpg

from jobline.shared.core import jobs
from jobline.shared.core.jobs import SubmitResult
from jobline.shared.core.models import JobSpec
from jobline.shared.core.validation import check_spec
from jobline.shared.dispatch import backpressure
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import IdempotencyConflict, Unavailable, ValidationFailed

log = logging.getLogger("jobline.batching")


@dataclass(slots=True)
class _Pending:
    spec: JobSpec
    future: asyncio.Future[SubmitResult]


class GroupCommitter:
    """Coalesces concurrent :meth:`submit` calls into batched ``submit_many`` calls."""

    def __init__(self, deps: Deps, *, max_batch: int = 1000, max_inflight: int = 4) -> None:
        if max_batch < 1 or max_inflight < 1:
            raise ValueError("max_batch and max_inflight must be >= 1")
        self.deps = deps
        self.max_batch = max_batch
        self.max_inflight = max_inflight
        #: Number of ``submit_many`` calls made (one INSERT round trip each); tests read it.
        self.flushes = 0
        #: Number of specs handed to ``submit_many`` in total.
        self.flushed_specs = 0
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(max_inflight)
        self._inflight: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._closing = False

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the flusher on the running loop (idempotent; ``submit`` also calls it)."""
        if self._runner is None or self._runner.done():
            self._closing = False
            self._runner = asyncio.get_running_loop().create_task(
                self._run(), name="jobline-group-commit")

    async def aclose(self) -> None:
        """Stop accepting submissions, flush everything queued, wait for in-flight flushes."""
        self._closing = True
        self._wake.set()
        if self._runner is not None:
            await self._runner
            self._runner = None
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    async def __aenter__(self) -> GroupCommitter:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- submission -----------------------------------------------------------------------

    async def submit(self, spec: JobSpec) -> SubmitResult:
        """Submit one job; returns once its row is committed (or raises, nothing committed)."""
        # Validate alone first: a bad spec must fail its own caller, not the batch it would join.
        check_spec(spec, self.deps.settings)
        for pos, d in enumerate(spec.depends_on):
            # Group commit mixes callers: an index would point at someone else's job.
            if isinstance(d, int):
                raise ValidationFailed(f"dependsOn[{pos}]",
                                       "an index refers to a job of the same bulk request; "
                                       "a single submission takes job ids only")
        if self._closing:
            raise Unavailable("submission service is shutting down", retry_after_s=1)
        # The backlog cap is checked per caller here, not per flush, so one caller over the cap
        # fails alone and the flush itself runs with ``limits=False``. Cost on this hot path:
        # nothing when no cap is configured (a settings check, no I/O); with caps, one pipelined
        # ZCARD pair for this job's queue (O(1) in Redis), exactly what the REST handler paid
        # before the check moved into the core, and no Postgres query.
        await backpressure.admit(self.deps, (spec.queue,))
        self.start()
        fut: asyncio.Future[SubmitResult] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(spec, fut))
        self._wake.set()
        return await fut

    # --- flusher --------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                # Waiting for a slot is what lets arrivals accumulate into a bigger next batch.
                await self._slots.acquire()
                batch = self._take()
                if not batch:
                    self._slots.release()
                    break
                task = asyncio.get_running_loop().create_task(self._flush(batch))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
            if self._closing and not self._queue:
                return

    def _take(self) -> list[_Pending]:
        batch: list[_Pending] = []
        while self._queue and len(batch) < self.max_batch:
            chunk = self._queue[: self.max_batch - len(batch)]
            del self._queue[: len(chunk)]
            # A caller that gave up (cancelled) before its flush never got an ack: skip it.
            batch.extend(p for p in chunk if not p.future.done())
        return batch

    async def _flush(self, batch: list[_Pending]) -> None:
        try:
            try:
                results = await self._submit([p.spec for p in batch])
            except (ValidationFailed, IdempotencyConflict, asyncpg.PostgresError) as e:
                # Both are raised before or inside the transaction, so nothing was committed and
                # each spec can be retried alone; that confines an error the individual
                # pre-check missed (e.g. a value Postgres refuses) to the caller that sent it.
                if len(batch) == 1:
                    _resolve(batch[0].future, exc=e)
                    return
                await asyncio.gather(*(self._flush_one(p) for p in batch))
                return
            except BaseException as e:  # Unavailable, cancellation: the batch shares the fate
                for p in batch:
                    _resolve(p.future, exc=e if isinstance(e, Exception) else
                             Unavailable("submission interrupted"))
                if not isinstance(e, Exception):
                    raise
                return
            for p, r in zip(batch, results, strict=True):
                _resolve(p.future, result=r)
        finally:
            self._slots.release()

    async def _flush_one(self, p: _Pending) -> None:
        try:
            (r,) = await self._submit([p.spec])
        except Exception as e:
            _resolve(p.future, exc=e)
        else:
            _resolve(p.future, result=r)

    async def _submit(self, specs: list[JobSpec]) -> list[SubmitResult]:
        self.flushes += 1
        self.flushed_specs += len(specs)
        # Callers were admitted one by one in ``submit``; a flush is not a bulk request.
        return await jobs.submit_many(self.deps, specs, positions=True, limits=False)


def _resolve(fut: asyncio.Future[SubmitResult], *, result: SubmitResult | None = None,
             exc: BaseException | None = None) -> None:
    if fut.done():  # the caller was cancelled meanwhile; its row (if any) stands, unacknowledged
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        assert result is not None
        fut.set_result(result)


__all__ = ["GroupCommitter"]
