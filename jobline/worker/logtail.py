"""The worker process's last log lines, for ``GET /api/v1/workers/:id/logs``.

A logging handler on the root logger keeps the lines formatted since the last heartbeat; the
heartbeat ships them (:meth:`take`) to the stores, which keep the last few hundred per worker.
Lines are masked before they leave the process (the same key masking as the process log's
filter), cut to :data:`MAX_LINE` characters, and at most :data:`MAX_PENDING` wait between two
heartbeats (the oldest are dropped first: a log storm must not grow the worker's memory).
"""

from __future__ import annotations

import collections
import logging
import threading

from jobline.shared.security.masking import DEFAULT_MASK_KEYS, MaskingFilter, mask_text

MAX_LINE = 2000
MAX_PENDING = 500
FORMAT = "%(asctime)s %(levelname)-7s %(name)s[%(process)d]: %(message)s"


class LogTail(logging.Handler):
    def __init__(self, mask_keys: tuple[str, ...] = DEFAULT_MASK_KEYS) -> None:
        super().__init__(level=logging.INFO)
        self.setFormatter(logging.Formatter(FORMAT))
        self.addFilter(MaskingFilter(mask_keys))  # structured args, like the process log
        self._lines: collections.deque[str] = collections.deque(maxlen=MAX_PENDING)
        self._lock2 = threading.Lock()
        self._mask_keys = mask_keys
        self._installed = False

    def install(self) -> None:
        if not self._installed:
            logging.getLogger().addHandler(self)
            self._installed = True

    def uninstall(self) -> None:
        if self._installed:
            logging.getLogger().removeHandler(self)
            self._installed = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a bad log call must not break the worker
            return
        line = (mask_text(line, self._mask_keys) or "")[:MAX_LINE]
        with self._lock2:
            self._lines.append(line)

    def take(self) -> list[str]:
        with self._lock2:
            out = list(self._lines)
            self._lines.clear()
        return out

    def give_back(self, lines: list[str]) -> None:
        """Lines a failed push took: kept for the next one (newest kept if over the cap)."""
        with self._lock2:
            self._lines.extendleft(reversed(lines[-(MAX_PENDING - len(self._lines)):]
                                            if len(self._lines) < MAX_PENDING else []))
