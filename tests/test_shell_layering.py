"""The GraphQL shell does not import the REST shell: shared input models and validation live in
the core (``jobline.shared.core.inputs``, ``jobline.shared.schedules.inputs``), and the REST app
hands the GraphQL mount what it needs. Checked on the source, so a lazy import counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import jobline

ROOT = Path(jobline.__file__).resolve().parent


def imported_modules(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_graphql_does_not_import_the_rest_shell() -> None:
    files = sorted((ROOT / "graphql").rglob("*.py"))
    assert files
    offenders = {str(f.relative_to(ROOT)): sorted(m for m in imported_modules(f)
                                                  if m == "jobline.api" or m.startswith("jobline.api."))
                 for f in files}
    assert {f: m for f, m in offenders.items() if m} == {}


def test_shared_inputs_do_not_import_a_shell() -> None:
    for rel in ("shared/core/inputs.py", "shared/schedules/inputs.py"):
        mods = imported_modules(ROOT / rel)
        assert not [m for m in mods if m.startswith(("jobline.api", "jobline.graphql"))], rel
