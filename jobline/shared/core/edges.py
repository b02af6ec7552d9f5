"""The state machine as the code enforces it: which statement performs which edges of
:data:`~jobline.shared.core.models.TRANSITIONS`, and which core function runs that statement.

Every status-changing statement in :mod:`jobline.shared.core.sql` has one :class:`Edges` here,
named after the statement. Its ``WHERE status IN (...)`` guard is formatted from
:meth:`Edges.guard`, so the states a statement may start from are the ones declared here, and
declaring an edge that ``TRANSITIONS`` lacks fails at import. The one core function that runs
the statement says so with :func:`performs`; a second function claiming the same statement
fails at import too. ``tests/test_state_machine.py`` checks that the declared edges cover
``TRANSITIONS`` exactly and that ``docs/state-machine.md`` lists the same table.

Nothing here runs per job: the guards are formatted into the SQL text once, at import, and the
decorator returns the function unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from jobline.shared.core.models import TRANSITIONS, Status

F = TypeVar("F", bound=Callable[..., object])


@dataclass(frozen=True, slots=True)
class Edges:
    """The edges ``sources x targets`` one SQL statement (``statement``, in ``core/sql.py``)
    performs. Invariant: every pair is in ``TRANSITIONS`` (checked when defined)."""

    statement: str
    sources: tuple[Status, ...]
    targets: tuple[Status, ...]

    def __post_init__(self) -> None:
        illegal = self.pairs - TRANSITIONS
        if illegal:
            raise ValueError(f"{self.statement} declares edges not in TRANSITIONS: "
                             f"{sorted(illegal)}")

    @property
    def pairs(self) -> frozenset[tuple[Status, Status]]:
        return frozenset((s, t) for s in self.sources for t in self.targets)

    def guard(self, *also: Status) -> str:
        """The SQL list of the states the statement may start from, e.g. ``('failed',
        'dead_letter')``; ``also`` adds states it matches without changing their status (a
        cancel request on a running job)."""
        return "(" + ", ".join(f"'{s.value}'" for s in (*self.sources, *also)) + ")"


_P, _S, _W = Status.PENDING, Status.SCHEDULED, Status.WAITING

CLAIM_JOBS = Edges("CLAIM_JOBS", (_P, _S), (Status.PROCESSING,))
COMPLETE_JOBS = Edges("COMPLETE_JOBS", (Status.PROCESSING,), (Status.COMPLETED,))
#: Retry later, retry now (also a release), dead letter, or cancelled (requested/outcome).
FAIL_JOBS = Edges("FAIL_JOBS", (Status.PROCESSING,),
                  (_P, _S, Status.DEAD_LETTER, Status.CANCELLED))
#: A running job is matched too (``guard(Status.PROCESSING)``) but only gets the request.
CANCEL_OR_REQUEST = Edges("CANCEL_OR_REQUEST", (_W, _P, _S), (Status.CANCELLED,))
#: Manual retry: ``retry_now``, ``retry_from_dlq`` and ``retry_dead_letters`` all run it.
RETRY_JOBS = Edges("RETRY_JOBS", (Status.FAILED, Status.DEAD_LETTER), (_P,))
#: The last dependency of a waiting job completed.
RELEASE_DEPENDENTS = Edges("RELEASE_DEPENDENTS", (_W,), (_P, _S))
#: A dependency ended dead_letter/failed/cancelled: one level of the cascade.
CANCEL_DEPENDENTS = Edges("CANCEL_DEPENDENTS", (_W,), (Status.CANCELLED,))
#: Every job of a batch is terminal: its onComplete job is released.
RELEASE_ON_COMPLETE = Edges("RELEASE_ON_COMPLETE", (_W,), (_P, _S))

ALL: tuple[Edges, ...] = (CLAIM_JOBS, COMPLETE_JOBS, FAIL_JOBS, CANCEL_OR_REQUEST, RETRY_JOBS,
                          RELEASE_DEPENDENTS, CANCEL_DEPENDENTS, RELEASE_ON_COMPLETE)

#: Edges of TRANSITIONS that no statement performs: promotion of a due job is Redis only, and
#: ``CLAIM_JOBS`` accepts a still-``scheduled`` row (docs/state-machine.md, "Promotion").
UNPRODUCED: frozenset[tuple[Status, Status]] = frozenset({(_S, _P)})

#: Statement name -> "module.function" of the one core function that runs it.
PERFORMERS: dict[str, str] = {}


def performs(*edges: Edges) -> Callable[[F], F]:
    """Mark the function as the one place that runs these statements (import-time only)."""

    def mark(fn: F) -> F:
        where = f"{fn.__module__}.{fn.__qualname__}"
        for e in edges:
            other = PERFORMERS.setdefault(e.statement, where)
            if other != where:
                raise ValueError(f"{e.statement} is performed by {other} and {where}")
        return fn

    return mark
