"""bench/alerts.py runs small in the suite so it never rots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
BENCH = Path(__file__).parent.parent / "bench" / "alerts.py"


def test_alerts_bench_runs_and_reports(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    subprocess.run([sys.executable, str(BENCH), "--quick", "--out", str(tmp_path)], env=env,
                   check=True, timeout=800, capture_output=True)
    report = json.loads((tmp_path / "alerts-smoke.json").read_text())
    lat, ev = report["results"]["latency_ms"], report["results"]["evaluation"]
    assert lat["n"] == 3 and 0 < lat["p50"] <= lat["p99"]
    assert 0 < lat["after_evaluation_p50"] <= lat["after_evaluation_p99"]
    assert ev["evaluated_per_tick"] == 51 and ev["tick_ms_median"] > 0
    assert (tmp_path / "alerts-smoke.md").read_text().startswith("# alerts-smoke")
