"""``--processes N``: a supervisor that runs N single-process workers and restarts any that die.

A worker killed by a poison-pill job (or the OOM killer) is replaced at once, so the other jobs
keep flowing; the killed worker's leases expire and the reaper re-dispatches them.
Signals: the first SIGTERM/SIGINT is forwarded (warm shutdown), a second one too (cold).
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from types import FrameType

log = logging.getLogger("jobline.pool")


def run_pool(command: list[str], processes: int) -> int:
    children: list[subprocess.Popen[bytes]] = []
    stopping = {"n": 0}

    def forward(signum: int, _frame: FrameType | None) -> None:
        stopping["n"] += 1
        for c in children:
            if c.poll() is None:
                c.send_signal(signal.SIGTERM if stopping["n"] == 1 else signal.SIGINT)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for _ in range(processes):
        children.append(subprocess.Popen(command))
    log.info("worker pool: %d processes %s", processes, [c.pid for c in children])
    while True:
        if stopping["n"]:
            for c in children:
                c.wait()
            return 0
        for i, c in enumerate(children):
            if c.poll() is not None and not stopping["n"]:
                log.warning("worker pid %d exited with %s; starting a replacement", c.pid,
                            c.returncode)
                children[i] = subprocess.Popen(command)
        time.sleep(0.1)  # supervisor tick (process liveness has no wait-for-any in stdlib)
