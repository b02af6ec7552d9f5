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
passed in between (``GAP_BUCKETS_MS``); and the **clear times**: after each failure, how long
until the job type (any job of it) completed again, when fresh jobs of the type kept failing
with the same error meanwhile (else 0: nothing says the error outlasted the failure). Success
rates are compared by their confidence bounds (Wilson, ``Z``), never by a handful of
follow-ups. From it:

* an error type whose retries (almost) never succeeded, whatever the wait, is not retried
  (validation errors, 4xx-like failures); nor one whose retries succeed less than
  ``MIN_SUCCESS`` of the time whatever the wait (a job's own timeouts), each retry being far
  likelier wasted than not; but neither rule stops an error the follow-ups never waited out;
* when the error kept failing the job type for longer than any follow-up waited (an outage,
  a rate limit's window), the first wait is how long it took to clear for ``CLEAR_SHARE`` of
  its failures (``CLEAR_SHARE_LAST`` for a job's last attempt);
* otherwise the delay is the shortest wait after which retries succeeded nearly as often as
  after any longer wait (the best wait for a job's last attempt);
* when the longest waits seen did best but still mostly failed, the error lasts longer than
  the fixed backoff ever waited: the advisor waits twice the longest wait seen (``PLATEAU``);
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

import math
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
#: When the longest waits seen recover best, yet less often than this, the history has not
#: seen how long the error really lasts (the fixed backoff never waited that long): wait
#: twice the longest wait seen instead of repeating waits that mostly failed.
PLATEAU = 0.6
#: Clear times are stored as this many quantiles: ``q[k]`` is the ``(k + 1) / CLEAR_STEPS`` one.
CLEAR_STEPS = 20
#: A retry waits until this share of the error type's failures had seen the job type complete
#: again (any job of it), when the follow-ups never waited that long ...
CLEAR_SHARE = 0.9
#: ... and the last attempt a job has left waits until this share had.
CLEAR_SHARE_LAST = 0.95
#: One-sided confidence of the success-rate bounds (Wilson, 95%).
Z = 1.645
#: Retries that succeed less often than this, after every wait tried and with the wait the
#: error needs covered, are not made: each would far likelier be a wasted run than a rescued
#: job (by the upper bound of the rate: only a well-measured low rate stops retries).
MIN_SUCCESS = 0.2
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


@dataclass(frozen=True, slots=True)
class Clears:
    """How long after failures of one (job type, error type) an attempt of that job type (any
    job) next completed: ``n`` failures, ``censored`` of them with no completion before the
    window's end, ``q`` the quantiles (None: past the window's end)."""

    n: int
    censored: int
    q: tuple[int | None, ...]
    #: first attempts of the type that failed with the error and were followed by another
    #: first attempt, how many of those failed with it too, and the error's share of the
    #: type's first attempts
    fresh: int = 0
    fresh_same: int = 0
    fresh_share: float = 0.0

    @classmethod
    def of(cls, d: Mapping[str, Any]) -> Clears:
        return cls(int(d["n"]), int(d["censored"]),
                   tuple(int(x) if x is not None else None for x in d["q"]),
                   int(d.get("fresh", 0)), int(d.get("freshSame", 0)),
                   float(d.get("freshShare", 0.0)))

    def in_runs(self) -> bool:
        """The error comes in runs: a fresh job after one that failed with it fails with it
        too significantly more often (lower bound) than fresh jobs of the type do. The world's
        error (an outage, a rate limit) does; a job's own (a timeout, a bad input) does not,
        and then two of them in a row are chance, not a duration to wait out."""
        return (self.fresh >= MIN_PAIRS
                and bounds(self.fresh_same, self.fresh)[0] > self.fresh_share)

    def wait_for(self, share: float) -> int | None:
        """The wait after which ``share`` of the failures had cleared (None: unknown, the
        window ended first)."""
        return self.q[max(0, min(len(self.q), math.ceil(share * len(self.q))) - 1)]

    def share_within(self, ms: int) -> float:
        """The share of the failures that had cleared within ``ms``."""
        return sum(1 for x in self.q if x is not None and x <= ms) / len(self.q)


@dataclass(slots=True)
class Model:
    version: int | None
    by_type: dict[tuple[str, str], Stats] = field(default_factory=dict)
    by_error: dict[str, Stats] = field(default_factory=dict)
    clears_by_type: dict[tuple[str, str], Clears] = field(default_factory=dict)
    clears_by_error: dict[str, Clears] = field(default_factory=dict)

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
        for c in raw.get("clears", ()):  # tables trained before clear times have none
            cl = Clears.of(c)
            if c.get("jobType") is None:
                m.clears_by_error[c["errorType"]] = cl
            else:
                m.clears_by_type[(c["jobType"], c["errorType"])] = cl
        return m

    def stats(self, job_type: str, error_type: str) -> tuple[Stats | None, str]:
        s = self.by_type.get((job_type, error_type))
        if s is not None and s.n >= MIN_PAIRS:
            return s, f"{job_type} after {error_type}"
        s = self.by_error.get(error_type)
        if s is not None and s.n >= MIN_PAIRS:
            return s, f"any job type after {error_type}"
        return None, ""

    def clears(self, job_type: str, error_type: str) -> tuple[Clears | None, str]:
        # the job type's own clear times first (a rate limit's window is its dependency's),
        # when it has enough failures and fresh jobs to judge whether the error comes in runs
        c = self.clears_by_type.get((job_type, error_type))
        if c is not None and c.n >= MIN_PAIRS and c.fresh >= MIN_PAIRS:
            return c, job_type
        c = self.clears_by_error.get(error_type)
        if c is not None and c.n >= MIN_PAIRS:
            return c, "any job type"
        return None, ""


def _rate(ok: int, n: int) -> float:
    # Laplace smoothing: a bucket of 3 successes out of 3 is not a certainty
    return (ok + 1) / (n + 2)


def bounds(ok: int, n: int) -> tuple[float, float]:
    """Wilson interval of a success rate at one-sided confidence ``Z``: a decision that needs
    a rate to be high takes the lower bound, one that needs it low the upper bound, so a
    handful of follow-ups never decides alone."""
    if n <= 0:
        return 0.0, 1.0
    p, z2 = ok / n, Z * Z
    centre = p + z2 / (2 * n)
    half = Z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, (centre - half) / (1 + z2 / n)), min(1.0, (centre + half) / (1 + z2 / n))


def _fmt_ms(ms: float) -> str:
    if ms < 1_000:
        return f"{ms:.0f} ms"
    if ms < 120_000:
        return f"{ms / 1000:.0f} s"
    if ms < 7_200_000:
        return f"{ms / 60_000:.0f} min"
    return f"{ms / 3_600_000:.1f} h"


def decide(model: Model | None, job_type: str, error_type: str | None, fixed_delay_ms: int,
           cap_ms: int, attempts_left: int | None = None) -> Decision:
    """The decision for one failure with attempts left (``attempts_left``: the attempts the job
    may still make, this retry included; None: unknown). Pure: the tests drive it directly."""
    etype = error_type or "error"
    stats, scope = model.stats(job_type, etype) if model is not None else (None, "")
    if stats is None:
        if VALIDATION_LIKE.search(etype):
            return Decision(False, 0, None, f"{etype} looks like a validation error, which a "
                                            "retry cannot fix (no retry history for it yet)")
        return Decision(True, fixed_delay_ms, None,
                        f"no retry history for {etype} yet: the fixed backoff")
    assert model is not None
    last = attempts_left == 1
    # how long the job type took to work again after this error (any job): the wait the
    # error needs, as far as the history shows it
    clears, cscope = model.clears(job_type, etype)
    if clears is not None and not clears.in_runs():
        clears = None
    share = CLEAR_SHARE_LAST if last else CLEAR_SHARE
    clear_ms = clears.wait_for(share) if clears is not None else None
    # the follow-ups waited as long as the error takes to clear: what they say about
    # recovery is not just a wait too short
    long_enough = clear_ms is None or stats.max_gap_ms >= clear_ms
    overall = _rate(stats.ok, stats.n)
    rated = [(GAP_BUCKETS_MS[i], n, ok, gsum, *bounds(ok, n))
             for i, (n, ok, gsum) in enumerate(stats.buckets) if n >= MIN_BUCKET]
    top = max((ub for *_, ub in rated), default=bounds(stats.ok, stats.n)[1])
    no_wait_helps = not _rising(rated)
    if long_enough and (top < HOPELESS or (stats.ok == 0 and stats.max_gap_ms >= LONG_WAIT_MS)
                        or (no_wait_helps and bounds(stats.ok, stats.n)[1] < HOPELESS)):
        return Decision(False, 0, overall,
                        f"{stats.ok} of {stats.n} retries ({scope}) succeeded, after waits up "
                        f"to {_fmt_ms(stats.max_gap_ms)}: it does not clear by retrying")
    best_p = max((_rate(ok, n) for _, n, ok, *_ in rated), default=overall)
    if (long_enough and no_wait_helps and best_p < MIN_SUCCESS
            and bounds(stats.ok, stats.n)[1] < MIN_SUCCESS):
        return Decision(False, 0, overall,
                        f"{stats.ok} of {stats.n} retries ({scope}) succeeded, whatever the "
                        f"wait (up to {_fmt_ms(stats.max_gap_ms)}): below "
                        f"{MIN_SUCCESS:.0%}, a retry is far likelier wasted than not")
    if clear_ms is not None and not long_enough:
        assert clears is not None
        delay = min(cap_ms, clear_ms)
        return Decision(True, delay, clears.share_within(delay),
                        f"{job_type} completed again within {_fmt_ms(clear_ms)} after "
                        f"{share:.0%} of {etype} failures ({cscope}); retries waited at most "
                        f"{_fmt_ms(stats.max_gap_ms)}: waiting {_fmt_ms(delay)}")
    if stats.ok == 0 or not rated:
        # never recovered, but never waited long either: try once past the longest wait seen
        delay = min(cap_ms, max(2 * stats.max_gap_ms, 60_000))
        return Decision(True, delay, overall,
                        f"none of {stats.n} retries ({scope}) after waits up to "
                        f"{_fmt_ms(stats.max_gap_ms)} succeeded: waiting longer "
                        f"({_fmt_ms(delay)})")
    lo_last, n_last, ok_last, *_ = rated[-1]
    if (_rising(rated) and _rate(ok_last, n_last) < PLATEAU and stats.max_gap_ms < cap_ms):
        delay = min(cap_ms, 2 * stats.max_gap_ms)
        return Decision(True, delay, _rate(ok_last, n_last),
                        f"retries ({scope}) succeeded more the longer they waited, at best "
                        f"{ok_last} of {n_last} after waits from {_fmt_ms(lo_last)}: waiting "
                        f"longer than any seen ({_fmt_ms(delay)})")
    # the best wait is the one whose success rate has the highest lower bound (a lucky
    # handful does not win); the chosen one the shortest whose rate is near the best's, or the
    # best itself for the last attempt
    best_at = max(range(len(rated)), key=lambda k: (rated[k][4], -k))
    target = _rate(rated[best_at][2], rated[best_at][1]) * (1.0 if last else NEAR_BEST)
    for k, (lo, n, ok, gsum, _lb, _ub) in enumerate(rated):
        p = _rate(ok, n)
        if p >= target or k == best_at:
            delay = min(cap_ms, max(lo, gsum // n))
            shorter = [(n2, ok2) for lo2, n2, ok2, *_ in rated if lo2 < lo]
            why = (f"{ok} of {n} retries ({scope}) succeeded after waiting ~{_fmt_ms(delay)}")
            if shorter:
                sn, sok = sum(x for x, _ in shorter), sum(y for _, y in shorter)
                why += f"; {sok} of {sn} after shorter waits"
            if last:
                why += " (the job's last attempt: the best wait)"
            return Decision(True, delay, p, why)
    raise AssertionError("the best bucket is always near the best")  # pragma: no cover


def _rising(rated: Sequence[tuple[int, int, int, int, float, float]]) -> bool:
    """The longest waits rated did best (by lower bound) of at least two: the history has not
    seen the wait after which the error stops mattering."""
    return len(rated) > 1 and rated[-1][4] > max(r[4] for r in rated[:-1])


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
        out[i] = decide(cached.model, r["job_type"], etype, fixed_delays[i], caps[i],
                        r["max_attempts"] - r["attempts"])
    return out
