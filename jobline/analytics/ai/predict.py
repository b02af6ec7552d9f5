"""Failure prediction (issue 17, item 1): will this job's attempt succeed?

One row per finished attempt of the training window (``job_attempts`` joined to ``jobs``), label
"the attempt completed". Features: queue, job type, the payload's fields (numbers, sizes of
strings and lists, small categorical values; masked keys never read), hour of day and weekday,
attempt number and the previous attempt's error type, the type's failure rate over the hour
before, and where the samples hold them the queue's backlog and the workers' load.

Model: LightGBM gradient boosting, calibrated (isotonic regression with enough rows, else Platt
scaling) on a later slice of time,
evaluated on the last slice (a time-ordered holdout) next to the baseline "the job type's
historical success rate". Stored as text (LightGBM's model format) plus JSON metadata in
``ai_models``: nothing is pickled. Reasons come from the model's own per-feature contributions
(``pred_contrib``, SHAP values for trees); suggestions quote the failure rates the training data
shows for the feature's value, stored with the model.

Invariants: the training, calibration and holdout slices are disjoint and in time order; the
reported metrics are the holdout's; an unknown category is "missing" to the model, never an
error.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from bisect import bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from jobline.analytics.ai import needs_ai_extra
from jobline.shared.platform.clock import from_dt, to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import NotFound, ValidationFailed
from jobline.shared.platform.ids import uuid7_floor

KIND = "failure_prediction"
DEFAULT_DAYS = 7
#: Attempts sampled for training (whole jobs are sampled, so previous-error features hold).
TARGET_ROWS = 300_000
MIN_ROWS = 500
MAX_PAYLOAD_KEYS = 40
MAX_CATEGORIES = 30
FAILED = ("failed", "retry", "timeout", "lease_expired")

ATTEMPTS = """
SELECT a.job_id, a.attempt, a.started_at, a.outcome, a.error_type, a.duration_ms,
       j.queue_name, j.job_type, j.priority, j.payload::text AS payload
  FROM job_attempts a JOIN jobs j ON j.id = a.job_id
 WHERE a.job_id >= $1 AND a.job_id < $2
   AND a.outcome IN ('completed', 'failed', 'retry', 'timeout', 'lease_expired')
   AND (hashtext(a.job_id::text) & 1023) < $3
"""

ESTIMATE = "SELECT coalesce(sum(started), 0) FROM job_rollups WHERE minute >= $1 AND minute < $2"

SAMPLES = """
SELECT metric, subject, at, avg FROM analytics_samples_hour
 WHERE at >= $1 AND at < $2 AND metric IN ('queue.depth', 'workers.busy', 'workers.slots')
"""

RECENT = """
SELECT job_type, sum(completed) AS completed, sum(failed) AS failed FROM job_rollups
 WHERE minute >= $1 AND minute < $2 GROUP BY job_type
"""

SAVE = """
INSERT INTO ai_models (kind, version, trained_at, metrics, meta, model)
SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5 FROM ai_models WHERE kind = $1
RETURNING version
"""
LATEST = """
SELECT version, trained_at, metrics, meta, model FROM ai_models WHERE kind = $1
 ORDER BY version DESC LIMIT 1
"""


@dataclass
class Row:
    job_id: Any
    attempt: int
    at_ms: int
    ok: bool
    error_type: str | None
    duration_ms: int
    queue: str
    job_type: str
    priority: int
    payload: dict[str, Any]
    prev_error: str = "none"
    recent_fail: float = math.nan
    backlog: float = math.nan
    load: float = math.nan


# --- features --------------------------------------------------------------------------------


def _flat(payload: Any, masked: frozenset[str]) -> dict[str, Any]:
    """Top-level and one nested level of a JSON object; masked keys (and their subtrees) out."""
    out: dict[str, Any] = {}
    if not isinstance(payload, dict):
        return out
    for k, v in payload.items():
        if k.lower() in masked:
            continue
        if isinstance(v, dict):
            for k2, v2 in v.items():
                if k2.lower() not in masked and not isinstance(v2, dict | list):
                    out[f"{k}.{k2}"] = v2
        else:
            out[k] = v
    return out


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not (isinstance(v, float) and math.isnan(v))


class Encoder:
    """Rows -> feature matrix, with the vocabularies learnt at training (stored in ``meta``)."""

    BASE_NUM = ("attempt", "hour", "weekday", "priority", "recentFailureRate", "queueBacklog",
                "workerLoad")
    BASE_CAT = ("queue", "jobType", "previousError")

    def __init__(self, meta: dict[str, Any]) -> None:
        self.num_keys: list[str] = meta["numKeys"]  # payload numeric fields
        self.len_keys: list[str] = meta["lenKeys"]  # payload strings/lists: their length
        self.cat_keys: list[str] = meta["catKeys"]  # payload small categorical fields
        self.vocab: dict[str, list[str]] = meta["vocab"]
        self.masked = frozenset(meta["masked"])
        self.names = [*self.BASE_NUM, *(f"payload.{k}" for k in self.num_keys),
                      *(f"len(payload.{k})" for k in self.len_keys), *self.BASE_CAT,
                      *(f"payload.{k}" for k in self.cat_keys)]
        self.categorical = list(range(len(self.names) - len(self.BASE_CAT) - len(self.cat_keys),
                                      len(self.names)))
        self._index = {f: {v: i for i, v in enumerate(vs)} for f, vs in self.vocab.items()}

    @classmethod
    def learn(cls, rows: list[Row], masked: frozenset[str]) -> Encoder:
        seen: Counter[str] = Counter()
        values: dict[str, list[Any]] = defaultdict(list)
        for r in rows:
            for k, v in _flat(r.payload, masked).items():
                seen[k] += 1
                if len(values[k]) < 5000:
                    values[k].append(v)
        keys = [k for k, n in seen.most_common(MAX_PAYLOAD_KEYS) if n >= 0.01 * len(rows)]
        num, length, cat = [], [], []
        vocab: dict[str, list[str]] = {}
        for k in sorted(keys):
            vs = values[k]
            if sum(_is_num(v) or isinstance(v, bool) for v in vs) >= 0.9 * len(vs):
                num.append(k)
                continue
            distinct = Counter(str(v) for v in vs if isinstance(v, str | bool))
            if 0 < len(distinct) <= MAX_CATEGORIES and all(isinstance(v, str | bool) for v in vs):
                cat.append(k)
                vocab[f"payload.{k}"] = sorted(distinct)
            else:
                length.append(k)
        vocab["queue"] = sorted({r.queue for r in rows})
        vocab["jobType"] = sorted({r.job_type for r in rows})
        vocab["previousError"] = sorted({r.prev_error for r in rows} | {"none"})
        return cls({"numKeys": num, "lenKeys": length, "catKeys": cat, "vocab": vocab,
                    "masked": sorted(masked)})

    def meta(self) -> dict[str, Any]:
        return {"numKeys": self.num_keys, "lenKeys": self.len_keys, "catKeys": self.cat_keys,
                "vocab": self.vocab, "masked": sorted(self.masked), "names": self.names,
                "categorical": self.categorical}

    def _code(self, field: str, value: Any) -> float:
        i = self._index.get(field, {}).get(str(value))
        return math.nan if i is None else float(i)

    def row(self, r: Row) -> list[float]:
        when = datetime.fromtimestamp(r.at_ms / 1000, UTC)
        p = _flat(r.payload, self.masked)
        out = [float(r.attempt), float(when.hour), float(when.weekday()), float(r.priority),
               r.recent_fail, r.backlog, r.load]
        for k in self.num_keys:
            v = p.get(k)
            out.append(float(v) if isinstance(v, int | float) and not isinstance(v, str)
                       and _is_num(v) else math.nan)
        for k in self.len_keys:
            v = p.get(k)
            out.append(float(len(v)) if isinstance(v, str | list) else math.nan)
        out += [self._code("queue", r.queue), self._code("jobType", r.job_type),
                self._code("previousError", r.prev_error)]
        for k in self.cat_keys:
            out.append(self._code(f"payload.{k}", p.get(k)))
        return out


# --- statistics the suggestions quote ----------------------------------------------------------


def _feature_stats(enc: Encoder, X: list[list[float]], y: list[bool]) -> dict[str, Any]:
    """Per numeric feature: decile edges with the failure rate in each bin; per categorical
    feature: failure rate per value. Only features with enough rows in a bin/value."""
    overall = 1 - sum(y) / len(y)
    stats: dict[str, Any] = {"overallFailureRate": overall, "numeric": {}, "categorical": {}}
    cats = set(enc.categorical)
    for j, name in enumerate(enc.names):
        col = [(row[j], ok) for row, ok in zip(X, y, strict=True) if not math.isnan(row[j])]
        if len(col) < 50:
            continue
        if j in cats:
            per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
            vocab = enc.vocab.get(name, [])
            for v, ok in col:
                label = vocab[int(v)] if int(v) < len(vocab) else str(v)
                per[label][0] += 1
                per[label][1] += 0 if ok else 1
            stats["categorical"][name] = {k: {"n": n, "failureRate": f / n}
                                          for k, (n, f) in per.items() if n >= 20}
        else:
            values = sorted(v for v, _ in col)
            edges = sorted({values[int(len(values) * q / 10)] for q in range(1, 10)})
            bins: list[list[int]] = [[0, 0] for _ in range(len(edges) + 1)]
            for v, ok in col:
                b = bisect_right(edges, v)
                bins[b][0] += 1
                bins[b][1] += 0 if ok else 1
            stats["numeric"][name] = {"edges": edges,
                                      "bins": [{"n": n, "failureRate": f / n if n else None}
                                               for n, f in bins]}
    return stats


# --- training ----------------------------------------------------------------------------------


def _metrics(y_fail: list[int], p_fail: list[float]) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    n = len(y_fail)
    acc = sum((p >= 0.5) == bool(t) for t, p in zip(y_fail, p_fail, strict=True)) / n
    # expected calibration error over 10 equal-width bins
    bins: list[list[float]] = [[0, 0.0, 0.0] for _ in range(10)]
    for t, p in zip(y_fail, p_fail, strict=True):
        b = bins[min(9, int(p * 10))]
        b[0] += 1
        b[1] += p
        b[2] += t
    ece = sum(abs(b[1] - b[2]) for b in bins if b[0]) / n
    both = len(set(y_fail)) == 2
    return {"rocAuc": float(roc_auc_score(y_fail, p_fail)) if both else math.nan,
            "prAuc": float(average_precision_score(y_fail, p_fail)) if both else math.nan,
            "accuracy": acc, "brier": float(brier_score_loss(y_fail, p_fail)), "ece": ece,
            "failureRate": sum(y_fail) / n, "rows": n}


async def _load_rows(deps: Deps, from_ms: int, to_ms: int) -> list[Row]:
    est = int(await deps.pool.fetchval(ESTIMATE, to_dt(from_ms), to_dt(to_ms)) or 0)
    k = 1024 if est <= TARGET_ROWS else max(1, 1024 * TARGET_ROWS // est)
    recs = await deps.pool.fetch(ATTEMPTS, uuid7_floor(from_ms - 86_400_000),
                                 uuid7_floor(to_ms), k)
    rows = [Row(r["job_id"], r["attempt"], from_dt(r["started_at"]), r["outcome"] == "completed",
                r["error_type"], r["duration_ms"], r["queue_name"], r["job_type"], r["priority"],
                orjson.loads(r["payload"])) for r in recs]
    rows = [r for r in rows if from_ms <= r.at_ms < to_ms]
    # previous attempt's error type: from the same job's attempts in this sample (whole jobs
    # are sampled, so they are all here)
    by_job: dict[Any, list[Row]] = defaultdict(list)
    for r in rows:
        by_job[r.job_id].append(r)
    for attempts in by_job.values():
        attempts.sort(key=lambda r: r.attempt)
        for prev, cur in itertools.pairwise(attempts):
            cur.prev_error = (prev.error_type or "unknown") if not prev.ok else "none"
    rows.sort(key=lambda r: (r.at_ms, r.attempt))
    # the type's failure rate over the hour before each attempt (a sliding window)
    windows: dict[str, list[tuple[int, bool]]] = defaultdict(list)
    heads: dict[str, int] = defaultdict(int)
    fails: dict[str, int] = defaultdict(int)
    for r in rows:
        w = windows[r.job_type]
        while heads[r.job_type] < len(w) and w[heads[r.job_type]][0] < r.at_ms - 3_600_000:
            fails[r.job_type] -= 0 if w[heads[r.job_type]][1] else 1
            heads[r.job_type] += 1
        n = len(w) - heads[r.job_type]
        r.recent_fail = fails[r.job_type] / n if n >= 10 else math.nan
        w.append((r.at_ms, r.ok))
        fails[r.job_type] += 0 if r.ok else 1
    # backlog and worker load from the hourly samples, where the scheduler recorded them
    samples: dict[tuple[str, str, int], float] = {}
    for s in await deps.pool.fetch(SAMPLES, to_dt(from_ms - 3_600_000), to_dt(to_ms)):
        samples[(s["metric"], s["subject"], from_dt(s["at"]))] = float(s["avg"])
    if samples:
        for r in rows:
            hour = r.at_ms // 3_600_000 * 3_600_000
            r.backlog = samples.get(("queue.depth", r.queue, hour), math.nan)
            busy = samples.get(("workers.busy", "*", hour))
            slots = samples.get(("workers.slots", "*", hour))
            r.load = busy / slots if busy is not None and slots else math.nan
    return rows


@needs_ai_extra
async def train(deps: Deps, *, days: int = DEFAULT_DAYS, seed: int = 42) -> dict[str, Any]:
    """Train on the last ``days`` of attempts, evaluate on the newest 20%, store a new version.

    Raises ``ValidationFailed`` when the history is too small to learn from."""
    if not 1 <= days <= 400:
        raise ValidationFailed("days", "must be 1-400")
    to_ms = deps.clock.now_ms()
    from_ms = to_ms - days * 86_400_000
    rows = await _load_rows(deps, from_ms, to_ms)
    if len(rows) < MIN_ROWS or len({r.ok for r in rows}) < 2:
        raise ValidationFailed("days", f"{len(rows)} finished attempts with both outcomes in the "
                                       f"last {days} days; at least {MIN_ROWS} are needed")
    n = len(rows)
    a, b = int(n * 0.7), int(n * 0.8)  # time order: train | calibrate | holdout
    # each job type's success rate over the training and calibration slices: the baseline, and
    # the "recent failure rate" of an attempt with too little recent history (the same
    # imputation serving uses when the rollups hold too little of the last hour)
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows[:b]:
        per[r.job_type][0] += 1
        per[r.job_type][1] += 1 if r.ok else 0
    overall = sum(r.ok for r in rows[:b]) / b
    type_success = {t: s / c for t, (c, s) in per.items() if c}
    for r in rows:
        if math.isnan(r.recent_fail):
            r.recent_fail = 1 - type_success.get(r.job_type, overall)
    fitted = await asyncio.to_thread(
        _fit, rows, a, b, type_success, overall,
        frozenset(k.lower() for k in deps.settings.mask_keys), seed)
    metrics = {**fitted["metrics"],
               "window": {"from": to_dt(from_ms).isoformat(), "to": to_dt(to_ms).isoformat()}}
    meta, model_text = fitted["meta"], fitted["model"]
    trained_at = to_dt(to_ms)
    version = await deps.pool.fetchval(SAVE, KIND, trained_at, orjson.dumps(metrics).decode(),
                                       orjson.dumps(meta).decode(), model_text)
    return {"kind": KIND, "version": version, "trainedAt": trained_at.isoformat(), **metrics}


def _fit(rows: list[Row], a: int, b: int, type_success: dict[str, float], overall: float,
         masked: frozenset[str], seed: int) -> dict[str, Any]:
    """Fit, calibrate and evaluate (CPU-bound: runs in a thread, off the event loop)."""
    import lightgbm as lgb
    import numpy as np

    n = len(rows)
    enc = Encoder.learn(rows, masked)
    X = [enc.row(r) for r in rows]
    y = [r.ok for r in rows]
    clf = lgb.LGBMClassifier(n_estimators=300, learning_rate=0.05, num_leaves=31,
                             min_child_samples=40, subsample=0.8, subsample_freq=1,
                             colsample_bytree=0.9, random_state=seed, verbose=-1,
                             deterministic=True, force_row_wise=True)
    Xa = np.asarray(X, dtype=np.float64)
    ya = np.asarray(y, dtype=np.int8)
    clf.fit(Xa[:a], ya[:a], feature_name=[_safe(nm) for nm in enc.names],
            categorical_feature=enc.categorical)
    booster = clf.booster_
    calibration = _fit_calibration(booster.predict(Xa[a:b], raw_score=True), ya[a:b])
    p_hold = [_calibrate({"calibration": calibration}, float(v))
              for v in booster.predict(Xa[b:], raw_score=True)]
    y_fail = [0 if ok else 1 for ok in y[b:]]
    model = _metrics(y_fail, [1 - float(p) for p in p_hold])
    base_p = [1 - type_success.get(r.job_type, overall) for r in rows[b:]]
    baseline = _metrics(y_fail, base_p)
    durations: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        if r.ok:
            durations[r.job_type].append(r.duration_ms)
    p99 = {t: sorted(d)[min(len(d) - 1, int(0.99 * len(d)))] for t, d in durations.items()}
    meta = {**enc.meta(),
            "calibration": calibration,
            "stats": _feature_stats(enc, X[:b], y[:b]),
            "typeSuccess": type_success, "overallSuccess": overall,
            "p99DurationMs": p99}
    metrics = {"model": model, "baseline": baseline,
               "rows": {"train": a, "calibration": b - a, "holdout": n - b},
               "features": len(enc.names)}
    return {"metrics": metrics, "meta": meta, "model": booster.model_to_string()}


def _safe(name: str) -> str:
    # LightGBM refuses some JSON-special characters in feature names
    return "".join(c if c.isalnum() or c in "_." else "_" for c in name)


# --- serving -----------------------------------------------------------------------------------


@dataclass
class Loaded:
    version: int
    trained_at: datetime
    metrics: dict[str, Any]
    meta: dict[str, Any]
    encoder: Encoder
    booster: Any


_cache: dict[int, Loaded] = {}


@needs_ai_extra
async def latest(deps: Deps) -> Loaded:
    r = await deps.pool.fetchrow(LATEST, KIND)
    if r is None:
        raise NotFound("no failure-prediction model is trained yet (POST /api/v1/ai/train)")
    if r["version"] in _cache:
        return _cache[r["version"]]
    import lightgbm as lgb

    meta = orjson.loads(r["meta"]) if isinstance(r["meta"], str | bytes) else r["meta"]
    metrics = orjson.loads(r["metrics"]) if isinstance(r["metrics"], str | bytes) \
        else r["metrics"]
    loaded = Loaded(r["version"], r["trained_at"], metrics, meta, Encoder(meta),
                    lgb.Booster(model_str=r["model"]))
    _cache.clear()
    _cache[r["version"]] = loaded
    return loaded


#: Below this many calibration rows isotonic regression overfits its steps; Platt scaling (a
#: logistic fit of the raw score) has two parameters and is the safer choice.
ISOTONIC_MIN_ROWS = 5_000


def _fit_calibration(raw: Any, y: Any) -> dict[str, Any]:
    """Calibration of raw scores (log-odds) on a slice of time the trees did not see."""
    if len(y) >= ISOTONIC_MIN_ROWS:
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        iso.fit(raw, y)
        return {"method": "isotonic", "x": [float(v) for v in iso.X_thresholds_],
                "y": [float(v) for v in iso.y_thresholds_]}
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e6)
    lr.fit([[float(v)] for v in raw], y)
    return {"method": "platt", "a": float(lr.coef_[0][0]), "b": float(lr.intercept_[0])}


def _calibrate(meta: dict[str, Any], raw: float) -> float:
    """The calibrated success probability of a raw score (log-odds)."""
    c = meta["calibration"]
    if c["method"] == "platt":
        z = c["a"] * raw + c["b"]
        return 1 / (1 + math.exp(-z)) if z >= -700 else 0.0
    xs, ys = c["x"], c["y"]
    if raw <= xs[0]:
        return float(ys[0])
    if raw >= xs[-1]:
        return float(ys[-1])
    i = bisect_right(xs, raw)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return float(y0 + (y1 - y0) * (raw - x0) / (x1 - x0)) if x1 > x0 else float(y1)


def _show(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 or v == int(v) else f"{v:,.2f}"


def _explain(m: Loaded, row: Row, x: list[float], contrib: list[float]) -> tuple[list[str],
                                                                                 list[str]]:
    names, stats, enc = m.encoder.names, m.meta["stats"], m.encoder
    overall = stats["overallFailureRate"]
    order = sorted(range(len(names)), key=lambda j: -abs(contrib[j]))
    reasons, suggestions = [], []
    for j in order[:4]:
        c = contrib[j]
        if abs(c) < 0.05 or math.isnan(x[j]):
            continue
        name = names[j]
        if j in enc.categorical:
            vocab = enc.vocab.get(name, [])
            shown = vocab[int(x[j])] if int(x[j]) < len(vocab) else "?"
        else:
            shown = _show(x[j])
        reasons.append(f"{name} = {shown} {'raises' if c > 0 else 'lowers'} the success odds "
                       f"({c:+.2f} log-odds)")
        if c >= 0:
            continue
        if j in enc.categorical:
            s = stats["categorical"].get(name, {}).get(shown)
            if name == "previousError" and shown != "none":
                p99 = m.meta["p99DurationMs"].get(row.job_type)
                if "timeout" in shown.lower() and p99:
                    suggestions.append(f"timeouts dominate the previous attempts: raise "
                                       f"timeoutMs to p99 duration x 1.5 = {p99 * 1.5:,.0f} ms")
                elif s:
                    suggestions.append(f"after a {shown} the next attempt fails "
                                       f"{s['failureRate']:.0%} of the time (vs "
                                       f"{overall:.0%} overall): fix the cause before retrying")
            elif s and overall > 0 and s["failureRate"] >= 2 * overall:
                suggestions.append(f"{name} = {shown} fails {s['failureRate'] / overall:.1f}x "
                                   f"more often ({s['failureRate']:.0%} vs {overall:.0%})")
            continue
        s = stats["numeric"].get(name)
        if s is None:
            continue
        b = bisect_right(s["edges"], x[j])
        rate = s["bins"][b]["failureRate"]
        if rate is None or overall <= 0 or rate < 2 * overall:
            continue
        lo = s["edges"][b - 1] if b > 0 else None
        where = f"{name} above ~{_show(lo)}" if lo is not None else f"{name} at {_show(x[j])}"
        advice = ("split the job" if name.startswith(("payload.", "len(")) else
                  "schedule it outside these hours" if name == "hour" else
                  "an incident may be under way: delay the job or check the type's errors"
                  if name == "recentFailureRate" else "add workers or lower the backlog"
                  if name in ("queueBacklog", "workerLoad") else "review the job's input")
        suggestions.append(f"{where} fails {rate / overall:.0f}x more often ({rate:.0%} vs "
                           f"{overall:.0%}): {advice}")
    return reasons, suggestions


@needs_ai_extra
async def predict(deps: Deps, *, job_type: str, payload: Any, queue: str | None = None,
                  queue_backlog: float | None = None, worker_load: float | None = None,
                  attempt: int = 1, previous_error: str | None = None) -> dict[str, Any]:
    """The calibrated probability that an attempt of this job succeeds, with its reasons."""
    m = await latest(deps)
    now = deps.clock.now_ms()
    minute = now // 60_000 * 60_000
    recent = {r["job_type"]: r for r in await deps.pool.fetch(
        RECENT, to_dt(minute - 3_600_000), to_dt(minute + 60_000))}
    rr = recent.get(job_type)
    finished = (int(rr["completed"]) + int(rr["failed"])) if rr else 0
    q = queue or job_type
    if queue_backlog is None and queue is not None:
        d = (await deps.dispatch.depth([queue])).get(queue, {})
        queue_backlog = float(d.get("ready", 0))
    row = Row(None, attempt, now, True, None, 0, q, job_type, 5,
              payload if isinstance(payload, dict) else {},
              prev_error=previous_error or "none",
              recent_fail=(int(rr["failed"]) / finished if rr and finished >= 10 else
                           1 - m.meta["typeSuccess"].get(job_type, m.meta["overallSuccess"])),
              backlog=math.nan if queue_backlog is None else float(queue_backlog),
              load=math.nan if worker_load is None else float(worker_load))
    x = m.encoder.row(row)
    import numpy as np

    X = np.asarray([x], dtype=np.float64)
    raw = float(m.booster.predict(X, raw_score=True)[0])
    contrib = [float(v) for v in m.booster.predict(X, pred_contrib=True)[0][:-1]]
    p = _calibrate(m.meta, raw)
    reasons, suggestions = _explain(m, row, x, contrib)
    if job_type not in m.encoder.vocab["jobType"]:
        reasons.insert(0, f"job type {job_type!r} was not in the training data: the estimate "
                          f"rests on the other features")
    mm = m.metrics["model"]
    return {"successProbability": round(p, 4), "reasons": reasons, "suggestions": suggestions,
            "model": {"version": m.version, "trainedAt": m.trained_at.isoformat(),
                      "rocAuc": mm["rocAuc"], "prAuc": mm["prAuc"], "brier": mm["brier"]}}
