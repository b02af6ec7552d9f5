"""The long-running worker: claims jobs in batches, runs handlers, records outcomes in batches.

Invariants:
  * never more than ``concurrency`` handlers in flight in this process;
  * every claimed job ends in exactly one of: an outcome written (complete/fail), a release at
    shutdown, or — if the process dies — lease expiry, after which the reaper re-dispatches it;
  * outcomes are written with the claim's fencing token, so a late write after this worker lost
    its lease is rejected by Postgres, never recorded twice;
  * idle workers block on a Redis wake-up list (BLPOP), they do not poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson

from jobline import __version__
from jobline.shared.core import cancellation, jobs
from jobline.shared.core.job_types import JobTypeDefaults
from jobline.shared.core.models import ClaimedJob, Outcome
from jobline.shared.events import worker_events
from jobline.shared.fleet.control import NUDGE
from jobline.shared.observe.workers import list_workers as list_workers  # re-exported
from jobline.shared.observe.workers import process_usage
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import Cancelled, JobError, Retry, Unavailable, Unrecoverable
from jobline.shared.retry.policy import RetryPolicy
from jobline.worker.backend import DirectBackend, WorkerBackend
from jobline.worker.logtail import LogTail
from jobline.worker.progress import ProgressWriter
from jobline.worker.registry import HandlerSpec, JobContext, Registry, default_registry

log = logging.getLogger("jobline.worker")

#: The upper bound on each store call of the shutdown sequence once handlers are done
#: (deregister, the workers.stopped event, closing the blocking Redis client) and on stopping a
#: background loop is ``Settings.teardown_step_ms`` (``JOBLINE_TEARDOWN_STEP_MS``, 5 s): a store
#: that does not answer in that time is abandoned, not waited for.
#: How long cut-off handlers get to end once cancelled (well inside the CLI's cold-exit bound,
#: so their jobs are released before a second signal forces the exit).
CANCELLED_HANDLERS_S = 2.0
#: How long a shutdown step that overran its bound gets to end once cancelled (``_bounded``).
ABANDON_S = 1.0


def stop_bound_s(give_up_after_s: float, teardown_step_s: float) -> float:
    """How long a worker's ``run()`` may take to return once the grace period is over (or the
    handlers are done), whatever state the stores are in; ``give_up_after_s`` is the last
    flush's retry budget (two leases by default). With the default 5 s step: budget + 51 s."""
    # the cut-off handlers, the release (a step), the two loops (a step each), the last flush
    # (its budget and a step, then its own stop, a step), and four store calls (progress,
    # deregister, workers.stopped, closing the backend: a step and ABANDON_S each)
    return give_up_after_s + CANCELLED_HANDLERS_S + 9 * teardown_step_s + 4 * ABANDON_S

#: A job whose type this worker has no handler for is handed back, its attempt not counted, to
#: start again after this delay, doubled for every earlier hand-back of the job and capped: a
#: worker of another pool that has the handler can take it meanwhile, and a job nobody serves
#: costs a few claims a minute instead of a hot loop (docs/job-types.md).
UNHANDLED_DELAY_MS = 500
UNHANDLED_DELAY_CAP_MS = 30_000

#: Queues named ``jobline.*`` are Jobline's own (``jobline.alerts``: alert deliveries); a worker
#: given no queue list serves every queue but these.
INTERNAL_QUEUE_PREFIX = "jobline."

#: Error types assigned to common Python exceptions raised by handlers.
_EXC_TYPES: dict[type[BaseException], str] = {
    TimeoutError: "timeout",
    ConnectionRefusedError: "connection_refused",
    ConnectionError: "connection_error",
}


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class _Running:
    job: ClaimedJob
    ctx: JobContext
    task: asyncio.Task[None] | None = None
    #: The hard-cancel timer armed by a cancel request (async handlers only).
    grace: asyncio.TimerHandle | None = None
    #: True once the grace period ran out and ``task`` was cancelled for it.
    hard_cancelled: bool = False


@dataclass
class WorkerStats:
    started_ms: int = 0
    processed: int = 0
    failed: int = 0
    rejected: int = 0
    claimed: int = 0
    #: The worker stopped because ``POST /workers/:id/stop`` asked (its supervisor must not
    #: replace it), not for a restart or a signal.
    stop_requested: bool = False


@dataclass
class _Pending:
    outcome: Outcome
    job: ClaimedJob
    #: The handler's level of the retry policy, for the core's fail decision.
    policy: RetryPolicy | None
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Completer:
    """Batches outcomes into one ``complete`` and one ``fail`` statement per flush.

    No linger: a flush takes everything queued; outcomes arriving during a flush form the next
    batch, so batch size grows with load by itself.

    Invariants: every outcome not yet recorded — queued *or in the flush under way* — is in
    :attr:`pending`, which the worker heartbeats, so a slow database cannot let its lease lapse.
    A flush that fails (store unavailable, or an unexpected error) is retried with backoff for at
    most ``give_up_after_s`` (default: two leases). Then it is logged and dropped: the jobs
    leave :attr:`pending`, their leases lapse, and the reaper records the attempt as
    ``lease_expired`` and re-runs them (docs/guarantees.md §3). By then, with the database
    unreachable for heartbeats too, the lease has lapsed anyway; an outcome arriving after the
    reaper ran would be rejected by its fencing token.
    """

    def __init__(self, backend: WorkerBackend, stats: WorkerStats, max_batch: int = 1000,
                 give_up_after_s: float | None = None) -> None:
        self.backend = backend
        self.stats = stats
        self.max_batch = max_batch
        self.give_up_after_s = (give_up_after_s if give_up_after_s is not None
                                else 2 * backend.settings.lease_ms / 1000)
        self.teardown_step_s = backend.settings.teardown_step_ms / 1000
        self._queue: list[_Pending] = []
        #: The batch being flushed (still unrecorded: heartbeated like the queue).
        self._flushing: list[_Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="jobline-completer")

    def add(self, outcome: Outcome, job: ClaimedJob,
            policy: RetryPolicy | None = None) -> _Pending:
        p = _Pending(outcome, job, policy)
        self._queue.append(p)
        self._wake.set()
        return p

    @property
    def pending(self) -> list[ClaimedJob]:
        """Jobs whose outcome is not recorded yet: queued, or in the flush under way."""
        return [p.job for p in self._flushing] + [p.job for p in self._queue]

    async def _loop(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            await self._flush(batch)

    async def _flush(self, batch: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self.give_up_after_s
        delay = 0.05
        self._flushing = batch
        try:
            while True:
                try:
                    rep = await self.backend.record([(p.outcome, p.job, p.policy)
                                                     for p in batch])
                    self.stats.processed += rep.processed
                    self.stats.failed += rep.failed
                    self.stats.rejected += len(rep.rejected)
                    if rep.rejected:
                        log.warning("outcomes of %d jobs rejected (lease lost): %s",
                                    len(rep.rejected), rep.rejected[:5])
                    break
                except Exception as e:
                    # Unavailable is expected while a store is down; anything else is a bug,
                    # but dropping the batch at once would still re-run every job in it.
                    if loop.time() + delay > give_up_at:
                        log.error("recording %d outcomes failed for %.1fs (%s: %s); giving up: "
                                  "their leases lapse and the reaper re-runs them: %s",
                                  len(batch), self.give_up_after_s, type(e).__name__, e,
                                  [str(p.job.id) for p in batch[:5]],
                                  exc_info=not isinstance(e, Unavailable))
                        break
                    log.warning("recording %d outcomes failed (%s); retrying in %.2fs",
                                len(batch), e, delay, exc_info=not isinstance(e, Unavailable))
                    await asyncio.sleep(delay)  # backoff while a store is down, not a state wait
                    delay = min(delay * 2, 2.0)
        finally:
            self._flushing = []
            for p in batch:
                if not p.done.done():
                    p.done.set_result(None)

    async def aclose(self, timeout: float | None = None) -> None:
        """Flush what is queued, then stop. With ``timeout``: give up waiting after it (the
        unrecorded jobs' leases then lapse and the reaper re-runs them, as after a give-up)."""
        self._closing = True
        self._wake.set()
        if self._task is None:
            return
        done, _ = await asyncio.wait([self._task], timeout=timeout)
        if not done:
            log.error("recording %d outcomes did not finish in %.1fs at shutdown; abandoning "
                      "it (their leases lapse and the reaper re-runs them):\n%s",
                      len(self.pending), timeout, _task_stack(self._task))
            await stop_task(self._task, self.teardown_step_s)


class Worker:
    def __init__(
        self,
        deps: Deps | WorkerBackend,
        registry: Registry | None = None,
        *,
        queues: list[str] | None = None,
        concurrency: int = 10,
        worker_id: str | None = None,
        prefetch: int | None = None,
        heartbeat_ms: int | None = None,
        group: str | None = None,
    ) -> None:
        #: Where jobs come from and outcomes go: the stores directly, or the HTTP API.
        self.backend: WorkerBackend = DirectBackend(deps) if isinstance(deps, Deps) else deps
        self.registry = registry or default_registry
        self.queues = queues or None  # None: every queue
        self.concurrency = max(1, concurrency)
        self.worker_id = worker_id or new_worker_id()
        #: The worker group this process belongs to (its supervisor's; "default" alone).
        self.group = group or "default"
        #: quiet: claims nothing until resumed (``POST /workers/:id/quiet``); in-flight jobs
        #: run on. ``_halt`` is set while quiet or stopping: it ends a blocking wait for work.
        self.quiet = False
        self._halt = asyncio.Event()
        self._resumed = asyncio.Event()
        #: The last command applied (quiet/stop/restart), so each is applied once.
        self._command: str | None = None
        self.logs = LogTail(tuple(self.backend.settings.mask_keys))
        self.prefetch = prefetch or self.concurrency
        self.heartbeat_ms = heartbeat_ms or max(self.backend.settings.lease_ms // 3, 100)
        self.stats = WorkerStats()
        self.running: dict[uuid.UUID, _Running] = {}
        self.completer = Completer(self.backend, self.stats)
        #: Each shutdown step's bound (see :func:`stop_bound_s`).
        self.teardown_step_s = self.backend.settings.teardown_step_ms / 1000
        self._slot = asyncio.Event()
        self._stop = asyncio.Event()
        self._cold = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=self.concurrency,
                                            thread_name_prefix="jobline-job")
        self._rotate = 0
        self._known: list[str] = []
        self._known_at = 0.0
        self.started = asyncio.Event()
        #: Set once the claim loop and drain are over: the background loops (heartbeat, cancel
        #: listener) end at their next turn even if the ``cancel()`` sent to them is lost.
        self._stop_loops = False
        self._interrupt_task: asyncio.Task[None] | None = None
        #: Cancel signals that arrived before their job was in ``running`` (the publish can beat
        #: ``claim_batch`` returning): job id -> monotonic arrival time.
        self._early_cancels: dict[uuid.UUID, float] = {}
        self.cancel_listening = asyncio.Event()
        #: The job-type registry got this worker's handlers (retried with each heartbeat).
        self._published = False
        #: Types handed to this worker without a handler, not yet noted in the registry.
        self._unhandled: set[str] = set()
        #: The hand-back delay bounds (UNHANDLED_DELAY_MS, UNHANDLED_DELAY_CAP_MS).
        self.unhandled_delay_ms = (UNHANDLED_DELAY_MS, UNHANDLED_DELAY_CAP_MS)
        #: Stores what handlers report with ``ctx.progress``/``ctx.log`` (stores-direct only: a
        #: remote worker's handlers' reports are dropped).
        self._progress: ProgressWriter | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def request_stop(self, *, cold: bool = False) -> None:
        """First call: warm shutdown. ``cold=True`` (or a second call): abandon running jobs now."""
        if self._stop.is_set() or cold:
            self._cold.set()
        self._stop.set()
        self._halt.set()
        self._resumed.set()
        self._slot.set()
        with contextlib.suppress(RuntimeError):
            self._interrupt_task = asyncio.get_running_loop().create_task(self._interrupt())

    async def _interrupt(self) -> None:
        with contextlib.suppress(Exception):
            await self.backend.interrupt(self.worker_id)

    def set_quiet(self, quiet: bool) -> None:
        """Stop claiming (in-flight jobs run on) or claim again. Idempotent."""
        if quiet == self.quiet or self._stop.is_set():
            return
        self.quiet = quiet
        log.info("worker %s %s", self.worker_id, "quiet: claiming nothing" if quiet else "resumed")
        if quiet:
            self._resumed.clear()
            self._halt.set()
            with contextlib.suppress(RuntimeError):
                self._interrupt_task = asyncio.get_running_loop().create_task(self._interrupt())
        else:
            self._halt.clear()
            self._resumed.set()

    def apply_command(self, command: str | None) -> None:
        """A management command read from the stores (or the API's heartbeat answer)."""
        if command == self._command:
            return
        self._command = command
        if command == "quiet":
            self.set_quiet(True)
        elif command is None:
            self.set_quiet(False)
        elif command in ("stop", "restart"):
            log.info("worker %s: %s requested; warm shutdown", self.worker_id, command)
            self.stats.stop_requested = command == "stop"
            self.request_stop()

    async def _read_command(self) -> None:
        try:
            self.apply_command(await self.backend.command(self.worker_id))
        except Exception as e:
            log.warning("reading this worker's command failed: %s", e)

    @property
    def state(self) -> str:
        """starting, idle, busy, draining (quiet or stopping) or stopped."""
        if not self.stats.started_ms:
            return "starting"
        if self._stop_loops:
            return "stopped"
        if self._stop.is_set() or self.quiet:
            return "draining"
        return "busy" if self.running else "idle"

    async def run(self) -> WorkerStats:
        self.logs.install()
        await self.backend.open()
        self.stats.started_ms = self.backend.clock.now_ms()
        self.completer.start()
        if isinstance(self.backend, DirectBackend):
            self._progress = ProgressWriter(self.backend.deps,
                                            self.backend.settings.progress_flush_ms)
            self._progress.start()
        hb = asyncio.create_task(self._heartbeat_loop(), name="jobline-heartbeat")
        cl = asyncio.create_task(self._cancel_listener(), name="jobline-cancel-listener")
        await self._register()
        await self._read_command()
        await self._publish()
        _touch_health_file()
        await self._report("started")
        self.started.set()
        log.info("worker %s started: queues=%s concurrency=%d", self.worker_id,
                 ",".join(self.queues) if self.queues else "*", self.concurrency)
        try:
            await self._claim_loop()
            await self._drain()
        finally:
            # Every step below is bounded (see stop_bound_s): the stop must not depend on a
            # store answering, nor on a cancel() reaching its task. A cancel can be lost: on
            # Python 3.11, asyncio.wait_for (which redis-py wraps around every socket write)
            # returns normally instead of raising CancelledError when the write it guards has
            # just completed, so a loop cancelled at that moment carried on forever.
            self._stop_loops = True
            for t in (hb, cl):
                await stop_task(t, self.teardown_step_s)
            if self._progress is not None:
                await _bounded("storing progress", self._progress.aclose(), self.teardown_step_s)
            await self.completer.aclose(self.completer.give_up_after_s + self.teardown_step_s)
            await _bounded("deregistering", self._deregister(), self.teardown_step_s)
            self.logs.uninstall()
            await _bounded("reporting workers.stopped", self._report("stopped"),
                           self.teardown_step_s)
            await _bounded("closing the backend", self.backend.aclose(), self.teardown_step_s)
            self._executor.shutdown(wait=not self._cold.is_set(), cancel_futures=True)
        log.info("worker %s stopped: processed=%d failed=%d rejected=%d", self.worker_id,
                 self.stats.processed, self.stats.failed, self.stats.rejected)
        return self.stats

    @property
    def stop_bound_s(self) -> float:
        """How long ``run()`` may take to return once the grace period is over (or the handlers
        are done), whatever state the stores are in (:func:`stop_bound_s`). The CLI's watchdog
        forces the process out past grace + this (+ a margin)."""
        return stop_bound_s(self.completer.give_up_after_s, self.teardown_step_s)

    async def _drain(self) -> None:
        """Warm shutdown: wait for running handlers up to the grace period, then give the rest
        back (their attempt is not counted) so another worker can start them at once."""
        if self.running and not self._cold.is_set():
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.backend.settings.shutdown_grace_s
            cold = asyncio.create_task(self._cold.wait())
            while self.running and not self._cold.is_set():
                remaining = deadline - loop.time()
                pending = [r.task for r in self.running.values() if r.task is not None]
                if remaining <= 0 or not pending:
                    break
                await asyncio.wait([*pending, cold], timeout=remaining,
                                   return_when=asyncio.FIRST_COMPLETED)
            cold.cancel()
        leftover = list(self.running.values())
        for r in leftover:
            if r.task is not None:
                r.task.cancel()
        if leftover:
            tasks = [r.task for r in leftover if r.task is not None]
            if tasks:
                # A handler that ignores its cancellation is abandoned, not waited for: its
                # job is released all the same and may run again (like a sync handler's
                # thread at a cold exit).
                _, stuck = await asyncio.wait(tasks, timeout=CANCELLED_HANDLERS_S)
                if stuck:
                    log.warning("%d handlers ignored their cancellation; releasing their "
                                "jobs anyway", len(stuck))
            try:
                n = await asyncio.wait_for(
                    self.backend.release([(r.job.id, r.job.token) for r in leftover]),
                    self.teardown_step_s)
                log.info("released %d unfinished jobs", n)
            except (Unavailable, TimeoutError):
                log.warning("could not release %d jobs; their leases will expire",
                            len(leftover))

    # --- claiming ----------------------------------------------------------------------------

    async def _queues(self) -> list[str]:
        if self.queues is not None:
            return self.queues
        now = time.monotonic()
        if now - self._known_at > 1.0 or not self._known:
            # Jobline's own queues (alert deliveries) are served by their own workers: a
            # worker of "every queue" has no handler for them and would only hand them back late.
            self._known = [q for q in await self.backend.known_queues()
                           if not q.startswith(INTERNAL_QUEUE_PREFIX)]
            self._known_at = now
        return self._known

    async def _claim_loop(self) -> None:
        backoff = 0.05
        #: The last claim's result, or None: claim now.
        res: jobs.ClaimResult | None = None
        while True:
            if res is not None and res.jobs:
                # started even when stopping: a claimed job must run (or drain and be released)
                self.stats.claimed += len(res.jobs)
                for job in res.jobs:
                    self._start(job)
                res = None
            if self._stop.is_set():
                return
            if self.quiet:
                await self._resumed.wait()  # set again by resume or stop
                continue
            free = self.concurrency - len(self.running)
            if free <= 0:
                self._slot.clear()
                await self._slot.wait()
                continue
            if res is None:
                try:
                    res = await self.backend.claim(self.worker_id, await self._queues(),
                                                   min(free, self.prefetch), self._rotate)
                    self._rotate += 1
                    backoff = 0.05
                except Unavailable as e:
                    log.warning("claim failed (%s); retrying in %.2fs", e, backoff)
                    await self._wait_stop(backoff)
                    backoff = min(backoff * 2, 2.0)
                    continue
                if res.jobs:
                    continue
            # Nothing to do: wait for a wake-up, claiming as it arrives.
            timeout = 5.0
            if res.next_due_ms is not None:
                timeout = min(timeout, max(res.next_due_ms - self.backend.clock.now_ms(), 1) / 1000)
            res = await self._wait_and_claim(timeout, min(free, self.prefetch))
            if self.queues is None:
                self._known_at = 0.0  # a wake-up may be for a queue we have not seen yet
            if res is not None and not res.jobs:
                res = None  # claim again at once, with the queue list refreshed

    async def _wait_stop(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _wait_and_claim(self, timeout: float, n: int) -> jobs.ClaimResult | None:
        """Block until a submit wakes us, the next delayed job is due, or stop; the claim rides
        on the same round trip (``WorkerBackend.wait_and_claim``). None after an error.

        The 5 s cap only bounds how long a lost wake-up could delay us; wake-ups normally arrive
        with the submit that makes work available.
        """
        try:
            queues = await self._queues()
        except Unavailable as e:
            log.warning("listing queues failed (%s); retrying", e)
            await self._wait_stop(0.5)
            return None
        waiter = asyncio.create_task(self.backend.wait_and_claim(
            self.worker_id, self.queues, timeout, queues, n, self._rotate))
        self._rotate += 1
        stop = asyncio.create_task(self._halt.wait())  # stop, or quiet
        try:
            done, _ = await asyncio.wait([waiter, stop], return_when=asyncio.FIRST_COMPLETED)
            if waiter not in done and self.backend.interruptible:
                # Stopping: the interrupt ends the wait and its claim takes nothing; let it
                # finish rather than cancel it, so a claim already made is not lost in flight
                # (its jobs then run and drain like any other).
                await asyncio.wait([waiter], timeout=timeout + 1.0)
            if waiter.done():
                exc = waiter.exception()
                if exc is None:
                    return waiter.result()
                log.warning("waiting for work failed (%s); retrying", exc)
                await self._wait_stop(0.5)
            return None
        finally:
            stop.cancel()
            if not waiter.done():
                waiter.cancel()
                with contextlib.suppress(BaseException):
                    await waiter

    # --- running -----------------------------------------------------------------------------

    def _start(self, job: ClaimedJob) -> None:
        ctx = JobContext(id=job.id, queue=job.queue, job_type=job.job_type, attempt=job.attempt,
                         max_attempts=job.max_attempts, worker_id=self.worker_id,
                         execution=job.token)
        if self._progress is not None:
            ctx.reporter = self._progress.reporter(job.id, job.token)
        r = _Running(job, ctx)
        self.running[job.id] = r
        r.task = asyncio.create_task(self._run(r), name=f"job-{job.id}")
        if self._early_cancels.pop(job.id, None) is not None:
            ctx.cancelled.set()
            self._arm_hard_cancel(r)

    async def _run(self, r: _Running) -> None:
        job = r.job
        spec = self.registry.get(job.job_type)
        try:
            outcome = await self._execute(job, r.ctx, spec)
            if r.hard_cancelled:
                # the handler swallowed our CancelledError and returned: still stopped by us
                outcome = self._stopped(job)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not r.hard_cancelled or task is None or task.cancelling() != 1:
                # Cold shutdown (alone or on top of a hard cancel): the caller releases this
                # job's lease.
                raise
            # Only our own grace-period cancel: the attempt ends cancelled, recorded as such.
            outcome = self._stopped(job)
        finally:
            if r.grace is not None:
                r.grace.cancel()
            self.running.pop(job.id, None)
            self._slot.set()
        if (self._progress is not None and r.ctx.reporter is not None
                and self._progress.pending(r.ctx.reporter)):
            # the attempt's last lines are stored before its outcome
            await self._progress.flush(r.ctx.reporter)
        self.completer.add(outcome, job, spec.retry_policy if spec is not None else None)

    def _stopped(self, job: ClaimedJob) -> Outcome:
        """The outcome of an attempt ended by the hard cancel (and the end of that cancel)."""
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            task.uncancel()
        grace = self.backend.settings.cancel_grace_s
        return Outcome(job.id, job.token, ok=False, cancelled=True, error_type="cancelled",
                       error=f"stopped by the worker: the handler was still running {grace:g}s "
                             f"after the cancel request",
                       finished_ms=self.backend.clock.now_ms())

    def _arm_hard_cancel(self, r: _Running) -> None:
        """After the grace period, cancel the task of a cancelled job's async handler that is
        still running. A sync handler runs in a thread Python cannot stop: it is left to finish
        (docs/state-machine.md, "Cancelling a running job")."""
        spec = self.registry.get(r.job.job_type)
        if spec is None or not spec.is_async or r.grace is not None:
            return
        r.grace = asyncio.get_running_loop().call_later(
            max(self.backend.settings.cancel_grace_s, 0.0), self._hard_cancel, r)

    def _hard_cancel(self, r: _Running) -> None:
        if self.running.get(r.job.id) is not r or r.task is None or r.task.done():
            return
        log.warning("job %s: handler still running %.1fs after its cancel; cancelling its task",
                    r.job.id, self.backend.settings.cancel_grace_s)
        r.hard_cancelled = True
        r.task.cancel()

    async def _execute(self, job: ClaimedJob, ctx: JobContext, spec: HandlerSpec | None) -> Outcome:
        clock = self.backend.clock
        if spec is None:
            # Not this worker's job: hand it back without spending an attempt (the release
            # edge, as at a warm shutdown, with a delay), for a worker that has the handler.
            # ``token - attempt`` is how many runs of this job were not counted so far.
            self._unhandled.add(job.job_type)
            base, cap = self.unhandled_delay_ms
            delay = min(base << min(max(job.token - job.attempt, 0), 16), cap)
            return Outcome(job.id, job.token, ok=False, error_type="unknown_job_type",
                           error=f"no handler registered for job type {job.job_type!r} on "
                                 f"worker {self.worker_id}; handed back",
                           retry_after_ms=delay, burn_attempt=False,
                           finished_ms=clock.now_ms())
        timeout_ms = job.timeout_ms or spec.timeout_ms
        try:
            if spec.dependency_results:
                # inside the try: a failed read is a failed (retryable) attempt
                ctx.dependency_results = await self.backend.dependency_results(job.id)
            if spec.is_async:
                coro = spec.func(job.payload, ctx) if spec.wants_context else spec.func(job.payload)
            else:
                call = (functools.partial(spec.func, job.payload, ctx) if spec.wants_context
                        else functools.partial(spec.func, job.payload))
                coro = await self._in_thread(call, timed=bool(timeout_ms))
            if timeout_ms:
                result = await asyncio.wait_for(coro, timeout_ms / 1000)
            else:
                result = await coro
            if ctx.cancelled.observed:
                # The handler saw the cancel and returned: it stopped early, so the job is
                # cancelled, not completed (a handler that never looked completes normally).
                return Outcome(job.id, job.token, ok=False, cancelled=True, error_type="cancelled",
                               error="cancelled while running", finished_ms=clock.now_ms())
            try:
                orjson.dumps(result)
            except TypeError as e:
                return Outcome(job.id, job.token, ok=False, final=True,
                               error_type="serialization_error",
                               error=f"result is not JSON-serialisable: {e}",
                               finished_ms=clock.now_ms())
            return Outcome(job.id, job.token, ok=True, result=result, finished_ms=clock.now_ms(),
                           result_ttl_s=spec.result_ttl_s)
        # Retryable or not is decided by the core from the job's policy (FAIL_JOBS), so it is
        # the same whichever worker ran the job; the handler's own settings go along with the
        # outcome as the policy's third level.
        except TimeoutError:
            return Outcome(job.id, job.token, ok=False, error_type="timeout",
                           error=f"timed out after {timeout_ms} ms", finished_ms=clock.now_ms())
        except Cancelled as e:
            return Outcome(job.id, job.token, ok=False, cancelled=True, error_type="cancelled",
                           error=e.reason, finished_ms=clock.now_ms())
        except Retry as e:
            return Outcome(job.id, job.token, ok=False, error_type=e.error_type, error=e.reason,
                           retry_after_ms=int(e.after * 1000), burn_attempt=e.burn_attempt,
                           finished_ms=clock.now_ms())
        except Unrecoverable as e:
            return Outcome(job.id, job.token, ok=False, final=True, error_type=e.error_type,
                           error=e.reason, finished_ms=clock.now_ms())
        except JobError as e:
            return Outcome(job.id, job.token, ok=False, error_type=e.error_type, error=str(e),
                           finished_ms=clock.now_ms())
        except Exception as e:
            etype = next((t for c, t in _EXC_TYPES.items() if isinstance(e, c)), "error")
            return Outcome(job.id, job.token, ok=False, error_type=etype,
                           error=f"{type(e).__name__}: {e}"[:4000], finished_ms=clock.now_ms())

    async def _in_thread(self, call: Callable[[], Any], *, timed: bool) -> asyncio.Future[Any]:
        """Start ``call`` on the handler thread pool; for a timed job, return only once a thread
        runs it, so its timeout counts the run, not the wait for a thread (a timed-out sync
        handler keeps its thread: Python cannot stop one)."""
        loop = asyncio.get_running_loop()
        if not timed:
            return loop.run_in_executor(self._executor, call)
        running = asyncio.Event()

        def run() -> Any:
            loop.call_soon_threadsafe(running.set)
            return call()

        fut = loop.run_in_executor(self._executor, run)
        started = asyncio.ensure_future(running.wait())
        try:
            await asyncio.wait([fut, started], return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            fut.cancel()  # not started yet: it never will
            raise
        finally:
            started.cancel()
        return fut

    # --- heartbeats --------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        # Ends on _stop_loops as well as on cancel(): a cancel lost in a store call (see run)
        # must not keep it heartbeating, and run() waiting for it, forever.
        while not self._stop_loops:
            await asyncio.sleep(self.heartbeat_ms / 1000)  # a period, not a wait for state
            if self._stop_loops:
                return
            held = [(r.job.queue, r.job.id, r.job.token) for r in self.running.values()]
            held += [(j.queue, j.id, j.token) for j in self.completer.pending]
            try:
                rep = await self.backend.heartbeat(held)
                for job_id in rep.lost:
                    r = self.running.get(job_id)
                    if r is not None:
                        log.warning("lease of job %s lost (cancelled or reaped)", job_id)
                        r.ctx.cancelled.set()
                for job_id in rep.cancel_requested:
                    # the fallback for a cancel signal lost on its way (see cancellation.py)
                    self._cancel_running(job_id)
                horizon = time.monotonic() - 60.0
                for job_id, at in list(self._early_cancels.items()):
                    if at < horizon:  # its job finished before it ever reached running
                        del self._early_cancels[job_id]
                await self._register()
                await self._read_command()
                await self._publish()
                _touch_health_file()
            except Unavailable as e:
                log.warning("heartbeat failed: %s", e)
            except Exception:
                log.exception("heartbeat failed")

    def _cancel_running(self, job_id: uuid.UUID) -> None:
        r = self.running.get(job_id)
        if r is None:
            self._early_cancels[job_id] = time.monotonic()
        elif not r.ctx.cancelled.is_set():
            log.info("cancel requested for running job %s", job_id)
            r.ctx.cancelled.set()
            r.ctx.cancelled.observed = False  # the worker's own look does not count
            self._arm_hard_cancel(r)

    async def _cancel_listener(self) -> None:
        """Receive cancel signals for this worker's jobs (``cancellation.channel``).

        Subscribes on a connection of its own; after a Redis outage it resubscribes, and
        anything missed meanwhile reaches the handlers through the heartbeat instead.
        """
        if not isinstance(self.backend, DirectBackend):
            # A remote worker has no Redis: cancel requests reach it with each heartbeat.
            return
        d = self.backend.deps.dispatch
        name = cancellation.channel(d.prefix, self.worker_id)
        delay = 0.05
        while not self._stop_loops:  # and cancel(); see _heartbeat_loop
            pubsub = d.r.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(name)
                self.cancel_listening.set()
                delay = 0.05
                async for msg in pubsub.listen():
                    if self._stop_loops:
                        return
                    if msg.get("type") != "message":
                        continue
                    data = msg["data"]
                    if data in (NUDGE, NUDGE.encode()):
                        asyncio.get_running_loop().create_task(self._read_command())
                        continue
                    try:
                        job_id = uuid.UUID(data.decode() if isinstance(data, bytes) else data)
                    except ValueError:
                        continue
                    self._cancel_running(job_id)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.cancel_listening.clear()
                log.warning("cancel channel lost (%s); resubscribing in %.2fs", e, delay)
                await asyncio.sleep(delay)  # backoff while Redis is down, not a state wait
                delay = min(delay * 2, 2.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _register(self) -> None:
        info = {
            "id": self.worker_id, "group": self.group, "state": self.state,
            "quiet": self.quiet, "version": __version__,
            "queues": self.queues or ["*"], "concurrency": self.concurrency,
            "pid": os.getpid(), "host": socket.gethostname(), "startedMs": self.stats.started_ms,
            "lastSeenMs": self.backend.clock.now_ms(), "running": len(self.running),
            "currentJobs": [str(i) for i in list(self.running)[:20]],
            "processed": self.stats.processed, "failed": self.stats.failed,
            # what GET /api/v1/job-types lists as served by this worker
            "jobTypes": self.registry.names(),
            **process_usage.sample(),
        }
        await self.backend.register(info, max(3 * self.heartbeat_ms, 1000))
        lines = self.logs.take()
        try:
            await self.backend.push_logs(self.worker_id, lines)
        except Exception:
            self.logs.give_back(lines)
            raise

    def job_type_defaults(self) -> list[JobTypeDefaults]:
        """This worker's handlers as the job-type registry stores them."""
        out = []
        for name in self.registry.names():
            h = self.registry.get(name)
            assert h is not None
            out.append(JobTypeDefaults(
                name, h.queue, h.max_attempts, h.timeout_ms, h.backoff,
                tuple(sorted(h.non_retryable)) if h.non_retryable is not None else None))
        return out

    async def _publish(self) -> None:
        """Publish this worker's handlers once (so submissions that omit queue, attempts,
        timeout or policy get the handler's), and note types it was handed without a handler.
        A failure is logged and retried with the next heartbeat; it never stops the worker."""
        unhandled = sorted(self._unhandled)
        if self._published and not unhandled:
            return
        try:
            await self.backend.job_types([] if self._published else self.job_type_defaults(),
                                         unhandled)
        except Exception as e:
            log.warning("publishing job types failed (%s); retrying with the next heartbeat", e)
            return
        self._published = True
        self._unhandled.difference_update(unhandled)

    async def _report(self, what: str) -> None:
        """workers.started / workers.stopped events; never a reason to fail the worker."""
        info = {"queues": self.queues or ["*"], "concurrency": self.concurrency,
                "host": socket.gethostname(), "pid": os.getpid(),
                "processed": self.stats.processed, "failed": self.stats.failed}
        if not isinstance(self.backend, DirectBackend):
            return  # a remote worker has no outbox access; its API heartbeats show it instead
        deps = self.backend.deps
        try:
            if what == "started":
                await worker_events.worker_started(deps, self.worker_id, info)
            else:
                await worker_events.worker_stopped(deps, self.worker_id, info)
        except Exception as e:
            log.warning("could not record workers.%s: %s", what, e)

    async def _deregister(self) -> None:
        with contextlib.suppress(Exception):  # the last lines, best effort
            await self.backend.push_logs(self.worker_id, self.logs.take())
        await self.backend.deregister(self.worker_id)


async def stop_task(task: asyncio.Task[Any], timeout: float) -> bool:
    """Cancel ``task`` and wait up to ``timeout`` for it to end; False (logged, with its stack)
    if it did not.

    The cancel is repeated while waiting: one ``cancel()`` is not enough on Python 3.11, whose
    ``asyncio.wait_for`` drops a cancellation that arrives just as the awaited operation
    completes (fixed in 3.12). Never raises the task's own exception.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not task.done():
        task.cancel()
        remaining = deadline - loop.time()
        if remaining <= 0:
            log.error("task %s did not stop within %.1fs of being cancelled; abandoning it:\n%s",
                      task.get_name(), timeout, _task_stack(task))
            return False
        await asyncio.wait([task], timeout=min(remaining, 0.1))
    if not task.cancelled() and task.exception() is not None:
        log.warning("task %s ended with %r", task.get_name(), task.exception())
    return True


async def _bounded(what: str, aw: Awaitable[Any], timeout: float) -> None:
    """Await ``aw`` for at most ``timeout``; a failure or a timeout is logged, never raised
    (a shutdown step must not stop the steps after it)."""
    task = asyncio.ensure_future(aw)
    done, _ = await asyncio.wait([task], timeout=timeout)
    if not done:
        log.warning("shutdown: %s did not finish in %.1fs; abandoning it", what, timeout)
        await stop_task(task, ABANDON_S)
    elif not task.cancelled() and task.exception() is not None:
        log.warning("shutdown: %s failed: %r", what, task.exception())


def _task_stack(task: asyncio.Task[Any]) -> str:
    buf = io.StringIO()
    task.print_stack(file=buf)
    return buf.getvalue()


def _touch_health_file() -> None:
    """A container health check reads this file's age: it is touched after every heartbeat that
    reached the stores (or the API), so a hung loop or a lost connection turns it stale."""
    path = os.environ.get("JOBLINE_HEALTH_FILE")
    if path:
        with open(path, "a"):
            os.utime(path)

