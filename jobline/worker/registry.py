"""Job handler registration: ``@job("send_welcome_email", queue="email", max_attempts=3, timeout="30s")``.

A handler is a plain function taking the payload (and optionally a :class:`JobContext`); async
handlers run on the worker's event loop, sync ones in a thread pool. Registration only records
metadata; nothing runs at import time.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
    #: Set when the job was cancelled while running; handlers may check it cooperatively.
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class HandlerSpec:
    name: str
    func: Callable[..., Any]
    queue: str
    max_attempts: int | None
    timeout_ms: int | None
    is_async: bool
    wants_context: bool
    #: Error types that are never retried.
    non_retryable: frozenset[str] = frozenset({"validation_error"})


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
        non_retryable: tuple[str, ...] = ("validation_error",),
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
            params = list(inspect.signature(func).parameters)
            self._handlers[name] = HandlerSpec(
                name=name,
                func=func,
                queue=queue,
                max_attempts=max_attempts,
                timeout_ms=parse_duration_ms(timeout),
                is_async=inspect.iscoroutinefunction(func),
                wants_context=len(params) >= 2,
                non_retryable=frozenset(non_retryable),
            )
            return func

        return decorate

    def get(self, name: str) -> HandlerSpec | None:
        return self._handlers.get(name)

    def names(self) -> list[str]:
        return sorted(self._handlers)

    def queues(self) -> list[str]:
        return sorted({h.queue for h in self._handlers.values()})

    def __contains__(self, name: str) -> bool:
        return name in self._handlers


#: The process-wide registry that ``@jobline.job`` writes into.
default_registry = Registry()
job = default_registry.job
