"""The shipped-stack benchmark and the seed scenarios run small in every test run so they never
rot (``make bench`` / ``make bench-seed`` run them at full size). BullMQ is left out here: it
needs npm packages that only ``make bench`` installs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# each runs a benchmark in a subprocess that starts its own stores and the whole stack: on a
# busy machine that takes minutes, past the suite's 120 s per-test default
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
BENCH = Path(__file__).parent.parent / "bench"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "REDIS_URL", "JOBLINE_EVENTS")}


def test_shipped_bench_runs_and_reports(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(BENCH / "shipped.py"), "--small", "--configs", "on,off",
                    "--out", str(tmp_path)], env=_env(), check=True, timeout=800,
                   capture_output=True)
    report = json.loads((tmp_path / "shipped-smoke.json").read_text())
    on, off = report["configs"]["on"], report["configs"]["off"]
    for cfg in (on, off):
        assert cfg["jobs_per_s"]["median"] > 0
        split = cfg["cpu_us_per_job_median"]
        assert split["postgres"] > 0 and split["workers"] > 0
        assert {"api", "scheduler", "valkey"} <= set(split)
    # events on runs make run's relay (which folds rollups and alerts: no consumer process);
    # events off runs neither
    assert "relay" in on["cpu_us_per_job_median"]
    assert not {"relay", "consumers"} & set(off["cpu_us_per_job_median"])
    assert "consumers" not in on["cpu_us_per_job_median"]
    # PostgreSQL's CPU by whose backend spent it: the workers' claims and completions in both
    # (a relay's reads of 300 jobs' rows may take less than one 10 ms tick, so only where a
    # relay is not is asserted)
    assert on["postgres_cpu_us_per_job_by_backend_median"]["workers"] > 0
    assert off["postgres_cpu_us_per_job_by_backend_median"]["workers"] > 0
    assert "relay" not in off["postgres_cpu_us_per_job_by_backend_median"]
    assert report["ratios"]["shipped_over_events_off"] > 0
    assert (tmp_path / "shipped-smoke.md").read_text().startswith("# shipped-smoke")


def test_seed_scenarios_bench_runs_and_reports(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, str(BENCH / "seed_scenarios.py"), "--small", "--out",
                        str(tmp_path)], env=_env(), timeout=800, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:] + r.stdout[-2000:]
    report = json.loads((tmp_path / "seed_scenarios-smoke.json").read_text())
    spike = report["results"]["spike"]
    assert spike["accepted_jobs"] > 0 and spike["achieved_submit_per_s"] > 0
    # every request the API acknowledged is a committed job, and all of them were processed
    assert spike["k6_accepted_checks"] == spike["accepted_jobs"]
    assert spike["recovery_s"] is not None and spike["all_completed_s"] is not None
    long = report["results"]["long"]
    assert long["exactly_once_no_lapse"] is True, long["checks"]
    assert long["load_while_running"]["valkey_commands_per_s"] > 0
