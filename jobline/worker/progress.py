"""The worker side of ``ctx.progress`` / ``ctx.log``: per-job buffers and one coalescing writer.

A handler's call only appends to its job's buffer (a lock, no I/O), from the event loop or from
a sync handler's thread alike. The :class:`ProgressWriter` wakes when a buffer has something,
waits out the flush interval (``JOBLINE_PROGRESS_FLUSH_MS``) so reports coalesce, then writes
every dirty buffer in one statement (``jobline.shared.core.progress.record``). A job that never
reports never wakes it. Before a job's outcome is recorded, its buffer is flushed, so the stored
logs of a finished attempt are complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections import Counter, deque

from jobline.shared.core import progress as core_progress
from jobline.shared.core.progress import MAX_LINE_CHARS, MAX_LOG_LINES, ProgressReport
from jobline.shared.platform.clock import Clock
from jobline.shared.platform.connections import Deps

log = logging.getLogger("jobline.worker.progress")


class JobReporter:
    """One execution's unsent reports. Thread-safe: sync handlers call it from their thread."""

    def __init__(self, job_id: uuid.UUID, token: int, clock: Clock,
                 notify: ProgressWriter | None) -> None:
        self.job_id = job_id
        self.token = token
        self._clock = clock
        self._notify = notify
        self._lock = threading.Lock()
        self._fraction: float | None = None
        self._message: str | None = None
        self._lines: deque[tuple[int, str]] = deque(maxlen=MAX_LOG_LINES)
        self._dropped = 0
        self._dirty = False

    def progress(self, fraction: float, message: str | None) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"progress fraction must be within [0, 1], not {fraction!r}")
        with self._lock:
            self._fraction = float(fraction)
            if message is not None:
                self._message = message[:MAX_LINE_CHARS]
            self._mark()

    def log(self, text: str) -> None:
        now = self._clock.now_ms()
        with self._lock:
            if len(self._lines) == MAX_LOG_LINES:
                self._dropped += 1  # the deque drops the oldest
            # cut before the lock is released; masking happens where it is stored
            self._lines.append((now, text[: MAX_LINE_CHARS * 2]))
            self._mark()

    def _mark(self) -> None:
        if not self._dirty:
            self._dirty = True
            if self._notify is not None:
                self._notify.dirty(self)

    @property
    def pending(self) -> bool:
        """Whether reports wait to be written (a lock-free read: a report racing it is written
        by the writer's next flush anyway)."""
        return self._dirty

    def take(self) -> ProgressReport | None:
        """The reports since the last take, or None if there are none."""
        with self._lock:
            if not self._dirty:
                return None
            rep = ProgressReport(self.job_id, self.token, self._fraction, self._message,
                                 list(self._lines), self._dropped)
            self._fraction = self._message = None
            self._lines.clear()
            self._dropped = 0
            self._dirty = False
            return rep


class ProgressWriter:
    """Writes the dirty reporters of one worker, coalesced per flush interval."""

    def __init__(self, deps: Deps, flush_ms: int) -> None:
        self.deps = deps
        self.flush_s = max(flush_ms, 0) / 1000
        self._dirty: set[JobReporter] = set()
        self._lock = threading.Lock()
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        #: Reporters with reports in a write under way (a count: two flushes may hold one).
        self._writing: Counter[JobReporter] = Counter()

    def reporter(self, job_id: uuid.UUID, token: int) -> JobReporter:
        return JobReporter(job_id, token, self.deps.clock, self)

    def dirty(self, r: JobReporter) -> None:
        with self._lock:
            self._dirty.add(r)
        if threading.get_ident() == self._thread:
            self._wake.set()
        else:
            self._loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="jobline-progress")

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            # the interval is what coalesces reports into one write (a period, not a state wait)
            await asyncio.sleep(self.flush_s)
            self._wake.clear()
            await self.flush()

    async def flush(self, only: JobReporter | None = None) -> None:
        """Write what is dirty (``only``: that reporter's reports). Never raises: progress is
        best effort and must not fail a job.

        Writes run one at a time, so ``flush(r)`` before r's outcome also waits for a write of
        r's earlier reports already under way: otherwise the outcome could land first and the
        fenced write of the attempt's last lines would be dropped."""
        with self._lock:
            if only is None:
                batch, self._dirty = self._dirty, set()
            else:
                self._dirty.discard(only)
                batch = {only}
        reports = [rep for r in batch if (rep := r.take()) is not None]
        if not reports and (only is None or not self._writing[only]):
            return
        self._writing.update(batch)
        try:
            async with self._write_lock:
                if reports:
                    await core_progress.record(self.deps, reports)
        except Exception as e:
            log.warning("storing the progress of %d jobs failed: %s", len(reports), e)
        finally:
            for r in batch:  # drop zero counts: one reporter per job would pile up otherwise
                n = self._writing[r] - 1
                if n > 0:
                    self._writing[r] = n
                else:
                    del self._writing[r]

    def pending(self, r: JobReporter) -> bool:
        """Whether ``r`` has reports not yet stored (waiting, or in a write under way)."""
        return r.pending or self._writing[r] > 0

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
