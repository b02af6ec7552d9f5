"""Stack dumps of a running worker process, for the case "it is alive but does not progress",
and the shutdown watchdog that forces a stop that overruns its bound.

``kill -USR1 <pid>`` writes every asyncio task's await chain and every thread's stack to stderr
(the process log). The same dump is written before the shutdown watchdog forces an exit, so a
worker that had to be killed leaves the await it was stuck in behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import io
import logging
import os
import signal
import sys
import threading
import time

log = logging.getLogger("jobline.worker")

#: Exit status of a process the watchdog had to force out.
FORCED_EXIT_CODE = 1


def format_tasks(loop: asyncio.AbstractEventLoop) -> str:
    """Every pending task of ``loop`` with the stack of the await it is suspended in.

    Call it on the loop's own thread (asyncio's task registry is not thread-safe).
    """
    out = io.StringIO()
    tasks = sorted(asyncio.all_tasks(loop), key=lambda t: t.get_name())
    out.write(f"--- {len(tasks)} asyncio tasks ---\n")
    for t in tasks:
        out.write(f"task {t.get_name()!r} ({'done' if t.done() else 'pending'}):\n")
        buf = io.StringIO()
        t.print_stack(file=buf)
        out.write(buf.getvalue())
    return out.getvalue()


def dump(loop: asyncio.AbstractEventLoop | None = None, *, reason: str = "SIGUSR1") -> None:
    """Write the task and thread stacks to stderr."""
    sys.stderr.write(f"=== jobline stack dump ({reason}) ===\n")
    if loop is not None:
        try:
            sys.stderr.write(format_tasks(loop))
        except Exception as e:  # a diagnostic must never take the worker down
            sys.stderr.write(f"(tasks unavailable: {e!r})\n")
    sys.stderr.write("--- threads ---\n")
    sys.stderr.flush()
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stderr.write("=== end of stack dump ===\n")
    sys.stderr.flush()


def install_dump_signal(loop: asyncio.AbstractEventLoop) -> None:
    """``SIGUSR1`` dumps the stacks (handled in the loop, so the task list is consistent)."""
    if hasattr(signal, "SIGUSR1"):
        loop.add_signal_handler(signal.SIGUSR1, lambda: dump(loop))


class ExitWatchdog:
    """Forces the process out (``os._exit``) if it is still running at a deadline.

    A thread, not a loop callback: it fires even if the event loop is blocked. Before exiting it
    dumps the stacks (the asyncio tasks if the loop still answers within a second), so the await
    that never returned is in the log. Invariant: once armed, the process ends by the earliest
    deadline armed, whatever state the stores or the handlers are in.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._timer: threading.Timer | None = None
        self._deadline = float("inf")
        self._lock = threading.Lock()

    def arm(self, seconds: float, reason: str) -> None:
        """Exit in ``seconds`` unless disarmed; an earlier deadline already armed is kept."""
        with self._lock:
            at = time.monotonic() + seconds
            if at >= self._deadline:
                return
            if self._timer is not None:
                self._timer.cancel()
            self._deadline = at
            self._timer = threading.Timer(seconds, self._fire, args=(reason, seconds))
            self._timer.daemon = True
            self._timer.start()

    def disarm(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = None
            self._deadline = float("inf")

    def _fire(self, reason: str, seconds: float) -> None:
        log.error("%s: still running %.1fs later; forcing the exit (status %d)", reason, seconds,
                  FORCED_EXIT_CODE)
        dumped = threading.Event()

        def in_loop() -> None:
            try:
                dump(self._loop, reason=f"watchdog: {reason}")
            finally:
                dumped.set()

        with contextlib.suppress(RuntimeError):  # the loop is closed
            self._loop.call_soon_threadsafe(in_loop)
        if not dumped.wait(1.0):
            dump(None, reason=f"watchdog: {reason} (event loop not answering)")
        for h in logging.getLogger().handlers:
            h.flush()
        os._exit(FORCED_EXIT_CODE)
