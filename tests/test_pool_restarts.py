"""``jobline worker --processes N``: a worker that crashes on start is restarted with exponential
backoff, and the log says why (issue 13, defect 7)."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import time

CRASH = [sys.executable, "-c", "import sys; sys.exit(3)"]
POOL = ("import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stderr); "
        f"from jobline.worker.pool import run_pool; sys.exit(run_pool({CRASH!r}, 1))")


async def test_a_worker_crashing_on_start_is_restarted_with_growing_delays() -> None:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", POOL,
                                                stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    delays: list[float] = []
    lines: list[str] = []
    deadline = time.monotonic() + 20
    try:
        while len(delays) < 4 and time.monotonic() < deadline:
            try:
                raw = await asyncio.wait_for(proc.stderr.readline(), deadline - time.monotonic())
            except TimeoutError:
                break
            line = raw.decode()
            lines.append(line)
            m = re.search(r"exited with 3 .*restarting in ([0-9.]+)s", line)
            if m:
                delays.append(float(m.group(1)))
            # the old supervisor restarted every 100 ms without saying when: dozens of lines
            assert len(lines) < 30, "".join(lines)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
    assert delays == [0.1, 0.2, 0.4, 0.8], "".join(lines)


def test_restart_backoff_resets_after_the_worker_stayed_up() -> None:
    from jobline.worker.pool import Restarts

    r = Restarts(stable_s=30.0)
    assert [r.delay_s("w", 0.0, 1.0) for _ in range(3)] == [0.1, 0.2, 0.4]
    assert r.delay_s("w", 10.0, 50.0) == 0.0  # up 40 s: a crash, not a crash loop
    assert r.delay_s("w", 50.0, 51.0) == 0.2  # second crash in a row again
    assert r.delay_s("other", 0.0, 1.0) == 0.1  # counted per child
    assert max(r.delay_s("w", 0.0, 1.0) for _ in range(30)) == 30.0  # capped
