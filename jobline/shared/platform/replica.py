"""Routing staleness-tolerant reads to a PostgreSQL streaming replica (``DATABASE_READ_URL``).

Only reads that may be a little old go through here (dashboard, analytics and listing reads,
chosen per endpoint by the shells; docs/deploy.md, "Read replica"); every write, claim and
read-your-own-write read stays on the primary pool. A replica is read-only, so a write routed
to it by mistake fails loudly (``ReadOnlySQLTransactionError``) instead of being lost.

The staleness bound. The router checks the replica at most once per ``CHECK_INTERVAL_S``, in
the background (a read never waits for a check), and keeps ``fresh_at``: a local monotonic
time such that the replica has replayed everything the primary had committed by then. The
staleness of a replica read at time ``t`` is therefore at most ``t - fresh_at`` (the reported
``lagMs``), and the router sends reads to the replica only while that is within
``JOBLINE_READ_MAX_LAG_MS``; otherwise, or while the replica is unreachable, unchecked or not a
standby, reads go to the primary. ``fresh_at`` is the latest of:

- the start of a check whose primary WAL position (``pg_current_wal_lsn()``, read first) the
  replica had already replayed (``pg_last_wal_replay_lsn()``, read second): caught up;
- the start of an earlier check whose primary WAL position the replica has replayed (a short
  history of them is kept): a replica behind by a few ms is not reported seconds behind just
  because its last replayed commit is old;
- the replica's ``now() - pg_last_xact_replay_timestamp()`` before the check: it holds every
  commit up to its last replayed one. Alone this would grow without bound on an idle primary
  (nothing new to replay), which is why the WAL positions come first.

Invariant: a read routed to the replica sees every commit older than ``lagMs``, and
``lagMs <= max_lag_ms`` (clock skew between the replica's and the primary's clocks aside, for
the timestamp rule only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Literal

import asyncpg

from jobline.shared.platform.errors import Unavailable

log = logging.getLogger("jobline.replica")

#: How often (at most) the replica's position is checked; a route decision uses the last one.
CHECK_INTERVAL_S = 1.0
#: A check that takes longer than this counts as "replica unreachable".
CHECK_TIMEOUT_S = 2.0
#: Primary WAL positions remembered from past checks (one per check: ~a minute of history).
HISTORY = 64

#: A replica read that fails with one of these is retried on the primary: the replica went
#: away, restarts, or cancelled the query because replay needed its rows (a recovery conflict,
#: SQLSTATE 40001). A write that reached the replica (``ReadOnlySQLTransactionError``) is not
#: among them: that is a routing bug and must fail loudly.
REPLICA_FAILURES: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError, asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError, asyncpg.exceptions.SerializationError,
    ConnectionError, OSError, TimeoutError)

Source = Literal["replica", "primary"]

CHECK = """
SELECT pg_is_in_recovery() AS standby, pg_last_wal_replay_lsn() AS replayed,
       (extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000)::float8 AS behind_ms
"""


@dataclass(frozen=True, slots=True)
class ReadSource:
    """Where one request's staleness-tolerant reads went, and why (shown in the API)."""

    source: Source
    #: An upper bound on how old a replica read is, ms (None: no replica, or its position is
    #: unknown: not yet checked, unreachable, not a standby).
    lag_ms: int | None
    max_lag_ms: int
    #: ``replica`` | ``no_replica`` (DATABASE_READ_URL unset) | ``unchecked`` | ``lagging`` |
    #: ``unreachable`` | ``not_standby``
    reason: str


@dataclass(frozen=True, slots=True)
class _Check:
    at: float  # monotonic time the check started
    fresh_at: float | None  # see the module docstring; None: position unknown
    reason: str  # "replica" when usable, else why not


class ReadRouter:
    """Chooses, per read, the replica pool or the primary pool (see the module docstring).

    Owns the replica pool (closes it); borrows the primary pool."""

    def __init__(self, primary: asyncpg.Pool, replica: asyncpg.Pool, max_lag_ms: int, *,
                 check_interval_s: float = CHECK_INTERVAL_S) -> None:
        self.primary = primary
        self.replica = replica
        self.max_lag_ms = max_lag_ms
        self.check_interval_s = check_interval_s
        self._last: _Check | None = None
        self._task: asyncio.Task[None] | None = None
        self._history: deque[tuple[float, int]] = deque(maxlen=HISTORY)
        self._warned: str | None = None

    # -- routing -----------------------------------------------------------------------------------

    def status(self) -> ReadSource:
        """Where a read would go now; starts a background check when the last one is old."""
        now = time.monotonic()
        last = self._last
        if (last is None or now - last.at >= self.check_interval_s) and (
                self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._check_quietly())
        if last is None:
            return ReadSource("primary", None, self.max_lag_ms, "unchecked")
        if last.fresh_at is None:
            return ReadSource("primary", None, self.max_lag_ms, last.reason)
        lag = max(0, round((now - last.fresh_at) * 1000))
        if lag > self.max_lag_ms:
            return ReadSource("primary", lag, self.max_lag_ms, "lagging")
        return ReadSource("replica", lag, self.max_lag_ms, "replica")

    def route(self) -> tuple[asyncpg.Pool, ReadSource]:
        src = self.status()
        return (self.replica if src.source == "replica" else self.primary), src

    def replica_failed(self, error: BaseException) -> None:
        """A replica read failed (``REPLICA_FAILURES``): route to the primary until the next
        successful check."""
        log.warning("replica read failed (%s: %s); reads go to the primary until it answers",
                    type(error).__name__, error)
        self._last = _Check(time.monotonic(), None, "unreachable")

    # -- checking ----------------------------------------------------------------------------------

    async def check(self) -> ReadSource:
        """Check the replica's position now (tests call this; routing does it in the
        background) and return where a read would go."""
        self._last = await self._measure()
        return self.status()

    async def _check_quietly(self) -> None:
        self._last = await self._measure()

    async def _measure(self) -> _Check:
        start = time.monotonic()
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                primary_lsn = _lsn(await self.primary.fetchval("SELECT pg_current_wal_lsn()"))
                row = await self.replica.fetchrow(CHECK)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # any failure means: do not read from it now
            self._warn("unreachable", f"replica check failed: {type(e).__name__}: {e}")
            return _Check(start, None, "unreachable")
        assert row is not None
        if not row["standby"]:
            # A promoted ex-replica may have diverged; the primary's own URL is harmless but
            # pointless. Either way the primary serves.
            self._warn("not_standby", "DATABASE_READ_URL is not a standby "
                       "(pg_is_in_recovery() is false); reads use the primary")
            return _Check(start, None, "not_standby")
        self._warned = None
        self._history.append((start, primary_lsn))
        replayed = _lsn(row["replayed"])
        candidates = [t for t, lsn in self._history if lsn <= replayed]
        if row["behind_ms"] is not None:
            # the replica's clock measured this, a moment after ``start``
            candidates.append(time.monotonic() - float(row["behind_ms"]) / 1000)
        if not candidates:
            # behind every remembered primary position and no commit replayed since it
            # started: far behind, by an unknown amount
            return _Check(start, None, "lagging")
        return _Check(start, min(max(candidates), start), "replica")

    def _warn(self, kind: str, message: str) -> None:
        if self._warned != kind:  # once per state change, not once per second
            log.warning(message)
            self._warned = kind

    async def close(self, timeout: float | None = None) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        try:
            await asyncio.wait_for(self.replica.close(), timeout)
        except TimeoutError:
            self.replica.terminate()


def _lsn(value: object) -> int:
    """A ``pg_lsn`` as an int (asyncpg decodes it to one; text ``0/16B3748`` is accepted)."""
    if isinstance(value, int):
        return value
    hi, lo = str(value).split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def is_replica_failure(error: BaseException) -> bool:
    """``error`` (or the driver error the core translated into :class:`Unavailable`) means the
    replica could not answer."""
    if isinstance(error, Unavailable):
        error = error.__cause__ if error.__cause__ is not None else error
    return isinstance(error, REPLICA_FAILURES)

