"""``jobline.SyncClient``: the client for synchronous code (Django, Flask, scripts, Celery-style
``task.delay()``).

    client = jobline.SyncClient.connect()            # in-process: Postgres + Redis
    client = jobline.SyncClient.http(url, api_key)   # over the REST API
    sub = client.submit("send_welcome_email", {"userId": 123}, priority=7)
    job = client.wait(sub.id)

Every coroutine method of the async client it wraps (:class:`~jobline.client.Client` or
:class:`~jobline.http_client.HttpClient`) is available under the same name, taking the same
arguments and returning the same value, as a blocking call.

Why a private event loop on a thread of its own: the async client's connections (the asyncpg
pool, the Redis client, httpx's pool) belong to the event loop that opened them and cannot be
used from another. One long-lived loop owns them for the life of the client; any number of
threads (a WSGI server's workers) submit onto it with ``run_coroutine_threadsafe`` and block on
the answer. Their concurrent submissions then share INSERTs through the client's group committer,
exactly as concurrent async callers do, and no thread pays for opening connections per call. It
is safe to call from a thread that runs an event loop of its own (it blocks that loop for the
call, as any sync I/O would); calling it from its own loop (inside a coroutine it runs) would
deadlock and raises instead.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from jobline.shared.platform.clock import Clock
from jobline.shared.platform.config import Settings

T = TypeVar("T")


class SyncClient:
    """Blocking facade over an async client, run on a private event loop thread."""

    def __init__(self, open_client: Callable[[], Awaitable[Any]]) -> None:
        """``open_client`` is awaited on the private loop to build the wrapped async client."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="jobline-sync-client",
                                        daemon=True)
        self._thread.start()
        self._closed = False
        try:
            self._client = self._run(_awaited(open_client))
        except BaseException:
            self._stop_loop()
            raise

    @classmethod
    def connect(cls, settings: Settings | None = None, *,
                clock: Clock | None = None) -> SyncClient:
        """Connect to the stores (``settings`` default: from the environment)."""
        from jobline.client import Client

        return cls(lambda: Client.connect(settings, clock=clock)._open())

    @classmethod
    def http(cls, url: str, api_key: str | None = None, **kwargs: Any) -> SyncClient:
        """Talk to the REST API at ``url`` with ``api_key``."""
        from jobline.http_client import HttpClient

        async def open_http() -> HttpClient:
            return HttpClient(url, api_key, **kwargs)  # its pool binds to the private loop

        return cls(open_http)

    @property
    def client(self) -> Any:
        """The wrapped async client (use it only on :attr:`loop`)."""
        return self._client

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._closed:
            coro.close()
            raise RuntimeError("SyncClient is closed")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            coro.close()
            raise RuntimeError("SyncClient called from its own event loop: await the async "
                               "client (SyncClient.client) there instead")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def submit_coroutine(self, coro: Coroutine[Any, Any, T]) -> asyncio.Future[T]:
        """Schedule ``coro`` on the private loop; an awaitable for the caller's own loop (how
        ``task.enqueue_async`` uses a sync default client from async code)."""
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self._client, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Any:
            return self._run(attr(*args, **kwargs))

        return call

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | {n for n in dir(self._client)
                                                 if not n.startswith("_")})

    def close(self) -> None:
        """Flush pending submissions, close the connections, stop the loop thread."""
        if self._closed:
            return
        try:
            self._run(self._client.close())
        finally:
            self._closed = True
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _awaited(make: Callable[[], Awaitable[T]]) -> T:
    return await make()


__all__ = ["SyncClient"]
