"""Job handler registration: ``@job("send_welcome_email", queue="email", max_attempts=3, timeout="30s")``.

A handler is a plain function taking the payload (and optionally a :class:`JobContext`); async
handlers run on the worker's event loop, sync ones in a thread pool. Registration only records
metadata; nothing runs at import time.

``@job`` returns a :class:`JobTask`: calling it runs the function (as before), and
``.delay(**payload)`` / ``.enqueue(payload, **options)`` submit it from sync code,
``await .enqueue_async(payload, **options)`` from async code, through the default client
(:func:`set_default_client`, else a :class:`~jobline.sync_client.SyncClient` connected from the
environment on first use).
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import inspect
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar

from jobline.shared.platform.errors import ValidationFailed
from jobline.shared.retry.policy import RetryPolicy, check_policy

if TYPE_CHECKING:
    from jobline.client import Client, SubmittedJob
    from jobline.sync_client import SyncClient

P = ParamSpec("P")
R = TypeVar("R")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, None: 1000}


def parse_duration_ms(value: str | float | int | None) -> int | None:
    """``"30s"`` -> 30000; bare numbers are seconds."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return int(value * 1000)
    m = _DURATION.match(value)
    if not m:
        raise ValueError(f"invalid duration {value!r} (use e.g. '500ms', '30s', '5m')")
    return int(float(m.group(1)) * _UNIT_MS[m.group(2)])


class CancelSignal(asyncio.Event):
    """``JobContext.cancelled``: an :class:`asyncio.Event` that remembers whether the handler saw
    it set. A handler that observed the cancel (``is_set()`` returned True, or ``wait()``
    returned) and then returns ends the job ``cancelled``; one that never looked finishes
    normally. Reading it from a sync handler's thread is safe (a plain flag read).
    """

    observed = False

    def is_set(self) -> bool:
        value = super().is_set()
        if value:
            self.observed = True
        return value

    async def wait(self) -> Literal[True]:
        await super().wait()
        self.observed = True
        return True


@dataclass
class JobContext:
    """What a running handler may know about its job."""

    id: uuid.UUID
    queue: str
    job_type: str
    attempt: int
    max_attempts: int
    worker_id: str
    #: How many times this job has been started in total (the fencing token). Unlike ``attempt``
    #: it also counts runs that did not use up an attempt (rate-limited retries, releases).
    execution: int = 1
    #: Set when a cancel of this running job was requested (or its lease was lost). Handlers
    #: check it cooperatively: stop, then return or raise ``Cancelled`` (docs/state-machine.md).
    cancelled: CancelSignal = field(default_factory=CancelSignal)
    #: ``{dependency job id: its result}`` for a job submitted with ``dependsOn`` whose handler
    #: asked for them (``@job(..., dependency_results=True)``); empty otherwise.
    dependency_results: dict[str, Any] = field(default_factory=dict)
    #: Where ``progress``/``log`` go (set by the worker; None: reports are dropped, e.g. a
    #: context built by hand in a test).
    reporter: Any = field(default=None, repr=False, compare=False)

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report how far the job is, ``fraction`` in [0, 1], with an optional short message.

        Cheap and non-blocking (callable from sync handlers too): the worker coalesces reports
        and stores the latest with this attempt, shown live in the dashboard and GraphQL.
        """
        if self.reporter is not None:
            self.reporter.progress(fraction, message)

    def log(self, *parts: object, sep: str = " ") -> None:
        """Add a log line to this attempt (``print``-like). The last 100 lines are kept, each
        cut to 1,000 characters and masked like error messages."""
        if self.reporter is not None:
            self.reporter.log(sep.join(str(p) for p in parts))


@dataclass(frozen=True)
class HandlerSpec:
    name: str
    func: Callable[..., Any]
    queue: str
    max_attempts: int | None
    timeout_ms: int | None
    is_async: bool
    wants_context: bool
    #: Error types that are never retried; None defers to the global setting.
    non_retryable: frozenset[str] | None = None
    #: Backoff settings (``baseMs``, ``factor``, ``capMs``, ``jitter``); None = not set.
    backoff: dict[str, Any] | None = None
    #: Fetch the dependencies' results into ``JobContext.dependency_results`` before running.
    dependency_results: bool = False
    #: Seconds this type's results are kept when the submission sets no ``resultTtl`` (None:
    #: the global default; 0: kept).
    result_ttl_s: int | None = None

    @property
    def retry_policy(self) -> RetryPolicy:
        """This handler's level of the retry policy (below the submission and stored policy)."""
        return RetryPolicy(self.max_attempts, self.backoff,
                           tuple(sorted(self.non_retryable))
                           if self.non_retryable is not None else None)


class Registry:
    def __init__(self) -> None:
        self._handlers: dict[str, HandlerSpec] = {}

    def job(
        self,
        name: str,
        *,
        queue: str = "default",
        max_attempts: int | None = None,
        timeout: str | float | None = None,
        non_retryable: tuple[str, ...] | list[str] | None = None,
        backoff: Mapping[str, Any] | None = None,
        dependency_results: bool = False,
        result_ttl: str | float | None = None,
    ) -> Callable[[Callable[P, R]], JobTask[P, R]]:
        """Register a handler. ``max_attempts``, ``backoff`` and ``non_retryable`` are this
        handler's retry policy: they apply where neither the submission nor a stored per-type
        policy sets them (``non_retryable`` None = the global default, ``validation_error``).
        ``dependency_results=True``: a job submitted with ``dependsOn`` gets its dependencies'
        results in ``ctx.dependency_results`` (one extra read per job, so opt-in).
        ``result_ttl`` (``"1h"``, or seconds) is how long this type's results are kept when the
        submission sets no ``resultTtl`` (None: ``JOBLINE_RESULT_TTL_S``; 0: kept)."""
        try:
            ttl_ms = parse_duration_ms(result_ttl)
        except ValueError as e:
            raise ValueError(f"@job({name!r}): result_ttl: {e}") from None
        if ttl_ms is not None and ttl_ms < 0:
            raise ValueError(f"@job({name!r}): result_ttl must be >= 0")
        try:
            policy = check_policy(RetryPolicy(
                max_attempts, dict(backoff) if backoff is not None else None,
                tuple(non_retryable) if non_retryable is not None else None))
        except ValidationFailed as e:
            raise ValueError(f"@job({name!r}): {e}") from None

        def decorate(func: Callable[P, R]) -> JobTask[P, R]:
            params = list(inspect.signature(func).parameters)
            self._handlers[name] = HandlerSpec(
                name=name,
                func=func,
                queue=queue,
                max_attempts=max_attempts,
                timeout_ms=parse_duration_ms(timeout),
                is_async=inspect.iscoroutinefunction(func),
                wants_context=len(params) >= 2,
                non_retryable=frozenset(policy.non_retryable)
                if policy.non_retryable is not None else None,
                backoff=policy.backoff,
                dependency_results=dependency_results,
                result_ttl_s=ttl_ms // 1000 if ttl_ms is not None else None,
            )
            return JobTask(name, func)

        return decorate

    def get(self, name: str) -> HandlerSpec | None:
        return self._handlers.get(name)

    def names(self) -> list[str]:
        return sorted(self._handlers)

    def queues(self) -> list[str]:
        return sorted({h.queue for h in self._handlers.values()})

    def __contains__(self, name: str) -> bool:
        return name in self._handlers


class JobTask(Generic[P, R]):
    """What ``@job`` returns: the handler, callable as before, that can also submit itself.

    Options are :meth:`jobline.Client.submit`'s (the REST fields): ``queue``, ``priority``,
    ``max_attempts``, ``delay``, ``scheduled_for``, ``timeout``, ``idempotency_key``,
    ``backoff``, ``non_retryable``, ``depends_on``; one omitted gets the job type's registered
    value (docs/job-types.md). ``client=`` picks a client for one call.
    """

    def __init__(self, name: str, func: Callable[P, R]) -> None:
        self.name = name
        self.func = func
        functools.update_wrapper(self, func)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<JobTask {self.name!r}>"

    def delay(self, **payload: Any) -> SubmittedJob:
        """Submit with ``payload`` as keyword arguments and every option at its default."""
        return self.enqueue(payload)

    def enqueue(self, payload: Mapping[str, Any] | None = None, *,
                client: SyncClient | None = None, **options: Any) -> SubmittedJob:
        """Submit from sync code; returns once the job is committed."""
        c = client if client is not None else default_sync_client()
        result: SubmittedJob = c.submit(self.name, payload, **options)
        return result

    async def enqueue_async(self, payload: Mapping[str, Any] | None = None, *,
                            client: Client | SyncClient | None = None,
                            **options: Any) -> SubmittedJob:
        """Submit from async code (an async default client, else the sync one's loop)."""
        from jobline.sync_client import SyncClient

        c = client if client is not None else _default_client
        if c is None:
            c = default_sync_client()
        if isinstance(c, SyncClient):
            result: SubmittedJob = await c.submit_coroutine(
                c.client.submit(self.name, payload, **options))
            return result
        return await c.submit(self.name, payload, **options)


_default_client: Any = None
_default_lock = threading.Lock()


def set_default_client(client: Client | SyncClient | None) -> None:
    """The client ``task.delay``/``enqueue``/``enqueue_async`` use (None: connect from the
    environment on first use). An async :class:`~jobline.client.Client` serves only
    ``enqueue_async`` (on its own loop); a :class:`~jobline.sync_client.SyncClient` serves both."""
    global _default_client
    with _default_lock:
        _default_client = client


def default_sync_client() -> SyncClient:
    """The default client for sync submissions, connected from the environment on first use."""
    global _default_client
    from jobline.sync_client import SyncClient

    with _default_lock:
        if _default_client is None:
            _default_client = SyncClient.connect()
            # Nobody else holds this client, so nobody would close it: at interpreter exit its
            # loop thread (a daemon) would die with the group-commit task pending ("Task was
            # destroyed but it is pending!") and a submission still in the batch unflushed.
            atexit.register(_default_client.close)
        if not isinstance(_default_client, SyncClient):
            raise RuntimeError("the default client is async: use `await task.enqueue_async()`, "
                               "or set_default_client(jobline.SyncClient.connect())")
        return _default_client


#: The process-wide registry that ``@jobline.job`` writes into.
default_registry = Registry()
job = default_registry.job
