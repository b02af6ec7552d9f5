"""The analytics API (issue 16): /api/v1/analytics/* and GraphQL's ``analytics``, read from the
rollup tables of migration 0022. The writers (live fold, rebuild, seed) are tested elsewhere;
here rows with known values are inserted directly and the answers checked exactly: grain
decomposition against the minute data, percentiles against the raw values, previous-period
change, SLA compliance, availability incidents and MTTR, cost, a critical path on a DAG run
through the engine, validation, admin-only access, and REST == GraphQL."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from jobline.analytics import query as aq
from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec, Outcome
from jobline.shared.observe import sketch
from jobline.shared.platform.clock import FakeClock, to_dt
from jobline.shared.platform.connections import Deps
from jobline.testing import serve_app

MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
T0 = 1_800_000_000_000  # 2027-01-15T08:00:00Z, a whole hour
COLS = ("submitted", "started", "completed", "failed", "retries", "dead_letter", "cancelled",
        "duration_sum_ms", "wait_sum_ms", "e2e_sum_ms", "failed_ms")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def table(kind: str, grain: int) -> tuple[str, str]:
    base = {"rollups": "job_rollups", "hist": "job_rollup_histograms",
            "errors": "job_rollup_errors", "attempts": "job_rollup_attempts"}[kind]
    if grain == MIN:
        return base, "minute"
    return base + ("_hour" if grain == HOUR else "_day"), "at"


class Store:
    """Rollup rows built in Python (minute grain) and written at the grains asked for."""

    def __init__(self) -> None:
        self.rollups: dict[tuple[int, str, str], Counter[str]] = defaultdict(Counter)
        self.hist: Counter[tuple[int, str, str, str, int]] = Counter()
        self.errors: Counter[tuple[int, str, str, str]] = Counter()
        self.raw: dict[str, list[tuple[int, int]]] = defaultdict(list)  # metric -> (minute, ms)

    def add(self, minute: int, queue: str, jt: str, *, durations: list[int] = (),  # type: ignore[assignment]
            waits: list[int] = (), failed: int = 0, dead: int = 0, submitted: int = 0,  # type: ignore[assignment]
            e2e: list[int] = (), failed_ms: list[int] = (), retries: int = 0,  # type: ignore[assignment]
            error_type: str = "Boom") -> None:
        r = self.rollups[(minute, queue, jt)]
        r["submitted"] += submitted
        r["completed"] += len(durations)
        r["duration_sum_ms"] += sum(durations)
        r["started"] += len(waits)
        r["wait_sum_ms"] += sum(waits)
        r["e2e_sum_ms"] += sum(e2e)
        r["failed"] += failed
        r["failed_ms"] += sum(failed_ms)
        r["dead_letter"] += dead
        r["retries"] += retries
        for metric, values in (("duration", durations), ("wait", waits), ("e2e", e2e),
                               ("failed", failed_ms)):
            for v in values:
                self.hist[(minute, queue, jt, metric, sketch.bucket(v))] += 1
                self.raw[metric].append((minute, v))
        if failed:
            self.errors[(minute, queue, jt, error_type)] += failed

    async def write(self, deps: Deps, grains: tuple[int, ...] = (MIN, HOUR, DAY)) -> None:
        for g in grains:
            roll: dict[tuple[int, str, str], Counter[str]] = defaultdict(Counter)
            for (m, q, t), c in self.rollups.items():
                roll[(m // g * g, q, t)].update(c)
            hist: Counter[tuple[int, str, str, str, int]] = Counter()
            for (m, q, t, metric, b), n in self.hist.items():
                hist[(m // g * g, q, t, metric, b)] += n
            errs: Counter[tuple[int, str, str, str]] = Counter()
            for (m, q, t, e), n in self.errors.items():
                errs[(m // g * g, q, t, e)] += n
            name, col = table("rollups", g)
            await deps.pool.copy_records_to_table(
                name, columns=[col, "queue_name", "job_type", *COLS],
                records=[(to_dt(k[0]), k[1], k[2], *(c[x] for x in COLS))
                         for k, c in roll.items()])
            name, col = table("hist", g)
            await deps.pool.copy_records_to_table(
                name, columns=[col, "queue_name", "job_type", "metric", "bucket", "n"],
                records=[(to_dt(k[0]), *k[1:], n) for k, n in hist.items()])
            name, col = table("errors", g)
            await deps.pool.copy_records_to_table(
                name, columns=[col, "queue_name", "job_type", "error_type", "n"],
                records=[(to_dt(k[0]), *k[1:], n) for k, n in errs.items()])

    def totals(self, lo: int, hi: int) -> Counter[str]:
        out: Counter[str] = Counter()
        for (m, _, _), c in self.rollups.items():
            if lo <= m < hi:
                out.update(c)
        return out

    def buckets(self, metric: str, lo: int, hi: int) -> list[tuple[int, int]]:
        return [(b, n) for (m, _, _, mt, b), n in self.hist.items() if mt == metric
                and lo <= m < hi]


def random_store(seed: int = 7) -> Store:
    rng = random.Random(seed)
    st = Store()
    for minute in range(T0 - 3 * DAY, T0, MIN):
        if rng.random() > 0.12:
            continue
        for queue, jt, scale in (("mq", "a", 80), ("mq", "b", 900), ("nq", "c", 4000)):
            k = rng.randint(0, 4)
            durs = [max(1, int(rng.lognormvariate(math.log(scale), 0.9))) for _ in range(k)]
            waits = [rng.randint(0, 5000) for _ in range(k + 1)]
            st.add(minute, queue, jt, durations=durs, waits=waits, e2e=[d + 10 for d in durs],
                   failed=rng.randint(0, 1), dead=rng.randint(0, 1) if rng.random() < 0.2 else 0,
                   submitted=k + 1, failed_ms=[rng.randint(1, 300)])
    return st


@pytest.fixture
async def client(deps: Deps) -> AsyncIterator[httpx.AsyncClient]:
    from jobline.api.app import create_app

    async for c in serve_app(create_app(deps.settings, deps=deps), role="admin"):
        yield c


async def get(c: httpx.AsyncClient, path: str, **params: Any) -> Any:
    r = await c.get(f"/api/v1/analytics/{path}", params=params)
    assert r.status_code == 200, r.text
    return r.json()


async def gql(c: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    r = await c.post("/graphql", json={"query": query, "variables": variables})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def exact_percentile(values: list[int], p: float) -> float:
    s = sorted(values)
    return float(s[max(1, math.ceil(len(s) * p / 100)) - 1])


# --- pure decomposition ------------------------------------------------------------------------


def test_decompose_covers_the_range_once_with_the_coarsest_rows() -> None:
    frm, to = T0 - 2 * DAY - 17 * MIN, T0 - 3 * HOUR + 23 * MIN
    spans = aq.decompose(frm, to, floor_ms=0)
    assert spans[aq.DAY] == [(aq._ceil(frm, DAY), aq._floor(to, DAY))]
    covered = sorted(s for g in spans.values() for s in g)
    assert covered[0][0] == frm and covered[-1][1] == to
    assert all(a[1] == b[0] for a, b in itertools.pairwise(covered))
    assert all(lo % HOUR == 0 and hi % HOUR == 0 for lo, hi in spans[aq.HOUR])
    assert sum(hi - lo for lo, hi in spans[aq.MINUTE]) == 17 * MIN + 23 * MIN
    # minute rows gone before the floor: the edge reads its enclosing hour instead
    floor = aq._floor(frm, HOUR) + 2 * HOUR
    spans = aq.decompose(frm, to, floor_ms=floor)
    assert spans[aq.MINUTE] == [(aq._floor(to, HOUR), to)]
    assert spans[aq.HOUR][0][0] == aq._floor(frm, HOUR)
    # a per-hour series never reads day rows
    assert aq.decompose(frm, to, 0, max_grain=HOUR)[aq.DAY] == []


def test_decompose_reads_hour_and_day_rows_only_before_the_compaction_watermark() -> None:
    """Hour/day rows hold the minutes before the watermark (migration 0030): a coarse span
    ends at or before it, the rest of the range is read from minute rows."""
    frm, to = T0 - 2 * DAY - 17 * MIN, T0 - 3 * HOUR + 23 * MIN
    w = T0 - 5 * HOUR + 7 * MIN  # after the whole day, mid-hour
    spans = aq.decompose(frm, to, floor_ms=0, compacted_ms=w)
    covered = sorted(s for g in spans.values() for s in g)
    assert covered[0][0] == frm and covered[-1][1] == to
    assert all(a[1] == b[0] for a, b in itertools.pairwise(covered))
    assert all(hi <= w for g in (aq.DAY, aq.HOUR) for _, hi in spans[g])
    assert spans[aq.DAY] == [(aq._ceil(frm, DAY), aq._floor(w, DAY))]
    assert spans[aq.MINUTE][-1] == (aq._floor(w, HOUR), to)
    # minute rows are kept from the watermark's hour on, whatever the retention floor says
    late = aq.decompose(frm, to, floor_ms=to, compacted_ms=w)
    assert late[aq.MINUTE] == [(aq._floor(w, HOUR), to)]
    # a watermark past the range changes nothing; one before it reads minutes only
    assert aq.decompose(frm, to, 0, compacted_ms=to + DAY) == aq.decompose(frm, to, 0)
    assert aq.decompose(frm, to, 0, compacted_ms=frm - DAY)[aq.MINUTE] == [(frm, to)]


# --- totals, percentiles, series ---------------------------------------------------------------


async def test_partial_hours_and_days_match_the_minute_data(deps: Deps,
                                                            client: httpx.AsyncClient) -> None:
    st = random_store()
    await st.write(deps)
    frm, to = T0 - 2 * DAY - 17 * MIN, T0 - 3 * HOUR + 23 * MIN
    want = st.totals(frm, to)
    assert want["completed"] > 500  # the range really spans data at every grain
    s = await get(client, "summary", **{"from": iso(frm), "to": iso(to)})
    assert s["succeeded"]["value"] == want["completed"]
    assert s["processed"]["value"] == want["completed"] + want["dead_letter"]
    assert s["failed"]["value"] == want["failed"]
    assert s["deadLettered"]["value"] == want["dead_letter"]
    assert s["avgDurationMs"]["value"] == pytest.approx(want["duration_sum_ms"] / want["completed"])
    assert s["successRate"]["value"] == pytest.approx(
        want["completed"] / (want["completed"] + want["dead_letter"]))
    counts = st.buckets("duration", frm, to)
    # day, hour and minute rows are read by a statement each and merged: one row per bucket
    rows = await aq._hist(deps, [(0, aq.scope(T0, frm, to))], ["duration"])
    per_bucket = Counter[int]()
    for b, n in counts:
        per_bucket[b] += n
    assert sorted((r["bucket"], int(r["n"])) for r in rows) == sorted(per_bucket.items())
    assert aq._Sql().grains([(0, aq.scope(T0, frm, to))]) == [aq.MINUTE, aq.HOUR, aq.DAY]
    raw = [v for m, v in st.raw["duration"] if frm <= m < to]
    for p, key in ((50, "p50Ms"), (95, "p95Ms"), (99, "p99Ms")):
        assert s[key]["value"] == sketch.percentile(counts, p)  # the merge of the same buckets
        exact = exact_percentile(raw, p)
        assert abs(s[key]["value"] - exact) <= 0.02 * exact, (p, s[key]["value"], exact)

    # the same figures when only minute rows exist (a range inside the minute retention)
    by_hour = await get(client, "throughput", interval="hour", **{"from": iso(frm), "to": iso(to)})
    assert by_hour[0]["at"] == iso(aq._floor(frm, HOUR)).replace("Z", "+00:00")
    for b in by_hour:
        at = int(datetime.fromisoformat(b["at"]).timestamp() * 1000)
        w = st.totals(max(at, frm), min(at + HOUR, to))
        assert (b["completed"], b["submitted"], b["failed"], b["deadLettered"], b["started"]) \
            == (w["completed"], w["submitted"], w["failed"], w["dead_letter"], w["started"]), b
    by_day = await get(client, "throughput", interval="day", **{"from": iso(frm), "to": iso(to)})
    assert len(by_day) == 3
    assert sum(b["completed"] for b in by_day) == want["completed"]

    d = await get(client, "durations", metric="wait", queue="mq",
                  **{"from": iso(frm), "to": iso(to)})
    waits = st.buckets("wait", frm, to)
    mq = Counter[int]()
    for (m, q, _, mt, b), n in st.hist.items():
        if q == "mq" and mt == "wait" and frm <= m < to:
            mq[b] += n
    assert d["count"] == sum(mq.values()) < sum(n for _, n in waits)
    assert {(h["lowerMs"], h["count"]) for h in d["histogram"]} == {
        (float(sketch.bounds(b)[0]), float(n)) for b, n in mq.items()}
    assert {t["jobType"] for t in d["byJobType"]} == {"a", "b"}
    a = next(t for t in d["byJobType"] if t["jobType"] == "a")
    wa = sum(c["wait_sum_ms"] for (m, q, t), c in st.rollups.items() if t == "a" and frm <= m < to)
    assert a["avgMs"] == pytest.approx(wa / a["count"])


async def test_edges_older_than_minute_retention_read_the_enclosing_hour(
        deps: Deps, client: httpx.AsyncClient) -> None:
    st = random_store(3)
    await st.write(deps)
    old = T0 - 8 * DAY  # minute rows are not kept this long: its rows, were they there, are not read
    st2 = Store()
    st2.add(old + 5 * MIN, "mq", "a", durations=[100, 200])
    st2.add(old + 50 * MIN, "mq", "a", durations=[300])
    await st2.write(deps, (HOUR, DAY))
    s = await get(client, "summary", **{"from": iso(old + 30 * MIN), "to": iso(old + 40 * MIN)})
    assert s["succeeded"]["value"] == 3  # the enclosing hour, not 0 (no minute rows there)


async def test_previous_period_change(deps: Deps, client: httpx.AsyncClient) -> None:
    st = Store()
    st.add(T0 - 2 * HOUR, "mq", "a", durations=[100] * 10, dead=2, failed=4)
    st.add(T0 - 30 * HOUR, "mq", "a", durations=[200] * 5, dead=0, failed=2)
    await st.write(deps)
    s = await get(client, "summary")  # default: the last 24 hours
    assert s["succeeded"] == {"value": 10.0, "previous": 5.0, "change": 1.0}
    assert s["processed"] == {"value": 12.0, "previous": 5.0, "change": pytest.approx(1.4)}
    assert s["failed"]["change"] == 1.0
    assert s["deadLettered"] == {"value": 2.0, "previous": 0.0, "change": None}
    assert s["avgDurationMs"]["change"] == pytest.approx(-0.5)
    assert s["successRate"]["value"] == pytest.approx(10 / 12)
    assert s["successRate"]["previous"] == 1.0


# --- failures, retries, slow jobs, top issues ----------------------------------------------------


async def test_failures_retries_and_slow_jobs(deps: Deps, client: httpx.AsyncClient) -> None:
    st = Store()
    slow = [1000] * 50 + [9000] * 3
    st.add(T0 - HOUR, "mq", "slow", durations=slow, waits=[20_000] * 53, failed=6, retries=4,
           failed_ms=[5000] * 6, error_type="TimeoutError")
    st.add(T0 - HOUR, "nq", "fast", durations=[10] * 20, waits=[5] * 20, failed=2,
           failed_ms=[3, 3], error_type="ValueError")
    await st.write(deps)
    async with deps.pool.acquire() as conn:
        await conn.execute("INSERT INTO job_rollup_attempts_hour (at, queue_name, job_type, "
                           "attempt, completed, failed) VALUES ($1, 'mq', 'slow', 1, 45, 6), "
                           "($1, 'mq', 'slow', 2, 5, 1)", to_dt(T0 - HOUR))
    f = await get(client, "failures", limit=1)
    assert f["errorTypes"] == [{"errorType": "TimeoutError", "count": 6.0, "share": 0.75},
                               {"errorType": "ValueError", "count": 2.0, "share": 0.25}]
    assert f["topJobTypes"] == [{"queue": "mq", "jobType": "slow", "failed": 6.0,
                                 "finished": 59.0, "rate": 6 / 59}]
    assert sum(p["failed"] for p in f["trend"]) == 8
    assert len(f["trend"]) == 24
    assert sum(h["count"] for h in f["timeToFailure"]) == 8

    r = await get(client, "retries")
    slow_r = next(t for t in r["byJobType"] if t["jobType"] == "slow")
    assert slow_r == {"queue": "mq", "jobType": "slow", "jobs": 53.0, "retries": 4.0,
                      "avgRetries": 4 / 53, "wastedComputeSeconds": 30.0}
    assert r["wastedComputeSeconds"] == pytest.approx(30.006)
    assert r["byAttempt"] == [
        {"attempt": 1, "completed": 45.0, "failed": 6.0, "successRate": 45 / 51},
        {"attempt": 2, "completed": 5.0, "failed": 1.0, "successRate": 5 / 6}]

    sj = await get(client, "slow-jobs")
    assert [t["jobType"] for t in sj] == ["slow", "fast"]
    top = sj[0]
    assert top["p50Ms"] == sketch.representative(sketch.bucket(1000))
    assert top["p99Ms"] == sketch.representative(sketch.bucket(9000))
    busy_slow, busy_fast = sum(slow) + 30_000, 200 + 6
    assert top["computeShare"] == pytest.approx(busy_slow / (busy_slow + busy_fast))
    text = " | ".join(top["suggestions"])
    assert "long tail" in text
    assert f"raise timeoutMs to p99x1.5 = {round(top['p99Ms'] * 1.5)} ms" in text
    assert "add workers to queue mq" in text
    assert sj[1]["suggestions"] == []


async def test_top_issues_ranked_by_impact(deps: Deps, client: httpx.AsyncClient) -> None:
    st = Store()
    # failure rate 2% -> 40% on mq/a; dead letters 1 -> 7 on nq
    st.add(T0 - 30 * HOUR, "mq", "a", durations=[10] * 98, failed=2)
    st.add(T0 - 2 * HOUR, "mq", "a", durations=[10] * 60, failed=40)
    st.add(T0 - 30 * HOUR, "nq", "c", durations=[10], dead=1)
    st.add(T0 - 2 * HOUR, "nq", "c", durations=[10], dead=7)
    await st.write(deps)
    issues = await get(client, "top-issues", limit=5)
    assert [i["kind"] for i in issues] == ["failure_rate", "dlq"]
    fr = issues[0]
    assert (fr["queue"], fr["jobType"]) == ("mq", "a")
    assert fr["impact"] == pytest.approx(40 - 0.02 * 100)
    assert "40.0%" in fr["detail"] and "2.0%" in fr["detail"]
    assert fr["link"] == "/analytics/failures?queue=mq&jobType=a"
    assert issues[1]["impact"] == 6 and issues[1]["queue"] == "nq"
    assert len(await get(client, "top-issues")) == 2  # default limit 3


# --- SLA -----------------------------------------------------------------------------------------


async def test_sla_compliance_violations_and_trend(deps: Deps, client: httpx.AsyncClient) -> None:
    await jobs.submit(deps, JobSpec("mq", "a", {}))  # the queue exists
    body = {"objective": 0.9, "targetMs": 1000, "metric": "e2e"}
    for bad, field in (({**body, "objective": 1.5}, "objective"),
                       ({**body, "targetMs": -3}, "targetMs"),
                       ({**body, "metric": "p99"}, "metric"),
                       ({**body, "extra": 1}, "extra"),
                       ({"objective": 0.9}, "targetMs"),
                       ({**body, "objective": True}, "objective")):
        r = await client.put("/api/v1/queues/mq/sla", json=bad)
        assert (r.status_code, r.json()["error"]["field"]) == (400, field), r.text
    assert await deps.pool.fetchval("SELECT count(*) FROM queue_slas") == 0
    r = await client.put("/api/v1/queues/nope/sla", json=body)
    assert r.status_code == 404, r.text
    r = await client.put("/api/v1/queues/mq/sla", json=body)
    assert r.status_code == 200 and r.json() == {"queue": "mq", "objective": 0.9,
                                                 "targetMs": 1000.0, "metric": "e2e"}
    st = Store()
    # hour 1: 80 fast + 20 over; hour 2: 100 fast; plus 10 in the bucket holding the target
    st.add(T0 - 3 * HOUR, "mq", "a", e2e=[100] * 80 + [5000] * 20)
    st.add(T0 - 2 * HOUR, "mq", "a", e2e=[200] * 100)
    st.add(T0 - 2 * HOUR, "mq", "a", e2e=[990] * 10)
    await st.write(deps)
    lo, hi = sketch.bounds(sketch.bucket(1000))
    part = 10 * (1000 - lo + 1) / (hi - lo)  # the target's bucket counts pro rata
    assert lo <= 990 < hi and 0 < part < 10
    (rep,) = await get(client, "sla", **{"from": iso(T0 - 6 * HOUR), "to": iso(T0)})
    assert rep["compliance"] == pytest.approx((180 + part) / 210)
    assert rep["violations"] == pytest.approx(210 - 180 - part)
    assert rep["met"] is False
    trend = {p["at"]: p["compliance"] for p in rep["trend"]}
    assert len(trend) == 6
    assert trend[to_dt(T0 - 3 * HOUR).isoformat()] == pytest.approx(0.8)
    assert trend[to_dt(T0 - 2 * HOUR).isoformat()] == pytest.approx((100 + part) / 110)
    assert trend[to_dt(T0 - HOUR).isoformat()] is None
    issues = await get(client, "top-issues", **{"from": iso(T0 - 6 * HOUR), "to": iso(T0)})
    assert issues[0]["kind"] == "sla" and issues[0]["impact"] == pytest.approx(rep["violations"])


# --- availability --------------------------------------------------------------------------------


async def test_availability_incidents_cause_and_mttr(deps: Deps,
                                                     client: httpx.AsyncClient) -> None:
    start = T0 - 2 * HOUR
    down = {"postgres": set(range(0, 5)) | set(range(30, 32)), "api": set(range(1, 4)),
            "redis": {118, 119}}
    rows = [("health.up", comp, to_dt(start + i * MIN), 0.0 if i in down[comp] else 1.0)
            for comp in ("postgres", "api", "redis") for i in range(120)]
    await deps.pool.copy_records_to_table("analytics_samples", records=rows,
                                          columns=["metric", "subject", "minute", "value"])
    a = await get(client, "availability", **{"from": iso(start), "to": iso(T0)})
    got = [(i["component"], i["startedAt"], i["durationMs"], i["cause"], i["endedAt"] is None)
           for i in a["incidents"]]
    at = lambda m: to_dt(start + m * MIN).isoformat()  # noqa: E731
    assert got == [("postgres", at(0), 300_000.0, "postgres", False),
                   ("api", at(1), 180_000.0, "postgres", False),
                   ("postgres", at(30), 120_000.0, "postgres", False),
                   ("redis", at(118), 120_000.0, "redis", True)]
    assert a["mttrMs"] == pytest.approx((300_000 + 180_000 + 120_000) / 3)
    comps = {c["component"]: c["uptime"] for c in a["components"]}
    assert comps == {"api": pytest.approx(117 / 120), "postgres": pytest.approx(113 / 120),
                     "redis": pytest.approx(118 / 120)}
    assert a["uptime"] == pytest.approx(1 - 9 / 120)


# --- cost, resources, queue health -------------------------------------------------------------


async def test_cost_with_queue_and_default_prices(deps: Deps, client: httpx.AsyncClient,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBLINE_PRICE_PER_WORKER_HOUR", "0.2")
    await jobs.submit(deps, JobSpec("mq", "a", {}))
    r = await client.put("/api/v1/queues/mq/cost", json={"pricePerWorkerHour": -1})
    assert (r.status_code, r.json()["error"]["field"]) == (400, "pricePerWorkerHour")
    r = await client.put("/api/v1/queues/mq/cost", json={"pricePerWorkerHour": 0.5})
    assert r.json() == {"queue": "mq", "pricePerWorkerHour": 0.5}
    st = Store()
    st.add(T0 - 5 * HOUR, "mq", "a", durations=[HOUR, HOUR], failed=1, failed_ms=[HOUR])
    st.add(T0 - 5 * HOUR, "mq", "b", durations=[HOUR // 2], dead=1)
    st.add(T0 - 5 * HOUR, "nq", "a", durations=[HOUR] + [0] * 9)
    await st.write(deps)
    await deps.pool.copy_records_to_table(
        "analytics_samples_hour", columns=["metric", "subject", "at", "avg", "min", "max",
                                           "last", "n"],
        records=[("pg.database_bytes", "*", to_dt(T0 - 10 * DAY + i * DAY), 1e9 + i * 5e6,
                  0.0, 0.0, 0.0, 60) for i in range(10)])
    c = await get(client, "cost")
    assert c["defaultPricePerWorkerHour"] == 0.2
    rows = {r["key"]: r for r in c["rows"]}
    assert rows["mq"] == {"key": "mq", "jobs": 4.0, "workerHours": 3.5, "cost": 1.75,
                          "costPerJob": 1.75 / 4}
    assert rows["nq"]["cost"] == pytest.approx(0.2) and rows["nq"]["jobs"] == 10
    assert c["totalCost"] == pytest.approx(1.95)
    assert c["projectedMonthlyCost"] == pytest.approx(1.95 * 30)
    by_type = await get(client, "cost", groupBy="jobType")
    assert {r["key"]: r["cost"] for r in by_type["rows"]} == {"a": pytest.approx(1.7),
                                                              "b": pytest.approx(0.25)}
    assert c["mostExpensiveJobTypes"][0]["key"] == "a"
    month = await get(client, "cost", **{"from": iso(T0 - 10 * DAY), "to": iso(T0)})
    assert month["storageGrowthBytesPerDay"] == pytest.approx(5e6)


async def test_resources_and_queue_health(deps: Deps, client: httpx.AsyncClient) -> None:
    start = T0 - HOUR
    rows = []
    for i in range(60):
        m = to_dt(start + i * MIN)
        rows += [("workers.count", "*", m, 4.0), ("workers.slots", "*", m, 8.0),
                 ("workers.busy", "*", m, 2.0), ("workers.crashes", "*", m, 1.0 if i < 3 else 0),
                 ("worker.cpu_pct", "w1", m, 50.0), ("worker.rss_bytes", "w1", m, 1e8),
                 ("queue.depth", "mq", m, float(100 - i)),
                 ("queue.oldest_pending_ms", "mq", m, 1000.0),
                 ("pg.table_bytes", "jobs", m, 5e9), ("events.lag", "relay", m, 3.0)]
    await deps.pool.copy_records_to_table("analytics_samples", records=rows,
                                          columns=["metric", "subject", "minute", "value"])
    st = Store()
    st.add(start + 5 * MIN, "mq", "a", durations=[60_000] * 120, submitted=60)
    await st.write(deps)
    rng = {"from": iso(start), "to": iso(T0)}
    r = await get(client, "resources", **rng)
    assert r["idleRatio"] == pytest.approx(0.75)
    assert {p["value"] for p in r["utilization"]} == {0.25}
    assert r["crashes"] == 3 and r["crashRatePerHour"] == 3
    assert r["perWorker"] == [{"workerId": "w1", "cpuPct": 50.0, "rssBytes": 1e8}]
    assert r["tables"] == [{"table": "jobs", "bytes": 5e9}]
    assert r["eventLag"][0]["subject"] == "relay"
    assert len(r["workerCount"]) == 60  # a one-hour series at minute steps
    (h,) = await get(client, "queues/health", **rng)
    assert h["queue"] == "mq" and h["currentDepth"] == 41.0
    assert h["throughputPerMinute"] == 2.0
    assert h["utilization"] == pytest.approx(120 * 60_000 / (8 * HOUR))
    # 60 of the backlog leave per hour net: 41 jobs clear in 41 minutes
    assert h["estimatedClearMs"] == pytest.approx(41 * MIN)
    assert len(h["depth"]) == 60 and h["currentOldestPendingAgeMs"] == 1000.0
    # a 30-day series is a few hundred points at most
    step_minute, step = aq.sample_step(aq.scope(T0, T0 - 30 * DAY, T0))
    assert not step_minute and 30 * DAY / step <= aq.MAX_POINTS


# --- critical path -------------------------------------------------------------------------------


async def test_critical_path_on_a_real_dag(deps: Deps, clock: FakeClock,
                                           client: httpx.AsyncClient) -> None:
    # extract -> (transform_a 5 s, transform_b 1 s) -> load
    (ext,) = [r.submitted.id for r in await jobs.submit_many(deps, [JobSpec("q", "extract", {})])]
    ta, tb = [r.submitted.id for r in await jobs.submit_many(deps, [
        JobSpec("q", "transform_a", {}, depends_on=(ext,)),
        JobSpec("q", "transform_b", {}, depends_on=(ext,))])]
    (load,) = [r.submitted.id for r in await jobs.submit_many(deps, [
        JobSpec("q", "load", {}, depends_on=(ta, tb))])]

    async def run(job_id: Any, wait: int, dur: int) -> None:
        clock.advance(wait)
        (c,) = await jobs.claim(deps, "w", ["q"], 10)  # the only job whose dependencies are done
        assert c.id == job_id
        clock.advance(dur)
        await jobs.complete(deps, [Outcome(c.id, c.token, ok=True)])

    await run(ext, 100, 2000)
    clock.advance(300)
    claimed = await jobs.claim(deps, "w", ["q"], 10)
    assert {c.id for c in claimed} == {ta, tb}
    by = {c.id: c for c in claimed}
    clock.advance(1000)
    await jobs.complete(deps, [Outcome(tb, by[tb].token, ok=True)])
    clock.advance(4000)
    await jobs.complete(deps, [Outcome(ta, by[ta].token, ok=True)])
    await run(load, 700, 1500)

    cp = await get(client, "dependencies/critical-path", jobId=str(tb))
    assert cp["path"] == [str(ext), str(ta), str(load)]
    assert cp["totalMs"] == 100 + 2000 + 300 + 5000 + 700 + 1500
    nodes = {n["jobId"]: n for n in cp["nodes"]}
    assert len(nodes) == 4 and nodes[str(tb)]["onCriticalPath"] is False
    assert nodes[str(ta)]["durationMs"] == 5000 and nodes[str(ta)]["waitMs"] == 300
    assert nodes[str(load)]["waitMs"] == 700  # from the last dependency's completion
    assert {(e["from"], e["to"]) for e in cp["edges"]} == {
        (str(ext), str(ta)), (str(ext), str(tb)), (str(ta), str(load)), (str(tb), str(load))}
    assert cp["bottlenecks"][0]["jobId"] == str(ta) and cp["bottlenecks"][0]["ms"] == 5000
    g = await gql(client, "query($id: ID!) { criticalPath(jobId: $id) { jobId path totalMs "
                          "edges { from to } bottlenecks { jobId jobType reason ms } } }", id=str(tb))
    assert g["data"]["criticalPath"] == {k: cp[k] for k in ("jobId", "path", "totalMs", "edges",
                                                            "bottlenecks")}
    r = await client.get("/api/v1/analytics/dependencies/critical-path",
                         params={"jobId": "018f0000-0000-7000-8000-000000000000"})
    assert r.status_code == 404


# --- validation, roles, REST == GraphQL --------------------------------------------------------


@pytest.mark.parametrize(("path", "params", "field"), [
    ("summary", {"from": "yesterday"}, "from"),
    ("summary", {"from": iso(T0), "to": iso(T0 - HOUR)}, "from"),
    ("summary", {"from": iso(T0 - 401 * DAY), "to": iso(T0)}, "to"),
    ("throughput", {"interval": "week"}, "interval"),
    ("throughput", {"interval": "minute", "from": iso(T0 - 30 * DAY)}, "interval"),
    ("durations", {"metric": "p99"}, "metric"),
    ("cost", {"groupBy": "worker"}, "groupBy"),
    ("slow-jobs", {"limit": "0"}, "limit"),
    ("top-issues", {"limit": "x"}, "limit"),
    ("failures", {"limit": "101"}, "limit"),
    ("summary", {"queeu": "mq"}, "queeu"),
    ("dependencies/critical-path", {"jobId": "nope"}, "jobId"),
    ("dependencies/critical-path", {}, "jobId"),
])
async def test_rest_validation_names_the_field(client: httpx.AsyncClient, path: str,
                                               params: dict[str, str], field: str) -> None:
    r = await client.get(f"/api/v1/analytics/{path}", params=params)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == field


@pytest.mark.parametrize(("args", "sub", "field"), [
    ('from: "2027-01-15T08:00:00Z", to: "2027-01-15T07:00:00Z"', "from", "from"),
    ('from: "2025-01-15T08:00:00Z", to: "2027-01-15T07:00:00Z"', "from", "to"),
    ('from: "2027-01-14T08:00:00Z", to: "2027-01-15T08:00:00Z"', 'throughput(interval: "x") '
     "{ at }", "interval"),
    ('from: "2027-01-14T08:00:00Z", to: "2027-01-15T08:00:00Z"', 'cost(groupBy: "x") { totalCost }',
     "groupBy"),
    ('from: "2027-01-14T08:00:00Z", to: "2027-01-15T08:00:00Z"', "slowJobs(limit: 0) { queue }",
     "limit"),
    ('from: "2027-01-14T08:00:00Z", to: "2027-01-15T08:00:00Z"',
     "failures { topJobTypes(limit: 500) { queue } }", "limit"),
])
async def test_graphql_validation_is_bad_user_input(client: httpx.AsyncClient, args: str,
                                                    sub: str, field: str) -> None:
    out = await gql(client, f"{{ analytics({args}) {{ {sub} }} }}")
    (err,) = out["errors"]
    assert err["extensions"] == {"code": "BAD_USER_INPUT", "field": field}, err
    out = await gql(client, 'mutation { setQueueSla(queue: "mq", objective: 2, targetMs: 5) '
                            "{ queue } }")
    assert out["errors"][0]["extensions"]["field"] == "objective"


async def test_admin_only(deps: Deps) -> None:
    from jobline.api.app import create_app

    async for dev in serve_app(create_app(deps.settings, deps=deps), role="developer"):
        for path in ("summary", "sla", "dependencies/critical-path"):
            r = await dev.get(f"/api/v1/analytics/{path}")
            assert r.status_code == 403, (path, r.text)
        r = await dev.put("/api/v1/queues/mq/sla", json={"objective": 0.9, "targetMs": 5})
        assert r.status_code == 403
        out = await gql(dev, '{ analytics(from: "2027-01-14T08:00:00Z", to: '
                             '"2027-01-15T08:00:00Z") { from } }')
        assert out["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        out = await gql(dev, 'mutation { setQueueCost(queue: "mq", pricePerWorkerHour: 1) '
                             "{ queue } }")
        assert out["errors"][0]["extensions"]["code"] == "FORBIDDEN"


GQL_ALL = """query($from: DateTime!, $to: DateTime!, $queue: String) {
  analytics(from: $from, to: $to, queue: $queue) {
    from to
    summary { processed { value previous change } succeeded { value previous change }
      failed { value previous change } deadLettered { value previous change }
      successRate { value previous change } avgDurationMs { value previous change }
      p50Ms { value previous change } p95Ms { value previous change } p99Ms { value previous change } }
    throughput(interval: "hour") { at submitted started completed failed deadLettered }
    durations(metric: "e2e") { metric count p50Ms p95Ms p99Ms histogram { lowerMs upperMs count }
      byJobType { queue jobType count avgMs p50Ms p95Ms p99Ms } }
    failures { errorTypes { errorType count share } trend(interval: "hour") { at failed finished rate }
      topJobTypes(limit: 10) { queue jobType failed finished rate }
      timeToFailure { lowerMs upperMs count } }
    retries { byJobType { queue jobType jobs retries avgRetries wastedComputeSeconds }
      byAttempt { attempt completed failed successRate } wastedComputeSeconds }
    queuesHealth { queue depth { at value } oldestPendingAgeMs { at value } currentDepth
      currentOldestPendingAgeMs throughputPerMinute utilization estimatedClearMs }
    resources { workerCount { at value } utilization { at value } idleRatio
      perWorker { workerId cpuPct rssBytes } crashes crashRatePerHour
      redisMemoryBytes { at value } postgresBytes { at value } tables { table bytes }
      eventLag { subject points { at value } } }
    cost(groupBy: "queue") { groupBy rows { key jobs workerHours cost costPerJob }
      mostExpensiveJobTypes { key jobs workerHours cost costPerJob } totalCost
      storageGrowthBytesPerDay projectedMonthlyCost defaultPricePerWorkerHour }
    sla { queue objective targetMs metric compliance met violations trend { at compliance } }
    availability { uptime components { component uptime }
      incidents { component startedAt endedAt durationMs cause } mttrMs }
    slowJobs(limit: 10) { queue jobType count p50Ms p95Ms p99Ms computeShare suggestions }
    topIssues(limit: 3) { kind title detail queue jobType impact link }
  }
}"""

REST_OF = {"summary": "summary", "throughput": "throughput?interval=hour",
           "durations": "durations?metric=e2e", "failures": "failures",
           "retries": "retries", "queuesHealth": "queues/health", "resources": "resources",
           "cost": "cost", "sla": "sla", "availability": "availability",
           "slowJobs": "slow-jobs", "topIssues": "top-issues"}


async def test_rest_and_graphql_agree(deps: Deps, client: httpx.AsyncClient) -> None:
    st = random_store(11)
    await st.write(deps)
    await jobs.submit(deps, JobSpec("mq", "a", {}))
    assert (await client.put("/api/v1/queues/mq/sla",
                             json={"objective": 0.95, "targetMs": 500})).status_code == 200
    rows = [(m, s, to_dt(T0 - DAY + i * MIN), v) for i in range(0, 24 * 60, 7)
            for m, s, v in (("queue.depth", "mq", float(i % 13)), ("health.up", "api",
                                                                   float(i % 100 > 3)),
                            ("workers.busy", "*", 3.0), ("workers.slots", "*", 4.0))]
    await deps.pool.copy_records_to_table("analytics_samples", records=rows,
                                          columns=["metric", "subject", "minute", "value"])
    for queue in (None, "mq"):
        frm, to = iso(T0 - DAY - 7 * MIN), iso(T0 - 13 * MIN)
        out = await gql(client, GQL_ALL, **{"from": frm, "to": to, "queue": queue})
        assert "errors" not in out, out
        g = out["data"]["analytics"]
        params = f"from={frm}&to={to}" + (f"&queue={queue}" if queue else "")
        for field, path in REST_OF.items():
            sep = "&" if "?" in path else "?"
            r = await client.get(f"/api/v1/analytics/{path}{sep}{params}")
            assert r.status_code == 200, r.text
            assert r.json() == g[field], field
        assert g["summary"]["succeeded"]["value"] > 0
        assert g["sla"][0]["compliance"] is not None
        assert g["availability"]["incidents"]


async def test_month_ranges_read_hour_samples(deps: Deps, client: httpx.AsyncClient) -> None:
    """Past the minute retention, availability and resources read the hour samples: down
    minutes of consecutive hours are one incident, uptime weighs each hour by its samples."""
    h1 = T0 - 20 * DAY
    rows = [("health.up", "postgres", to_dt(h1 - HOUR), 1.0, 1.0, 1.0, 1.0, 60),
            ("health.up", "postgres", to_dt(h1), 0.9, 0.0, 1.0, 1.0, 60),
            ("health.up", "postgres", to_dt(h1 + HOUR), 0.95, 0.0, 1.0, 1.0, 60),
            ("health.up", "postgres", to_dt(h1 + 5 * HOUR), 0.5, 0.0, 1.0, 1.0, 60),
            ("worker.cpu_pct", "w9", to_dt(h1), 40.0, 0.0, 0.0, 0.0, 30),
            ("worker.cpu_pct", "w9", to_dt(h1 + HOUR), 70.0, 0.0, 0.0, 0.0, 60),
            ("workers.crashes", "*", to_dt(h1), 0.1, 0.0, 1.0, 0.0, 60)]
    await deps.pool.copy_records_to_table(
        "analytics_samples_hour", records=rows,
        columns=["metric", "subject", "at", "avg", "min", "max", "last", "n"])
    rng = {"from": iso(T0 - 30 * DAY), "to": iso(T0)}
    a = await get(client, "availability", **rng)
    assert [(i["startedAt"], i["durationMs"]) for i in a["incidents"]] == [
        (to_dt(h1).isoformat(), 9 * MIN), (to_dt(h1 + 5 * HOUR).isoformat(), 30 * MIN)]
    assert a["components"] == [{"component": "postgres", "uptime": pytest.approx(
        (60 + 54 + 57 + 30) / 240)}]
    r = await get(client, "resources", **rng)
    assert r["perWorker"] == [{"workerId": "w9", "cpuPct": pytest.approx(60.0),
                               "rssBytes": None}]
    assert r["crashes"] == pytest.approx(6.0)
