"""The in-process Python client: the core operations behind a small, typed facade (no HTTP).

    async with jobline.Client.connect() as client:
        sub = await client.submit("send_welcome_email", {"userId": 123}, priority=7)
        job = await client.wait(sub.id)

Single submissions go through a :class:`GroupCommitter`, so many concurrent ``submit`` calls in
one process share INSERTs exactly like concurrent API requests do. Defaults for ``queue``,
``max_attempts``, ``timeout`` and the retry policy come from the job-type registry (what the
workers' ``@job`` handlers published, resolved in SQL: docs/job-types.md), then from the handler
registered with ``@job`` in this process, so a producer and its worker agree without repeating
themselves (``max_attempts`` ranks below a stored per-type retry policy: docs/retry-policy.md).
"""

from __future__ import annotations

import asyncio
import builtins
import uuid
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from jobline.shared.core import jobs as core
from jobline.shared.core.group_commit import GroupCommitter
from jobline.shared.core.jobs import JobPage, SubmitResult
from jobline.shared.core.models import PRIORITY_DEFAULT, TERMINAL, Job, JobSpec, Status
from jobline.shared.core.validation import check_spec
from jobline.shared.dispatch import queue_controls as qcore
from jobline.shared.dispatch import rate_limits
from jobline.shared.dispatch.redis_dispatch import QueueControls
from jobline.shared.flow import batches, dag
from jobline.shared.platform.clock import Clock, from_dt
from jobline.shared.platform.config import Settings, load
from jobline.shared.platform.connections import Deps, connect
from jobline.shared.platform.errors import ValidationFailed
from jobline.shared.retry import dlq
from jobline.shared.retry import policy_store as policies
from jobline.shared.retry.dlq import DlqFilter
from jobline.shared.retry.policy import RetryPolicy, StoredRetryPolicy
from jobline.shared.schedules import recurring as sched
from jobline.worker.registry import Registry, default_registry, parse_duration_ms

if TYPE_CHECKING:
    from jobline.http_client import HttpClient
    from jobline.shared.core.job_types import JobType

Seconds = float | int | timedelta

#: ``wait`` polls with exponential backoff between these bounds (seconds).
_WAIT_MIN_S = 0.005
_WAIT_MAX_S = 0.2


@dataclass(frozen=True, slots=True)
class SubmittedJob:
    id: uuid.UUID
    status: Status
    queue: str
    #: 1-based position in the ready queue right after submission; None when delayed/duplicate.
    queue_position: int | None
    #: True when the idempotency key was already used: ``id`` is the existing job.
    duplicate: bool = False

    @classmethod
    def of(cls, r: SubmitResult) -> SubmittedJob:
        s = r.submitted
        return cls(s.id, s.status, s.queue, None if s.duplicate else r.queue_position,
                   s.duplicate)


def _seconds(value: Seconds | str | None) -> int | None:
    """Whole seconds of a duration given as seconds, a ``timedelta`` or ``"1h"``."""
    if value is None:
        return None
    ms = parse_duration_ms(value) if isinstance(value, str) else _ms(value)
    return ms // 1000 if ms is not None else None


def _ms(value: Seconds | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value // timedelta(milliseconds=1)
    # rounded: 4.35 * 1000 is 4349.999...; REST's delayMs=4350 must not become 4349
    return round(value * 1000)


def _job_id(job_id: uuid.UUID | str) -> uuid.UUID:
    return job_id if isinstance(job_id, uuid.UUID) else uuid.UUID(str(job_id))


#: ``submit_many`` items may use the REST body's camelCase keys: key -> (argument, conversion).
#: The ``...Ms`` keys are milliseconds, as in REST; ``delay``/``timeout`` are seconds.
_REST_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "jobType": ("job_type", lambda v: v), "maxAttempts": ("max_attempts", lambda v: v),
    "scheduledFor": ("scheduled_for",
                     lambda v: datetime.fromisoformat(v) if isinstance(v, str) else v),
    "delayMs": ("delay", lambda v: timedelta(milliseconds=v) if isinstance(v, int) else v),
    "timeoutMs": ("timeout", lambda v: timedelta(milliseconds=v) if isinstance(v, int) else v),
    "idempotencyKey": ("idempotency_key", lambda v: v),
    "nonRetryable": ("non_retryable", lambda v: v), "dependsOn": ("depends_on", lambda v: v)}
_ITEM_KEYS = ("job_type", "payload", "queue", "priority", "max_attempts", "delay",
              "scheduled_for", "timeout", "idempotency_key", "backoff", "non_retryable",
              "depends_on", "adaptive")


def _spec_args(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A ``submit_many`` item as :meth:`Client.spec` arguments. REST's camelCase keys are
    accepted too; an unknown key is refused by name, saying which keys there are."""
    if not isinstance(item, Mapping):
        raise TypeError(f"{where.rstrip('.')}: an item must be a dict or a JobSpec, "
                        f"not {type(item).__name__}")
    args: dict[str, Any] = {}
    for key, value in item.items():
        name, convert = _REST_KEYS.get(key, (key, lambda v: v))
        if name not in _ITEM_KEYS:
            raise ValidationFailed(f"{where}{key}", "unknown key; use one of "
                                   + ", ".join(_ITEM_KEYS) + " (or REST's camelCase names)")
        if name in args:
            raise ValidationFailed(f"{where}{key}", f"given twice (as {name!r} too)")
        args[name] = convert(value)
    return args


def _check_payload(payload: object) -> None:
    # dict() of a list or a string fails with a message about "update sequence elements".
    if payload is not None and not isinstance(payload, Mapping):
        raise TypeError(f"payload must be a dict (a JSON object), not {type(payload).__name__}")


class _Connecting:
    """What :meth:`Client.connect` returns: awaitable (``await Client.connect()``) and an async
    context manager (``async with Client.connect() as c``) that closes the client on exit."""

    def __init__(self, settings: Settings | None, clock: Clock | None) -> None:
        self._settings = settings
        self._clock = clock
        self._client: Client | None = None

    async def _open(self) -> Client:
        settings = self._settings or load()
        deps = await (connect(settings, self._clock) if self._clock is not None
                      else connect(settings))
        return Client(deps, owns_deps=True)

    def __await__(self) -> Generator[Any, None, Client]:
        return self._open().__await__()

    async def __aenter__(self) -> Client:
        self._client = await self._open()
        return self._client

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


class Client:
    """Submit, inspect and steer jobs from Python code in the same process as the core."""

    def __init__(self, deps: Deps, *, owns_deps: bool = False,
                 registry: Registry | None = None) -> None:
        self.deps = deps
        self._owns_deps = owns_deps
        self._registry = registry if registry is not None else default_registry
        #: Coalesces concurrent ``submit`` calls (its ``flushes`` counts INSERT round trips).
        self.committer = GroupCommitter(deps)
        self._closed = False

    @classmethod
    def connect(cls, settings: Settings | None = None, *, clock: Clock | None = None
                ) -> _Connecting:
        """Open connections for ``settings`` (default: from the environment).

        Use as ``client = await Client.connect()`` (then ``await client.close()``) or as
        ``async with Client.connect() as client``.
        """
        return _Connecting(settings, clock)

    @staticmethod
    def http(url: str, api_key: str | None = None, **kwargs: Any) -> HttpClient:
        """A client of the same shape over the REST API at ``url`` (``jobline.http_client``),
        for code that cannot reach Postgres and Redis."""
        from jobline.http_client import HttpClient

        return HttpClient(url, api_key, **kwargs)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Flush pending submissions, then close the connections if this client opened them."""
        if self._closed:
            return
        self._closed = True
        await self.committer.aclose()
        if self._owns_deps:
            await self.deps.close()

    # --- submission -----------------------------------------------------------------------

    def spec(self, job_type: str, payload: Mapping[str, Any] | None = None, *,
             queue: str | None = None, priority: int = PRIORITY_DEFAULT,
             max_attempts: int | None = None, delay: Seconds | None = None,
             scheduled_for: datetime | None = None, timeout: Seconds | str | None = None,
             idempotency_key: str | None = None,
             backoff: Mapping[str, Any] | None = None,
             non_retryable: Sequence[str] | None = None,
             depends_on: Sequence[uuid.UUID | str | int] = (),
             result_ttl: Seconds | str | None = None,
             adaptive: bool | None = None) -> JobSpec:
        """Build the :class:`JobSpec` ``submit`` would store (handler defaults applied).

        A naive ``scheduled_for`` is taken as UTC. ``depends_on`` holds job ids; in
        ``submit_many``/``submit_batch`` an int is the index of an earlier item.
        ``result_ttl`` (seconds, a ``timedelta`` or ``"1h"``) is how long the result is kept
        (0: kept; None: the handler's ``@job(result_ttl=...)``, else the server default).
        ``adaptive`` hands this job's retry decisions to the advisor (None: the job type's
        policy decides).
        """
        _check_payload(payload)
        if delay is not None and scheduled_for is not None:
            raise ValidationFailed("delay", "give either delay or scheduled_for, not both")
        handler = self._registry.get(job_type)
        queue_given = queue is not None
        if queue is None:
            # below the registry's queue, resolved in SQL
            queue = handler.queue if handler is not None else "default"
        timeout_ms = (parse_duration_ms(timeout) if isinstance(timeout, str | int | float)
                      else _ms(timeout))
        due: int | None = None
        delay_ms: int | None = None
        if scheduled_for is not None:
            due = from_dt(scheduled_for)
        elif delay is not None:
            delay_ms = _ms(delay)
            if delay_ms is not None and delay_ms < 0:
                raise ValidationFailed("delay", "must be >= 0")
        return JobSpec(queue=queue, job_type=job_type, payload=dict(payload or {}),
                       priority=priority, max_attempts=max_attempts, scheduled_for_ms=due,
                       delay_ms=delay_ms,
                       timeout_ms=timeout_ms, idempotency_key=idempotency_key,
                       backoff=({**(backoff or {}), "adaptive": adaptive}
                                if adaptive is not None else dict(backoff) if backoff else None),
                       non_retryable=tuple(non_retryable) if non_retryable is not None else None,
                       # below the stored per-type policy, unlike an explicit max_attempts
                       handler_max_attempts=handler.max_attempts if handler is not None else None,
                       queue_given=queue_given,
                       handler_timeout_ms=handler.timeout_ms if handler is not None else None,
                       depends_on=tuple(d if isinstance(d, int) else _job_id(d)
                                        for d in depends_on),
                       result_ttl_s=_seconds(result_ttl))

    async def submit(self, job_type: str, payload: Mapping[str, Any] | None = None, *,
                     queue: str | None = None, priority: int = PRIORITY_DEFAULT,
                     max_attempts: int | None = None, delay: Seconds | None = None,
                     scheduled_for: datetime | None = None,
                     # the job's run-time limit, not this call's
                     timeout: Seconds | str | None = None,
                     idempotency_key: str | None = None,
                     backoff: Mapping[str, Any] | None = None,
                     non_retryable: Sequence[str] | None = None,
                     depends_on: Sequence[uuid.UUID | str] = (),
                     result_ttl: Seconds | str | None = None,
                     adaptive: bool | None = None) -> SubmittedJob:
        """Submit one job; returns after it is committed. ``delay``/``timeout`` are seconds
        (or a ``timedelta``; ``timeout`` also takes ``"30s"``-style strings). With
        ``depends_on`` the job stays ``waiting`` until those jobs complete."""
        spec = self.spec(job_type, payload, queue=queue, priority=priority,
                         max_attempts=max_attempts, delay=delay, scheduled_for=scheduled_for,
                         timeout=timeout, idempotency_key=idempotency_key, backoff=backoff,
                         non_retryable=non_retryable, depends_on=depends_on,
                         result_ttl=result_ttl, adaptive=adaptive)
        return SubmittedJob.of(await self.committer.submit(spec))

    async def submit_many(self, items: Sequence[JobSpec | Mapping[str, Any]]
                          ) -> list[SubmittedJob]:
        """Submit a batch in one transaction, all or nothing.

        Each item is a :class:`JobSpec` or a dict of :meth:`submit`'s arguments
        (``{"job_type": ..., "payload": ..., "priority": ...}``) or of the REST body's keys
        (``{"jobType": ..., "delayMs": ...}``: milliseconds where REST has them). Errors name
        ``jobs[i].field``; an unknown key is refused, naming the keys there are.
        """
        specs = [self._item_spec(item, f"jobs[{i}].") for i, item in enumerate(items)]
        return [SubmittedJob.of(r) for r in
                await core.submit_many(self.deps, specs, positions=True)]

    def _item_spec(self, item: JobSpec | Mapping[str, Any], where: str) -> JobSpec:
        if isinstance(item, JobSpec):
            spec = item
        else:
            args = _spec_args(item, where)
            try:
                job_type = args.pop("job_type")
            except KeyError:
                raise ValidationFailed(f"{where}jobType", "is required") from None
            _check_payload(args.get("payload"))
            try:
                spec = self.spec(job_type, args.pop("payload", None), **args)
            except ValidationFailed as e:
                raise ValidationFailed(f"{where}{e.field}", e.message) from None
        check_spec(spec, self.deps.settings, where)
        return spec

    # --- batches and dependencies ----------------------------------------------------------

    async def submit_batch(self, name: str, items: Sequence[JobSpec | Mapping[str, Any]], *,
                           on_complete: JobSpec | Mapping[str, Any] | None = None
                           ) -> batches.BatchCreated:
        """Submit ``items`` as one batch (all or nothing). ``on_complete`` (same forms as an
        item) is submitted once every job of the batch has finished, successfully or not."""
        specs = [self._item_spec(item, f"jobs[{i}].") for i, item in enumerate(items)]
        done = (self._item_spec(on_complete, "onComplete.") if on_complete is not None
                else None)
        return await batches.create_batch(self.deps, name, specs, done)

    async def batch(self, batch_id: uuid.UUID | str) -> batches.BatchStatus:
        """Progress of a batch: completed / failed / pending / processing counts and status."""
        return await batches.get_batch(self.deps, _job_id(batch_id))

    async def graph(self, job_id: uuid.UUID | str) -> dag.Graph:
        """The dependency DAG around a job (its ancestors and descendants)."""
        return await dag.job_graph(self.deps, _job_id(job_id))

    # --- reads and manual transitions ----------------------------------------------------

    async def get(self, job_id: uuid.UUID | str) -> Job:
        return await core.get_job(self.deps, _job_id(job_id))

    async def list(self, *, queue: str | None = None, status: Status | str | None = None,
                   job_type: str | None = None, page: int = 1, page_size: int = 50,
                   cursor: str | None = None) -> JobPage:
        return await core.list_jobs(
            self.deps, queue=queue, status=str(status) if status is not None else None,
            job_type=job_type, page=page, page_size=page_size, cursor=cursor)

    async def cancel(self, job_id: uuid.UUID | str) -> Status:
        """``CANCELLED``, or ``PROCESSING`` for a running job: its handler was asked to stop
        (``ctx.cancelled``) and the job ends cancelled once it does."""
        return await core.cancel(self.deps, _job_id(job_id))

    # --- retry policies ------------------------------------------------------------------

    async def set_retry_policy(self, job_type: str, *, max_attempts: int | None = None,
                               backoff: Mapping[str, Any] | None = None,
                               non_retryable: Sequence[str] | None = None,
                               adaptive: bool | None = None) -> StoredRetryPolicy:
        """Store (replace) ``job_type``'s policy; unset fields fall through to the handler
        decorator and the global settings. ``adaptive`` hands retry decisions to the
        advisor."""
        return await policies.put_retry_policy(self.deps, job_type, RetryPolicy(
            max_attempts, dict(backoff) if backoff is not None else None,
            tuple(non_retryable) if non_retryable is not None else None, adaptive))

    async def retry_policy(self, job_type: str) -> StoredRetryPolicy:
        return await policies.get_retry_policy(self.deps, job_type)

    async def retry_policies(self) -> builtins.list[StoredRetryPolicy]:
        return await policies.list_retry_policies(self.deps)

    async def delete_retry_policy(self, job_type: str) -> None:
        await policies.delete_retry_policy(self.deps, job_type)

    async def retry(self, job_id: uuid.UUID | str) -> Status:
        return await core.retry_now(self.deps, _job_id(job_id))

    async def queues(self) -> builtins.list[dict[str, Any]]:
        return await core.queue_stats(self.deps)

    async def job_types(self) -> builtins.list[JobType]:
        """The job-type registry: each type's registered defaults and its live workers."""
        from jobline.shared.core import job_types

        return await job_types.list_job_types(self.deps)

    async def purge_queue(self, queue: str) -> int:
        """Cancel every pending and scheduled job of ``queue`` (running ones are left to
        finish); returns how many were cancelled."""
        return await core.purge_queue(self.deps, queue)

    async def pause_queue(self, queue: str) -> QueueControls:
        """Stop claims from ``queue``; running jobs finish normally."""
        return await qcore.pause_queue(self.deps, queue)

    async def resume_queue(self, queue: str) -> QueueControls:
        return await qcore.resume_queue(self.deps, queue)

    async def set_queue_limits(self, queue: str, *, max_in_flight: int | None) -> QueueControls:
        """Cap ``queue``'s jobs in flight across all workers (None removes the cap)."""
        return await qcore.set_queue_limits(self.deps, queue, max_in_flight=max_in_flight)

    async def set_rate_limit(self, queue: str, *, limit: int, window_ms: int) -> QueueControls:
        """At most ``limit`` job starts from ``queue`` in any ``window_ms``, across all workers."""
        return await rate_limits.set_rate_limit(self.deps, queue, limit=limit,
                                                window_ms=window_ms)

    async def clear_rate_limit(self, queue: str) -> QueueControls:
        return await rate_limits.clear_rate_limit(self.deps, queue)

    # --- cron schedules ------------------------------------------------------------------

    async def create_schedule(self, name: str, job_type: str, schedule: str,
                              payload: Mapping[str, Any] | None = None, *,
                              queue: str | None = None, timezone: str = "UTC",
                              enabled: bool = True, overlap_policy: str = "allow",
                              catch_up: str = "run_once", priority: int = PRIORITY_DEFAULT,
                              max_attempts: int | None = None,
                              timeout_ms: int | None = None) -> sched.Schedule:
        """Submit ``job_type`` on a cron ``schedule`` (5 fields, or 6 with seconds first) in
        ``timezone``. The queue defaults to the one the handler is registered for."""
        if queue is None:
            handler = self._registry.get(job_type)
            queue = handler.queue if handler is not None else "default"
        return await sched.create_schedule(self.deps, sched.ScheduleSpec(
            name=name, queue=queue, job_type=job_type, payload=dict(payload or {}),
            schedule=schedule, timezone=timezone, enabled=enabled,
            overlap_policy=overlap_policy, catch_up=catch_up, priority=priority,
            max_attempts=max_attempts, timeout_ms=timeout_ms))

    async def schedules(self) -> builtins.list[sched.Schedule]:
        return await sched.list_schedules(self.deps)

    async def get_schedule(self, schedule_id: uuid.UUID | str) -> sched.Schedule:
        return await sched.get_schedule(self.deps, _job_id(schedule_id))

    async def update_schedule(self, schedule_id: uuid.UUID | str,
                              **changes: Any) -> sched.Schedule:
        """Change fields by their ``create_schedule`` names (``enabled=False``, ...)."""
        return await sched.update_schedule(self.deps, _job_id(schedule_id), changes)

    async def delete_schedule(self, schedule_id: uuid.UUID | str) -> None:
        await sched.delete_schedule(self.deps, _job_id(schedule_id))

    # --- dead-letter queue ---------------------------------------------------------------

    async def dead_letters(self, *, queue: str | None = None, job_type: str | None = None,
                           error_type: str | None = None, since: datetime | None = None,
                           until: datetime | None = None, cursor: str | None = None,
                           page_size: int = 50) -> JobPage:
        """Dead-lettered jobs, newest first; ``since``/``until`` bound when they died."""
        f = self._dlq_filter(None, queue, job_type, error_type, since, until)
        return await dlq.list_dead_letters(self.deps, f, limit=page_size,
                                           cursor=_job_id(cursor) if cursor else None)

    async def retry_from_dlq(self, job_id: uuid.UUID | str) -> Status:
        return await dlq.retry_from_dlq(self.deps, _job_id(job_id))

    async def retry_dead_letters(self, ids: Sequence[uuid.UUID | str] | None = None, *,
                                 queue: str | None = None, job_type: str | None = None,
                                 error_type: str | None = None, since: datetime | None = None,
                                 until: datetime | None = None) -> builtins.list[uuid.UUID]:
        """Retry by ids, or every dead-lettered job matching the filter (one set-based update).
        With neither, every dead-lettered job is retried."""
        f = self._dlq_filter(ids, queue, job_type, error_type, since, until)
        return await dlq.retry_dead_letters(self.deps, f)

    async def delete_dead_letters(self, ids: Sequence[uuid.UUID | str] | None = None, *,
                                  queue: str | None = None, job_type: str | None = None,
                                  error_type: str | None = None, since: datetime | None = None,
                                  until: datetime | None = None) -> builtins.list[uuid.UUID]:
        f = self._dlq_filter(ids, queue, job_type, error_type, since, until)
        return await dlq.delete_dead_letters(self.deps, f)

    @staticmethod
    def _dlq_filter(ids: Sequence[uuid.UUID | str] | None, queue: str | None,
                    job_type: str | None, error_type: str | None, since: datetime | None,
                    until: datetime | None) -> DlqFilter:
        return DlqFilter(ids=tuple(_job_id(i) for i in ids) if ids is not None else None,
                         queue=queue, job_type=job_type, error_type=error_type,
                         from_ms=from_dt(since) if since is not None else None,
                         to_ms=from_dt(until) if until is not None else None)

    async def wait(self, job_id: uuid.UUID | str, timeout: float = 30.0) -> Job:
        """Wait until the job is terminal (completed, failed, dead-lettered, cancelled).

        Polls Postgres with exponential backoff from 5 ms up to 200 ms: a short job is seen
        within milliseconds while a long wait costs at most five cheap primary-key reads a
        second. (A push channel would avoid polling; this is a convenience for scripts and
        tests, not the hot path.) Raises :class:`TimeoutError` after ``timeout`` seconds.
        """
        jid = _job_id(job_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = _WAIT_MIN_S
        while True:
            job = await core.get_job(self.deps, jid, history=False)
            if job.status in TERMINAL:
                return await core.get_job(self.deps, jid)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"job {jid} still {job.status.value} after {timeout}s")
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, _WAIT_MAX_S)


__all__ = ["Client", "SubmittedJob"]
