"""The GraphQL benchmark runs small in every test run so it never rots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# each runs a benchmark in a subprocess that starts its own stores: on a busy machine that
# takes minutes, past the suite's 120 s per-test default
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
BENCH = Path(__file__).parent.parent / "bench" / "graphql_latency.py"


def test_graphql_bench_runs_and_reports(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    subprocess.run([sys.executable, str(BENCH), "--quick", "--out", str(tmp_path)], env=env,
                   check=True, timeout=800, capture_output=True)
    report = json.loads((tmp_path / "graphql-smoke.json").read_text())
    lat = report["latency"]
    # every committed job's event reached the subscriber
    assert lat["jobs"] > 0 and lat["received"] == lat["jobs"]
    assert 0 < lat["p50_ms"] <= lat["p99_ms"]
    dash = report["dashboard"]
    assert dash["rows"]["jobs"] >= 5_000 and dash["slowest"]["p50_ms"] > 0
    assert (tmp_path / "graphql-smoke.md").read_text().startswith("# graphql-smoke")
