"""The capacity model (bench/capacity_model.py) on fixed inputs: its bottleneck is the component
of highest utilisation, more capacity at the bottleneck moves it or raises the ceiling, the minimal
deployment is minimal, capped singletons are reported, and the output is deterministic. Pure
arithmetic: no stores, no timing."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))
import capacity_model as cm  # noqa: E402

#: Round numbers, so every expectation below can be worked out by hand.
FIXED = cm.Inputs(
    components=(
        cm.Component("api", "process", 100.0, "fixed"),
        cm.Component("postgres", "core", 50.0, "fixed", max_units=8),
        cm.Component("valkey", "shard", 10.0, "fixed", built=False),
        cm.Component("workers", "core", 80.0, "fixed"),
        cm.Component("relay", "process", 20.0, "fixed", max_units=1),
    ),
    target_utilisation=0.5,
    today_jobs_per_s=1_000.0,
    kafka_events_per_s_per_consumer=10_000.0,
    lambda_call_ms=2.0,
    lambda_txn_ms=0.5,
    pg_bulk_us_per_row=10.0,
)
ONE_EACH = {"api": 1, "postgres": 1, "valkey": 1, "workers": 1, "relay": 1}


def test_utilisation_and_bottleneck_by_hand() -> None:
    util = cm.utilisation(FIXED, ONE_EACH, 5_000.0)
    # 5,000 jobs/s x 100 µs = 0.5 s of CPU per second on one API process
    assert util == {"api": 0.5, "postgres": 0.25, "valkey": 0.05, "workers": 0.4, "relay": 0.1}
    assert cm.bottleneck(util) == "api"
    cap, neck = cm.ceiling(FIXED, ONE_EACH)
    assert neck == "api"
    assert cap == pytest.approx(5_000.0)  # 0.5 x 1e6 / 100
    assert cm.ceiling(FIXED, ONE_EACH, target=1.0)[0] == pytest.approx(10_000.0)


@pytest.mark.parametrize("load", [1_000.0, 7_000.0, 30_000.0, 123_456.0])
def test_bottleneck_is_the_highest_utilisation(load: float) -> None:
    dep, _ = cm.minimal_deployment(FIXED, load)
    util = cm.utilisation(FIXED, dep, load)
    neck = cm.bottleneck(util)
    assert all(util[neck] >= u for u in util.values())
    assert cm.ceiling(FIXED, dep)[1] == neck


@pytest.mark.parametrize("start", [
    ONE_EACH,
    {"api": 3, "postgres": 1, "valkey": 1, "workers": 2, "relay": 1},
    {"api": 1, "postgres": 4, "valkey": 2, "workers": 1, "relay": 1},
])
def test_doubling_the_bottleneck_moves_it_or_raises_the_ceiling(start: dict[str, int]) -> None:
    cap, neck = cm.ceiling(FIXED, start)
    doubled = {**start, neck: start[neck] * 2}
    cap2, neck2 = cm.ceiling(FIXED, doubled)
    assert neck2 != neck or cap2 > cap
    assert cap2 > cap  # no other component was at exactly the same utilisation in these starts
    # the same through a twice-as-fast unit instead of twice the units
    faster = FIXED.with_units_capacity(neck, 2.0)
    cap3, neck3 = cm.ceiling(faster, start)
    assert neck3 != neck or cap3 > cap
    assert cap3 == pytest.approx(cap2)


def test_doubling_a_non_bottleneck_changes_nothing() -> None:
    cap, neck = cm.ceiling(FIXED, ONE_EACH)
    assert neck == "api"
    assert cm.ceiling(FIXED, {**ONE_EACH, "workers": 2}) == (cap, neck)


def test_minimal_deployment_is_minimal_and_within_target() -> None:
    load = 20_000.0
    dep, problems = cm.minimal_deployment(FIXED, load)
    # api 20k x 100 µs = 2 cores at 100 % -> 4 at 50 %; postgres 1 -> 2; valkey 0.2 -> 1;
    # workers 1.6 -> 4; relay 0.4 -> 1 (fits its cap)
    assert dep == {"api": 4, "postgres": 2, "valkey": 1, "workers": 4, "relay": 1}
    assert problems == []
    util = cm.utilisation(FIXED, dep, load)
    assert max(util.values()) <= FIXED.target_utilisation + 1e-12
    for name, n in dep.items():
        if n > 1:
            fewer = {**dep, name: n - 1}
            assert cm.utilisation(FIXED, fewer, load)[name] > FIXED.target_utilisation
    assert cm.ceiling(FIXED, dep)[0] >= load


def test_capped_singleton_is_reported_and_growth_gets_stuck_on_it() -> None:
    # relay: 20 µs per job, max 1 process -> 25,000 jobs/s at 50 %
    dep, problems = cm.minimal_deployment(FIXED, 40_000.0)
    assert dep["relay"] == 1
    assert len(problems) == 1 and problems[0].startswith("relay: needs 2 processes")
    steps = cm.grow(FIXED, ONE_EACH, 40_000.0)
    assert steps[-1]["stuck"] is True and steps[-1]["bottleneck"] == "relay"
    assert steps[-1]["ceiling_jobs_per_s"] == 25_000
    # the ceilings along the path never fall
    ceilings = [s["ceiling_jobs_per_s"] for s in steps]
    assert ceilings == sorted(ceilings)
    order = cm.saturation_order(steps)
    assert order[0]["bottleneck"] == "api"
    assert order[-1] == {"bottleneck": "relay", "binds_at_jobs_per_s": 25_000,
                         "units_added": 0, "stuck": True}


def test_growth_ends_at_the_minimal_deployment_when_nothing_is_capped() -> None:
    load = 20_000.0
    dep = dict(ONE_EACH)
    for s in cm.grow(FIXED, ONE_EACH, load):
        assert not s["stuck"]
        dep[s["bottleneck"]] += 1
    assert dep == cm.minimal_deployment(FIXED, load)[0]


def test_event_and_lambda_constraints() -> None:
    # 10,000 jobs/s x 3 events = 30,000 events/s; one consumer does 5,000 at 50 % -> 6
    ev = cm.event_path(FIXED, 10_000.0)
    assert ev["events_per_s"] == 30_000
    assert ev["consumers_per_group"] == 6
    assert ev["fits_today_partitions"] is False
    assert cm.event_path(FIXED, 1_000.0)["fits_today_partitions"] is True
    # Little's law: 10,000/s x 2 ms = 20 busy containers -> 40 at 50 %
    dep = {**ONE_EACH, "scheduler": 1}
    lam = cm.lambda_path(FIXED, 10_000.0, dep)
    others = cm.server_connections({**dep, "api": 0})
    assert lam["concurrency"] == 40
    assert lam["connections_direct"] == 40 * cm.POOL_LAMBDA + others
    # behind RDS Proxy: 10,000/s x 0.5 ms = 5 transactions in flight -> 10 at 50 %
    assert lam["connections_with_proxy"] == 10 + others
    assert lam["connections_with_proxy"] < lam["connections_direct"]
    # ten times the rate no longer fits max_connections without a proxy
    big = cm.lambda_path(FIXED, 100_000.0, dep)
    assert big["fits_direct"] is False
    assert big["concurrency"] > big["max_reserved_concurrency_direct"]


def _fixed_with_scheduler() -> cm.Inputs:
    return cm.Inputs(components=(*FIXED.components,
                                 cm.Component("scheduler", "process", 1.0, "fixed", max_units=1)),
                     target_utilisation=0.5, today_jobs_per_s=1_000.0,
                     kafka_events_per_s_per_consumer=10_000.0, lambda_call_ms=2.0,
                     lambda_txn_ms=0.5, pg_bulk_us_per_row=10.0)


def test_output_is_deterministic() -> None:
    inputs = _fixed_with_scheduler()
    a = json.dumps(cm.run(inputs), sort_keys=True)
    b = json.dumps(cm.run(inputs), sort_keys=True)
    assert a == b
    assert cm.markdown(cm.run(inputs), inputs) == cm.markdown(cm.run(inputs), inputs)
    res = cm.run(inputs)
    assert [*res["scenarios"]] == ["today", "10x", "100x"]
    assert res["scenarios"]["100x"]["problems"]  # the relay singleton at 100,000 jobs/s
    assert res["scenarios"]["100x"]["projection_only"] == ["valkey"]


def test_inputs_are_read_from_the_results_at_run_time(tmp_path: Path) -> None:
    for name in ("cpu_split", "shipped", "events", "throughput", "pg_ceiling"):
        shutil.copy(BENCH / "results" / f"{name}.json", tmp_path)
    real = cm.load_inputs(tmp_path)
    shipped = json.loads((tmp_path / "shipped.json").read_text())
    shipped["configs"]["on"]["cpu_us_per_job_median"]["workers"] *= 2
    (tmp_path / "shipped.json").write_text(json.dumps(shipped))
    doubled = cm.load_inputs(tmp_path)
    assert doubled.component("workers").us_per_job == pytest.approx(
        2 * real.component("workers").us_per_job)
    assert doubled.component("api").us_per_job == real.component("api").us_per_job
    # a handler's own CPU adds to the workers' cost only
    assert cm.load_inputs(tmp_path, handler_us=100.0).component("workers").us_per_job == \
        pytest.approx(doubled.component("workers").us_per_job + 100.0)
