"""The core library does not depend on the processes built on it: nothing in ``jobline/shared``
imports a shell (REST, GraphQL, CLI, client, Lambda functions), the worker, the schedulers, the
analytics consumer or the embedded dev servers. Checked statically, so an import hidden inside
a function (the usual way around a cycle) is caught too."""

from __future__ import annotations

import ast
from pathlib import Path

import jobline

SHARED = Path(jobline.__file__).parent / "shared"
FORBIDDEN = ("api", "graphql", "worker", "analytics", "schedulers", "functions", "cli", "client",
             "embedded", "embedded_kafka", "demo")


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    """Every module an import statement names, anywhere in the file (``from jobline import x``
    counts as ``jobline.x``)."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
            if node.module == "jobline":
                out += [(node.lineno, f"jobline.{a.name}") for a in node.names]
    return out


def offending_imports(root: Path) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        for line, module in _imports(ast.parse(path.read_text(), str(path))):
            parts = module.split(".")
            if parts[0] == "jobline" and len(parts) > 1 and parts[1] in FORBIDDEN:
                bad.append(f"{path.relative_to(root.parent.parent)}:{line}: {module}")
    return bad


def test_shared_imports_no_shell_worker_or_analytics() -> None:
    assert SHARED.is_dir() and len(list(SHARED.rglob("*.py"))) > 40
    assert offending_imports(SHARED) == []


def test_the_scan_catches_a_lazy_import(tmp_path: Path) -> None:
    pkg = tmp_path / "jobline" / "shared"
    pkg.mkdir(parents=True)
    (pkg / "m.py").write_text("def f():\n    from jobline.worker.runtime import Worker\n"
                              "from jobline import client\nimport jobline.shared.core\n")
    assert sorted(offending_imports(pkg)) == ["jobline/shared/m.py:2: jobline.worker.runtime",
                                              "jobline/shared/m.py:3: jobline.client"]


def test_worker_registry_keys_are_spelled_once() -> None:
    """``{prefix}:worker:{id}``, ``{prefix}:workers`` and ``{prefix}:workers:tracked`` are built
    only by ``jobline.shared.observe.workers``; the worker, the API and monitoring call it."""
    root = SHARED.parent
    spelled = [str(p.relative_to(root)) for p in sorted(root.rglob("*.py"))
               if any(k in p.read_text() for k in (':worker:{', ':workers"', ':workers:'))]
    assert spelled == ["shared/observe/workers.py"]
