"""Writing a benchmark's results: ``<name>.json`` and ``<name>.md`` under the output directory
(``bench/results`` for a real run, any other directory gets ``<name>-smoke``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def write(report: dict[str, Any], name: str, out: Path,
          markdown: Callable[[dict[str, Any], str], str]) -> None:
    full = name if out == RESULTS else f"{name}-smoke"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{full}.json").write_text(json.dumps(report, indent=2))
    md = markdown(report, full)
    (out / f"{full}.md").write_text(md)
    sys.stdout.write(md)
