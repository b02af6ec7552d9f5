"""``--processes N``: a supervisor that runs N single-process workers and restarts any that die.

A worker killed by a poison-pill job (or the OOM killer) is replaced at once, so the other jobs
keep flowing; the killed worker's leases expire and the reaper re-dispatches them. A worker that
keeps dying soon after it starts (a bad deploy, an unreachable database at start-up) is restarted
with exponential backoff (:class:`Restarts`, also used by ``jobline run``), and each restart is
logged with its exit code and delay.
Signals: the first SIGTERM/SIGINT is forwarded (warm shutdown), a second one too (cold).
"""

from __future__ import annotations

import logging
import random
import signal
import subprocess
import time
from collections.abc import Hashable
from types import FrameType

from jobline.shared.retry.backoff import Backoff

log = logging.getLogger("jobline.pool")


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


def run_pool(command: list[str], processes: int) -> int:
    children: list[subprocess.Popen[bytes] | None] = []
    started: list[float] = []
    #: When a dead child's replacement is due (monotonic seconds), by slot.
    due: dict[int, float] = {}
    restarts = Restarts()
    stopping = {"n": 0}

    def forward(signum: int, _frame: FrameType | None) -> None:
        stopping["n"] += 1
        for c in children:
            if c is not None and c.poll() is None:
                c.send_signal(signal.SIGTERM if stopping["n"] == 1 else signal.SIGINT)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for _ in range(processes):
        children.append(subprocess.Popen(command))
        started.append(time.monotonic())
    log.info("worker pool: %d processes %s", processes, [c.pid for c in children if c])
    while True:
        if stopping["n"]:
            for c in children:
                if c is not None:
                    c.wait()
            return 0
        now = time.monotonic()
        for i, c in enumerate(children):
            if c is not None and c.poll() is not None:
                delay = restarts.delay_s(i, started[i], now)
                log.warning("worker pid %d exited with %s after %.1fs (%d in a row); "
                            "restarting in %.1fs", c.pid, c.returncode, now - started[i],
                            restarts.crashes_in_a_row(i), delay)
                children[i] = None
                due[i] = now + delay
            if children[i] is None and now >= due.get(i, now):
                children[i] = subprocess.Popen(command)
                started[i] = time.monotonic()
                due.pop(i, None)
        time.sleep(0.1)  # supervisor tick (process liveness has no wait-for-any in stdlib)
