"""The retry advisor: whether, and how soon, a failed attempt of an ``adaptive`` job is retried.

A job is adaptive when its resolved backoff JSON says ``"adaptive": true`` (its submission, its
type's stored policy or its handler's decorator set it; :mod:`jobline.shared.retry.policy`).
On each counted failure of such a job, :func:`advise` returns a :class:`Decision`
``{retry, delayMs, successProbability, reason}`` that ``jobs.fail`` applies and records on the
attempt (``job_attempts.retry_decision``), so every decision is auditable afterwards.

The model is the **recovery table** trained from the system's own attempt history
(``jobline.analytics.ai.retry.train``, kind ``retry_advisor`` in ``ai_models``, stored as JSON):
for each (job type, error type), and pooled over job types per error type, how many failed
attempts were followed by another attempt, how many of those succeeded, split by the time that
passed in between (``GAP_BUCKETS_MS``). From it:

* an error type whose retries (almost) never succeeded, even after waiting long, is not retried
  (validation errors, 4xx-like failures);
* otherwise the delay is the shortest wait after which retries succeeded nearly as often as
  after any longer wait: a rate limit's window, an outage's typical length;
* with no history for the error yet, validation-like error types are not retried and the rest
  keep the job's fixed backoff, so the advisor never guesses worse than the static policy.

Invariants:

* The advisor never grants more attempts than the job has left: with none left it records
  ``retry: false`` and the job is dead-lettered exactly as without it.
* It decides only ordinary failures: a handler's explicit ``Retry(after=...)``, a release, a
  cancellation or a ``final`` failure keep their meaning, and a configured non-retryable error
  type stays the policy's decision.
* It is pure Python over a JSON table (no third-party model code in the failure path), and it
  reads PostgreSQL only for adaptive failures: the model once per ``CACHE_MS`` per process and
  the failing jobs' rows once per ``fail`` call.
* The global switch (``JOBLINE_ADAPTIVE_RETRIES=off``, or ``PUT /api/v1/ai/adaptive-retries``)
  turns it off: adaptive jobs then retry on their fixed backoff and nothing is recorded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from jobline.shared.core.models import Outcome
from jobline.shared.platform.connections import Deps

KIND = "retry_advisor"
#: ai_state key of the run-time switch; absent or "on" means on.
SWITCH_KEY = "adaptive_retries"
#: Lower bounds of the gap buckets (ms from a failure to the next attempt's start).
GAP_BUCKETS_MS = (0, 1_000, 5_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000,
                  1_800_000, 3_600_000, 21_600_000)
#: Follow-up attempts a (job type, error type) needs before its own statistics are trusted
#: (fewer: the error type's statistics pooled over job types; fewer again: the priors).
MIN_PAIRS = 20
#: Follow-ups a gap bucket needs before its success rate is compared with others.
MIN_BUCKET = 5
#: Below this smoothed success rate a retry is a waste, whatever the wait.
HOPELESS = 0.05
#: The chosen wait recovers at least this share of the best bucket's success rate: waiting
#: longer would buy less than 10% more successes.
NEAR_BEST = 0.9
#: Seen failing for this long without ever recovering: the error does not clear by waiting.
LONG_WAIT_MS = 300_000
#: How long a process keeps the loaded table and the switch before reading them again.
CACHE_MS = 30_000

#: Error types that say the input, not the world, is wrong: retrying cannot help. Used only
#: while the history holds too few retries of the error type to say otherwise.
VALIDATION_LIKE = re.compile(
    r"valid|schema|parse|decode|malformed|badrequest|bad_request|unprocessable|typeerror|"
    r"valueerror|keyerror|notfound|not_found|forbidden|unauthori[sz]ed|permission|"
    r"\b4(0[0-7]|09|1\d|2[0-8]|[3-9]\d)\b|http_?4(0[0-7]|09|1\d|2[0-8]|[3-9]\d)",
    re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Decision:
    retry: bool
    delay_ms: int
    success_probability: float | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        p = self.success_probability
        return {"retry": self.retry, "delayMs": self.delay_ms,
                "successProbability": round(p, 4) if p is not None else None,
                "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Stats:
    """Follow-ups of one (job type, error type): totals and per gap bucket [n, ok, gap sum]."""

    n: int
    ok: int
    buckets: tuple[tuple[int, int, int], ...]
    max_gap_ms: int

    @classmethod
    def of(cls, d: Mapping[str, Any]) -> Stats:
        return cls(int(d["n"]), int(d["ok"]),
                   tuple((int(b[0]), int(b[1]), int(b[2])) for b in d["buckets"]),
                   int(d["maxGapMs"]))


@dataclass(slots=True)
class Model:
    version: int | None
    by_type: dict[tuple[str, str], Stats] = field(default_factory=dict)
    by_error: dict[str, Stats] = field(default_factory=dict)

    @classmethod
    def parse(cls, version: int | None, text: str) -> Model:
        raw = orjson.loads(text)
        m = cls(version)
        for s in raw.get("stats", ()):
            st = Stats.of(s)
            if s.get("jobType") is None:
                m.by_error[s["errorType"]] = st
            else:
                m.by_type[(s["jobType"], s["errorType"])] = st
        return m

    def stats(self, job_type: str, error_type: str) -> tuple[Stats | None, str]:
        s = self.by_type.get((job_type, error_type))
        if s is not None and s.n >= MIN_PAIRS:
            return s, f"{job_type} after {error_type}"
        s = self.by_error.get(error_type)
        if s is not None and s.n >= MIN_PAIRS:
            return s, f"any job type after {error_type}"
        return None, ""


def _rate(ok: int, n: int) -> float:
    # Laplace smoothing: a bucket of 3 successes out of 3 is not a certainty
    return (ok + 1) / (n + 2)


def _fmt_ms(ms: float) -> str:
    if ms < 1_000:
        return f"{ms:.0f} ms"
    if ms < 120_000:
        return f"{ms / 1000:.0f} s"
    if ms < 7_200_000:
        return f"{ms / 60_000:.0f} min"
    return f"{ms / 3_600_000:.1f} h"


def decide(model: Model | None, job_type: str, error_type: str | None, fixed_delay_ms: int,
           cap_ms: int) -> Decision:
    """The decision for one failure with attempts left. Pure: the tests drive it directly."""
    etype = error_type or "error"
    stats, scope = model.stats(job_type, etype) if model is not None else (None, "")
    if stats is None:
        if VALIDATION_LIKE.search(etype):
            return Decision(False, 0, None, f"{etype} looks like a validation error, which a "
                                            "retry cannot fix (no retry history for it yet)")
        return Decision(True, fixed_delay_ms, None,
                        f"no retry history for {etype} yet: the fixed backoff")
    overall = _rate(stats.ok, stats.n)
    rated = [(GAP_BUCKETS_MS[i], n, ok, gsum) for i, (n, ok, gsum) in enumerate(stats.buckets)
             if n >= MIN_BUCKET]
    best = max((_rate(ok, n) for _, n, ok, _ in rated), default=overall)
    if best < HOPELESS or (stats.ok == 0 and stats.max_gap_ms >= LONG_WAIT_MS):
        return Decision(False, 0, best,
                        f"{stats.ok} of {stats.n} retries ({scope}) succeeded, after waits up "
                        f"to {_fmt_ms(stats.max_gap_ms)}: it does not clear by retrying")
    if stats.ok == 0 or not rated:
        # never recovered, but never waited long either: try once past the longest wait seen
        delay = min(cap_ms, max(2 * stats.max_gap_ms, 60_000))
        return Decision(True, delay, overall,
                        f"none of {stats.n} retries ({scope}) after waits up to "
                        f"{_fmt_ms(stats.max_gap_ms)} succeeded: waiting longer "
                        f"({_fmt_ms(delay)})")
    for lo, n, ok, gsum in rated:
        p = _rate(ok, n)
        if p >= NEAR_BEST * best:
            delay = min(cap_ms, max(lo, gsum // n))
            shorter = [(n2, ok2) for lo2, n2, ok2, _ in rated if lo2 < lo]
            why = (f"{ok} of {n} retries ({scope}) succeeded after waiting ~{_fmt_ms(delay)}")
            if shorter:
                sn, sok = sum(x for x, _ in shorter), sum(y for _, y in shorter)
                why += f"; {sok} of {sn} after shorter waits"
            return Decision(True, delay, p, why)
    raise AssertionError("the best bucket is always near the best")  # pragma: no cover


# --- serving -----------------------------------------------------------------------------------

@dataclass(slots=True)
class _Cached:
    at_ms: int
    enabled: bool
    model: Model | None


_cache: dict[int, _Cached] = {}

LOAD = """
SELECT (SELECT value FROM ai_state WHERE key = $2) AS switch,
       (SELECT version FROM ai_models WHERE kind = $1 ORDER BY version DESC LIMIT 1) AS version,
       (SELECT model FROM ai_models WHERE kind = $1 ORDER BY version DESC LIMIT 1) AS model
"""

# The failing jobs' type, attempts left and the non-retryable types of the levels stored in
# PostgreSQL (job, stored policy, registered handler); a cancel request wins over any decision.
JOBS = """
SELECT j.id, j.job_type, j.attempts, j.max_attempts,
       coalesce(j.non_retryable, p.non_retryable) AS nr, jt.non_retryable AS jt_nr
  FROM jobs j
  LEFT JOIN retry_policies p ON p.job_type = j.job_type
  LEFT JOIN job_types jt ON jt.job_type = j.job_type
 WHERE j.id = ANY($1::uuid[]) AND j.cancel_requested_at IS NULL
"""


def forget(deps: Deps) -> None:
    """Drop this process's cached model and switch (after training or flipping the switch)."""
    _cache.pop(id(deps.pool), None)


async def _load(deps: Deps) -> _Cached:
    now = deps.clock.now_ms()
    c = _cache.get(id(deps.pool))
    if c is not None and 0 <= now - c.at_ms < CACHE_MS:
        return c
    r = await deps.pool.fetchrow(LOAD, KIND, SWITCH_KEY)
    assert r is not None  # a SELECT without FROM always returns its one row
    model = Model.parse(r["version"], r["model"]) if r["model"] is not None else None
    c = _Cached(now, r["switch"] in (None, "on"), model)
    _cache[id(deps.pool)] = c
    return c


async def enabled(deps: Deps) -> bool:
    """Both switches: the setting and the run-time one."""
    return deps.settings.adaptive_retries and (await _load(deps)).enabled


async def runtime_enabled(deps: Deps) -> bool:
    """The run-time switch alone (``ai_state``)."""
    return (await _load(deps)).enabled


async def current_model(deps: Deps) -> Model | None:
    return (await _load(deps)).model


async def set_enabled(deps: Deps, on: bool) -> None:
    await deps.pool.execute(
        "INSERT INTO ai_state (key, value) VALUES ($1, $2) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", SWITCH_KEY,
        "on" if on else "off")
    forget(deps)


def is_candidate(o: Outcome, backoff: Mapping[str, Any] | None) -> bool:
    """An ordinary counted failure of an adaptive job."""
    return (backoff is not None and backoff.get("adaptive") is True
            and not o.ok and o.retry_after_ms is None and o.burn_attempt and not o.final
            and not o.cancelled)


async def advise(deps: Deps, outcomes: Sequence[Outcome], candidates: Sequence[int],
                 fixed_delays: Sequence[int], caps: Sequence[int],
                 handler_nr: Sequence[tuple[str, ...] | None], conn: Any = None
                 ) -> dict[int, Decision]:
    """Decisions for ``outcomes[i]``, ``i`` in ``candidates`` (see :func:`is_candidate`).

    ``fixed_delays[i]`` is the delay the job's fixed backoff drew (kept when the advisor has no
    history), ``caps[i]`` its backoff cap, ``handler_nr[i]`` the handler's non-retryable types.
    An index missing from the result is left to the fixed policy (switch off, job gone, or a
    configured non-retryable error type)."""
    if not candidates or not await enabled(deps):
        return {}
    cached = await _load(deps)
    db = conn if conn is not None else deps.pool
    rows = {r["id"]: r for r in await db.fetch(JOBS, [outcomes[i].id for i in candidates])}
    out: dict[int, Decision] = {}
    for i in candidates:
        o = outcomes[i]
        r = rows.get(o.id)
        if r is None:
            continue
        etype = o.error_type or "error"
        # the levels' precedence as FAIL_JOBS applies it: job, stored policy, handler,
        # registered handler defaults, global settings
        nr: Sequence[str] = next(x for x in (r["nr"], handler_nr[i], r["jt_nr"],
                                             deps.settings.non_retryable) if x is not None)
        if etype in nr:
            continue
        if r["attempts"] >= r["max_attempts"]:
            d = decide(cached.model, r["job_type"], etype, fixed_delays[i], caps[i])
            out[i] = Decision(False, 0, d.success_probability,
                              f"no attempts left ({r['attempts']} of {r['max_attempts']})")
            continue
        out[i] = decide(cached.model, r["job_type"], etype, fixed_delays[i], caps[i])
    return out
