"""The worker supervisor: ``jobline worker --group NAME --processes N`` owns a worker group.

It runs single-process workers and converges their number to the group's desired count, stored
centrally (PostgreSQL, :mod:`jobline.shared.fleet.groups`; through the API for ``--remote``):
``--processes`` only seeds a group that does not exist yet. A change (the dashboard's + / -, the
autoscaler, ``PUT /api/v1/worker-groups/NAME``) arrives as a NOTIFY and is re-read every
:data:`RESYNC_S` anyway, so the supervisor converges within seconds.

* Scale up: start workers (each with a worker id the supervisor assigns, so a crash is
  recorded under the id the registry showed).
* Scale down: the newest workers get SIGTERM, a warm stop: they finish or release their jobs,
  nothing is lost.
* A worker that exits 0 (a restart request, or a stop by signal) is replaced at once; one that
  exits :data:`STOPPED_ON_REQUEST` (``POST /workers/:id/stop``) leaves the group one smaller
  (the supervisor lowers the desired count itself, so it does not start a replacement).
* Any other exit is a crash: recorded (``worker_crashes``) and restarted with exponential
  backoff while the crashes come in a row (:class:`Restarts`, also used by ``jobline run``).

Signals: the first SIGTERM/SIGINT is forwarded as SIGTERM (warm), the second as SIGINT (cold).
Every stop is bounded: a child still running past its bound (warm: grace + the worker's stop
bound + margins; cold: :data:`COLD_BOUND_S`) is killed, so the supervisor never waits forever.
Every child gets a parent-death signal (:mod:`jobline.lifeline`): SIGKILL of the supervisor
still ends its workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol

from jobline.shared.retry.backoff import Backoff

log = logging.getLogger("jobline.pool")

#: Exit status of a worker stopped by ``POST /api/v1/workers/:id/stop``: not a crash, and
#: not to be replaced.
STOPPED_ON_REQUEST = 64
#: Re-read the desired count this often even without a notification.
RESYNC_S = 2.0
#: How often child liveness is checked (the stdlib has no wait-for-any-child with a timeout).
TICK_S = 0.1
#: After the second signal, children still running this long are killed (a worker's own cold
#: stop is bounded at 5 s, ``jobline.cli.COLD_EXIT_S``; this is that plus a margin).
COLD_BOUND_S = 10.0


class Restarts:
    """When to restart a crashed child: after 0.1 s, 0.2 s, 0.4 s ... up to 30 s for crashes in
    a row (the retry ``Backoff`` without jitter), and at once again for a child that had stayed
    up ``stable_s`` before it died (a poison pill, not a crash loop).

    Times are ``time.monotonic()`` seconds passed in by the caller.
    """

    def __init__(self, backoff: Backoff | None = None, stable_s: float = 30.0) -> None:
        self.backoff = backoff or Backoff(base_ms=100, factor=2.0, cap_ms=30_000, jitter=False)
        self.stable_s = stable_s
        self._in_a_row: dict[Hashable, int] = {}

    def delay_s(self, child: Hashable, started: float, exited: float) -> float:
        """Record that ``child`` (started at ``started``) exited at ``exited``; return how long
        to wait before starting it again."""
        n = 1 if exited - started >= self.stable_s else self._in_a_row.get(child, 0) + 1
        self._in_a_row[child] = n
        if n == 1 and exited - started >= self.stable_s:
            return 0.0
        return self.backoff.delay_ms(n, random.Random()) / 1000

    def crashes_in_a_row(self, child: Hashable) -> int:
        return self._in_a_row.get(child, 0)


class GroupControl(Protocol):
    """Where a supervisor reads its group's desired count and reports crashes."""

    async def open(self, group: str, initial: int) -> int:
        """Create the group with ``initial`` if it does not exist; return its desired count."""
        ...

    async def desired(self, group: str) -> int: ...

    async def wait_change(self, timeout: float) -> None:
        """Return when the group may have changed, or after ``timeout``."""
        ...

    async def crashed(self, group: str, worker_id: str, code: int | None, detail: str) -> None: ...

    async def stopped_on_request(self, group: str) -> int:
        """A worker left the group by request: lower the desired count by one; return it."""
        ...

    async def aclose(self) -> None: ...


class FixedControl:
    """A fixed count, no store (``run_pool``, and the tests of process handling)."""

    def __init__(self) -> None:
        self.n = 0

    async def open(self, group: str, initial: int) -> int:
        self.n = initial
        return initial

    async def desired(self, group: str) -> int:
        return self.n

    async def wait_change(self, timeout: float) -> None:
        await asyncio.sleep(timeout)  # nothing to listen to: the count never changes

    async def crashed(self, group: str, worker_id: str, code: int | None, detail: str) -> None:
        return None

    async def stopped_on_request(self, group: str) -> int:
        self.n = max(0, self.n - 1)
        return self.n

    async def aclose(self) -> None:
        return None


@dataclass
class _Child:
    proc: subprocess.Popen[bytes]
    worker_id: str
    started: float
    #: Told to stop by the supervisor (scale-down or shutdown): its exit is expected.
    leaving: bool = False


class Supervisor:
    def __init__(self, command: Callable[[str], list[str]], group: str, initial: int,
                 control: GroupControl, *, warm_bound_s: float = 120.0,
                 env: dict[str, str] | None = None) -> None:
        self.command = command
        self.group = group
        self.initial = initial
        self.control = control
        self.warm_bound_s = warm_bound_s
        self.env = env
        self.children: list[_Child] = []
        self.restarts = Restarts()
        self.spawn_due = 0.0
        self.desired_n = initial
        self.signals = 0
        self._stop_at: float | None = None
        self._host = socket.gethostname()

    def _new_id(self) -> str:
        return f"{self._host}:{self.group}:{uuid.uuid4().hex[:8]}"

    def _spawn(self) -> None:
        from jobline.lifeline import child_env

        wid = self._new_id()
        proc = subprocess.Popen(self.command(wid), env=child_env(self.env))
        self.children.append(_Child(proc, wid, time.monotonic()))
        log.info("group %s: started worker %s pid %d", self.group, wid, proc.pid)

    def on_signal(self) -> None:
        self.signals += 1
        cold = self.signals > 1
        log.info("supervisor: %s stop requested", "cold" if cold else "warm")
        bound = COLD_BOUND_S if cold else self.warm_bound_s
        at = time.monotonic() + bound
        self._stop_at = at if self._stop_at is None else min(self._stop_at, at)
        for c in self.children:
            if c.proc.poll() is None:
                c.leaving = True
                with contextlib.suppress(ProcessLookupError):
                    c.proc.send_signal(signal.SIGINT if cold else signal.SIGTERM)

    async def _reap(self) -> None:
        now = time.monotonic()
        for c in list(self.children):
            code = c.proc.poll()
            if code is None:
                continue
            self.children.remove(c)
            if c.leaving or self.signals:
                continue
            if code == 0:
                log.info("group %s: worker %s exited (restart); replacing it", self.group,
                         c.worker_id)
            elif code == STOPPED_ON_REQUEST:
                try:
                    self.desired_n = await self.control.stopped_on_request(self.group)
                except Exception as e:
                    self.desired_n = max(0, self.desired_n - 1)
                    log.warning("group %s: lowering the desired count failed: %s", self.group, e)
                log.info("group %s: worker %s stopped on request; desired now %d", self.group,
                         c.worker_id, self.desired_n)
            else:
                delay = self.restarts.delay_s(self.group, c.started, now)
                self.spawn_due = max(self.spawn_due, now + delay)
                log.warning("worker pid %d exited with %s after %.1fs (%d in a row); "
                            "restarting in %.1fs", c.proc.pid, code, now - c.started,
                            self.restarts.crashes_in_a_row(self.group), delay)
                try:
                    await self.control.crashed(self.group, c.worker_id, code,
                                               f"exit status {code} after "
                                               f"{now - c.started:.1f}s")
                except Exception as e:
                    log.warning("recording the crash of %s failed: %s", c.worker_id, e)

    def _converge(self) -> None:
        active = [c for c in self.children if not c.leaving]
        if len(active) > self.desired_n:
            for c in sorted(active, key=lambda c: c.started)[self.desired_n:]:
                log.info("group %s: scaling down, stopping worker %s (warm)", self.group,
                         c.worker_id)
                c.leaving = True
                with contextlib.suppress(ProcessLookupError):
                    c.proc.send_signal(signal.SIGTERM)
        elif len(active) < self.desired_n and time.monotonic() >= self.spawn_due:
            for _ in range(self.desired_n - len(active)):
                self._spawn()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.on_signal)
        try:
            self.desired_n = await self.control.open(self.group, self.initial)
        except Exception as e:
            log.warning("group %s: reading the desired count failed (%s); starting %d",
                        self.group, e, self.initial)
            self.desired_n = self.initial
        log.info("worker group %s: supervisor pid %d, desired %d", self.group, os.getpid(),
                 self.desired_n)
        changed = asyncio.Event()
        watcher = asyncio.create_task(self._watch(changed))
        try:
            while not self.signals:
                await self._reap()
                if self.signals:
                    break
                if changed.is_set():
                    changed.clear()
                    await self._refresh()
                self._converge()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), TICK_S)
            # stopping: wait for the children, bounded
            while any(c.proc.poll() is None for c in self.children):
                if self._stop_at is not None and time.monotonic() > self._stop_at:
                    for c in self.children:
                        if c.proc.poll() is None:
                            log.error("worker pid %d still running past its stop bound; "
                                      "killing it", c.proc.pid)
                            with contextlib.suppress(ProcessLookupError):
                                c.proc.kill()
                    for c in self.children:
                        c.proc.wait()
                    break
                await asyncio.sleep(TICK_S)  # child liveness: nothing to block on
            return 0
        finally:
            watcher.cancel()
            with contextlib.suppress(BaseException):
                await watcher
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.control.aclose(), 5)

    async def _refresh(self) -> None:
        try:
            n = await self.control.desired(self.group)
        except Exception as e:
            log.warning("group %s: reading the desired count failed: %s", self.group, e)
            return
        if n != self.desired_n:
            log.info("group %s: desired %d -> %d", self.group, self.desired_n, n)
        self.desired_n = n

    async def _watch(self, changed: asyncio.Event) -> None:
        while True:
            try:
                await self.control.wait_change(RESYNC_S)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("group %s: watching for changes failed: %s", self.group, e)
                await asyncio.sleep(RESYNC_S)  # backoff while the store is down
            changed.set()


def run_pool(command: list[str], processes: int) -> int:
    """A fixed pool of ``processes`` copies of ``command`` (no group store)."""
    sup = Supervisor(lambda _wid: command, "pool", processes, FixedControl())
    return asyncio.run(sup.run())


def run_group(command: Callable[[str], list[str]], group: str, processes: int,
              control: GroupControl, warm_bound_s: float) -> int:
    sup = Supervisor(command, group, processes, control, warm_bound_s=warm_bound_s)
    return asyncio.run(sup.run())


def direct_control(settings: Any) -> GroupControl:
    from jobline.worker.group_control import DirectControl

    return DirectControl(settings)
