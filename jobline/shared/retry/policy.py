"""Retry policies: how often and how soon a failed job is retried, and which errors are final.

A policy has four settings, each of which may be left unset at any level:

* ``max_attempts``;
* ``backoff``: ``{"baseMs", "factor", "capMs", "jitter"}`` (any subset, merged key by key);
* ``non_retryable``: error types that go straight to ``dead_letter`` (a list, replaced whole);
* ``adaptive``: hand each retry decision (retry or not, and how soon) to the advisor
  (:mod:`jobline.shared.retry.adaptive`). It travels inside the resolved backoff JSON as the
  ``adaptive`` key, because it is a setting about retry timing that must reach every process
  that records a failure, exactly like the backoff does.

Four levels set them, and the first that sets a value wins (``docs/retry-policy.md``):

1. the submission (``maxAttempts``, ``backoff``, ``nonRetryable`` in the submit body);
2. the stored per-job-type policy (table ``retry_policies``, ``PUT /api/v1/retry-policies/..``);
3. the handler decorator (``@job(..., max_attempts=, backoff=, non_retryable=)``);
4. the global settings (``JOBLINE_MAX_ATTEMPTS``, ``JOBLINE_BACKOFF_*``, ``JOBLINE_NON_RETRYABLE``).

Where each level is applied, so the result is the same whichever process submits or runs the job:
``submit_many`` writes ``max_attempts`` and the merged submission+policy backoff into the job row
(levels 1-2; level 3 when the submitter has the handler registered, level 4 otherwise). SQL is
the authority for that precedence: it is written once in ``jobline.shared.core.sql``
(``_RESOLVED_MAX_ATTEMPTS``/``_RESOLVED_BACKOFF``) and used by both ways a job is stored (the
INSERT and the bulk COPY path); Python only validates the levels (:func:`check_policy`). ``fail``
decides retry versus dead letter in one statement (``FAIL_JOBS``) from the job row, the stored
policy it joins, the handler's settings the worker passes along, and the global settings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jobline.shared.platform.clock import from_dt
from jobline.shared.platform.errors import ValidationFailed

#: Shared with :mod:`jobline.shared.core.validation`, which re-exports them; defined here so that
#: ``@job`` (and ``import jobline``) does not pull in the Redis/Postgres drivers.
JOB_TYPE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$")
MAX_ATTEMPTS_LIMIT = 100
MAX_TIMEOUT_MS = 7 * 24 * 3_600_000
#: How many non-retryable error types one job or policy may list.
MAX_ERROR_TYPES = 50


def check_error_types(value: Any, field: str) -> tuple[str, ...] | None:
    """A list of error types (``nonRetryable``): 1-255 characters each, no NUL, at most
    ``MAX_ERROR_TYPES``. None stays None ("not set"); an empty list means "retry everything"."""
    if value is None:
        return None
    if not isinstance(value, list | tuple) or len(value) > MAX_ERROR_TYPES:
        raise ValidationFailed(field, f"must be a list of at most {MAX_ERROR_TYPES} error types")
    for i, t in enumerate(value):
        if not isinstance(t, str) or not 1 <= len(t) <= 255 or "\x00" in t:
            raise ValidationFailed(f"{field}[{i}]", "must be a string of 1-255 characters")
    return tuple(dict.fromkeys(value))


#: Ten years: a longer retry delay is almost certainly a unit mistake (seconds vs ms).
MAX_CAP_MS = 10 * 365 * 24 * 3_600_000
MAX_FACTOR = 100.0
BACKOFF_KEYS = ("baseMs", "factor", "capMs", "jitter")
#: Accepted in a job's backoff JSON besides BACKOFF_KEYS: the submission's ``adaptive`` flag.
TIMING_KEYS = (*BACKOFF_KEYS, "adaptive")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """One level's settings; None = not set at this level."""

    max_attempts: int | None = None
    backoff: dict[str, Any] | None = None
    non_retryable: tuple[str, ...] | None = None
    adaptive: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {"maxAttempts": self.max_attempts, "backoff": self.backoff,
                "nonRetryable": list(self.non_retryable) if self.non_retryable is not None
                else None, "adaptive": self.adaptive}

    def timing(self) -> dict[str, Any] | None:
        """The backoff with ``adaptive`` folded in: what a job row's ``backoff`` JSON holds."""
        if self.adaptive is None:
            return self.backoff
        return {**(self.backoff or {}), "adaptive": self.adaptive}


@dataclass(frozen=True, slots=True)
class StoredRetryPolicy:
    job_type: str
    policy: RetryPolicy
    created_ms: int
    updated_ms: int


def check_backoff(value: Any, field: str = "backoff", keys: tuple[str, ...] = BACKOFF_KEYS
                  ) -> dict[str, Any] | None:
    """Validate a backoff object; returns it with only the keys that were given. ``keys`` is
    TIMING_KEYS for a job's own backoff, which may carry the ``adaptive`` flag."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) - set(keys):
        raise ValidationFailed(field, "must be an object with keys " + ", ".join(keys))
    out: dict[str, Any] = {}
    for key, lo, hi, integral in (("baseMs", 0, MAX_TIMEOUT_MS, True),
                                  ("capMs", 0, MAX_CAP_MS, True),
                                  ("factor", 1, MAX_FACTOR, False)):
        v = value.get(key)
        if v is None:
            continue
        ok_type = isinstance(v, int) if integral else isinstance(v, int | float)
        if isinstance(v, bool) or not ok_type or not lo <= v <= hi:
            kind = "an integer" if integral else "a number"
            raise ValidationFailed(f"{field}.{key}", f"must be {kind} from {lo} to {hi:g}")
        out[key] = v
    jitter = value.get("jitter")
    if jitter is not None:
        if not isinstance(jitter, bool):
            raise ValidationFailed(f"{field}.jitter", "must be true or false")
        out["jitter"] = jitter
    adaptive = value.get("adaptive")
    if adaptive is not None:
        if not isinstance(adaptive, bool):
            raise ValidationFailed(f"{field}.adaptive", "must be true or false")
        out["adaptive"] = adaptive
    return out or None


def check_policy(policy: RetryPolicy, where: str = "") -> RetryPolicy:
    """Validate ``policy``; field names are the API's (``maxAttempts``, ``backoff.baseMs``...)."""
    m = policy.max_attempts
    if m is not None and (isinstance(m, bool) or not isinstance(m, int)
                          or not 1 <= m <= MAX_ATTEMPTS_LIMIT):
        raise ValidationFailed(f"{where}maxAttempts", f"must be an integer 1-{MAX_ATTEMPTS_LIMIT}")
    if policy.adaptive is not None and not isinstance(policy.adaptive, bool):
        raise ValidationFailed(f"{where}adaptive", "must be true or false")
    return RetryPolicy(m, check_backoff(policy.backoff, f"{where}backoff"),
                       check_error_types(policy.non_retryable, f"{where}nonRetryable"),
                       policy.adaptive)


def check_job_type(job_type: str, field: str = "jobType") -> None:
    if not isinstance(job_type, str) or not JOB_TYPE.fullmatch(job_type):
        raise ValidationFailed(field, "must start with a letter or '_' and use letters, digits, "
                               "'._:-' (at most 128 characters)")


def merge_backoff(*levels: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Key-by-key merge, highest precedence first: ``merge_backoff(job, handler)``."""
    out: dict[str, Any] = {}
    for level in reversed(levels):
        if level:
            out.update({k: v for k, v in level.items() if v is not None})
    return out or None


# --- storage ---------------------------------------------------------------------------------

# PUT semantics: the row is replaced whole, so a setting left out of the body is unset (falls
# through to the handler/global level) rather than kept from before.
UPSERT_RETRY_POLICY = """
INSERT INTO retry_policies AS p (job_type, max_attempts, base_ms, factor, cap_ms, jitter,
                                 non_retryable, created_at, updated_at, adaptive)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)
ON CONFLICT (job_type) DO UPDATE
   SET max_attempts = EXCLUDED.max_attempts, base_ms = EXCLUDED.base_ms,
       factor = EXCLUDED.factor, cap_ms = EXCLUDED.cap_ms, jitter = EXCLUDED.jitter,
       non_retryable = EXCLUDED.non_retryable, updated_at = EXCLUDED.updated_at,
       adaptive = EXCLUDED.adaptive
RETURNING job_type, max_attempts, base_ms, factor, cap_ms, jitter, non_retryable, created_at,
          updated_at, adaptive
"""

_COLUMNS = """job_type, max_attempts, base_ms, factor, cap_ms, jitter, non_retryable, created_at,
              updated_at, adaptive"""

GET_RETRY_POLICY = f"SELECT {_COLUMNS} FROM retry_policies WHERE job_type = $1"

LIST_RETRY_POLICIES = f"SELECT {_COLUMNS} FROM retry_policies ORDER BY job_type"

DELETE_RETRY_POLICY = "DELETE FROM retry_policies WHERE job_type = $1 RETURNING job_type"


def _policy(row: Any) -> RetryPolicy:
    backoff = {"baseMs": row["base_ms"], "factor": row["factor"], "capMs": row["cap_ms"],
               "jitter": row["jitter"]}
    nr = row["non_retryable"]
    return RetryPolicy(row["max_attempts"], {k: v for k, v in backoff.items() if v is not None}
                       or None, tuple(nr) if nr is not None else None, row["adaptive"])


def stored_policy(row: Any) -> StoredRetryPolicy:
    return StoredRetryPolicy(row["job_type"], _policy(row), from_dt(row["created_at"]),
                             from_dt(row["updated_at"]))

