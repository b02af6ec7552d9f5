"""``generate_report``: tabulate rows, compute per-column statistics, write CSV/HTML/JSON.

Payload is either explicit data, ``{"title", "columns", "rows", "format"}`` where rows are lists
(matching ``columns``) or objects (columns inferred), or ``{"kind": "sample", "rows": N}`` for
deterministic generated sales data.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from datetime import UTC, datetime
from typing import Any

from jobline.demo._common import (
    atomic_write,
    invalid,
    is_number,
    output_dir,
    output_stem,
    require_int,
    require_object,
)
from jobline.worker.registry import JobContext, job

MAX_ROWS = 100_000
MAX_COLUMNS = 200
MAX_TITLE = 200
REPORT_FORMATS = {"csv": "csv", "html": "html", "json": "json"}
SAMPLE_COLUMNS = ["id", "region", "product", "units", "unitPrice", "revenue"]
_REGIONS = ["north", "south", "east", "west"]
_PRODUCTS = ["widget", "gadget", "gizmo"]

Cell = str | int | float | bool | None


def sample_rows(n: int) -> list[list[Cell]]:
    """Pure arithmetic rather than `random`, so the data is identical on every Python version."""
    rows: list[list[Cell]] = []
    for i in range(1, n + 1):
        units = (i * 37) % 100 + 1
        price_cents = (i * 7919) % 10_000 + 100
        rows.append([
            i,
            _REGIONS[i % len(_REGIONS)],
            _PRODUCTS[(i * 7) % len(_PRODUCTS)],
            units,
            price_cents / 100,
            # Revenue from integer cents so it is exact to the cent, unlike units * float price.
            units * price_cents / 100,
        ])
    return rows


def _check_cell(value: object, where: str) -> Cell:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise invalid(f"{where}: non-finite number {value!r}")
        return value
    raise invalid(f"{where}: cells must be strings, numbers, booleans or null, got {type(value).__name__}")


def normalize(columns: object, rows: object) -> tuple[list[str], list[list[Cell]]]:
    if not isinstance(rows, list):
        raise invalid("rows must be a list (or use kind=sample with an integer rows count)")
    if len(rows) > MAX_ROWS:
        raise invalid(f"at most {MAX_ROWS} rows are supported")
    if columns is None:
        if rows and all(isinstance(r, dict) for r in rows):
            # Union of keys in first-seen order, so sparse objects still line up.
            seen: dict[str, None] = {}
            for r in rows:
                seen.update(dict.fromkeys(r))
            columns = list(seen)
        else:
            width = max((len(r) for r in rows if isinstance(r, list)), default=0)
            columns = [f"col{i + 1}" for i in range(width)]
    if (not isinstance(columns, list) or len(columns) > MAX_COLUMNS
            or not all(isinstance(c, str) and c for c in columns)):
        raise invalid(f"columns must be a list of at most {MAX_COLUMNS} non-empty strings")
    if len(set(columns)) != len(columns):
        raise invalid("columns must be unique")
    out: list[list[Cell]] = []
    for i, row in enumerate(rows):
        if isinstance(row, dict):
            extra = set(row) - set(columns)
            if extra:
                raise invalid(f"rows[{i}] has keys not in columns: {sorted(extra)}")
            out.append([_check_cell(row.get(c), f"rows[{i}].{c}") for c in columns])
        elif isinstance(row, list):
            if len(row) != len(columns):
                raise invalid(f"rows[{i}] has {len(row)} cells, expected {len(columns)}")
            out.append([_check_cell(v, f"rows[{i}][{j}]") for j, v in enumerate(row)])
        else:
            raise invalid(f"rows[{i}] must be a list or an object")
    return columns, out


def summarize(columns: list[str], rows: list[list[Cell]]) -> dict[str, Any]:
    """Stats for every column whose non-null cells are all numbers (and there is at least one)."""
    stats: dict[str, Any] = {}
    for j, name in enumerate(columns):
        values = [row[j] for row in rows if row[j] is not None]
        nums = [v for v in values if is_number(v)]
        if not nums or len(nums) != len(values):
            continue
        # Integer columns sum exactly; fsum avoids drift when adding many floats.
        total: int | float = (sum(nums) if all(isinstance(v, int) for v in nums)
                              else math.fsum(nums))
        stats[name] = {
            "count": len(nums),
            "sum": total,
            "mean": total / len(nums),
            "min": min(nums),
            "max": max(nums),
        }
    return {"count": len(rows), "columns": stats}


def render_csv(columns: list[str], rows: list[list[Cell]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    writer.writerows(rows)
    # utf-8-sig: spreadsheet apps otherwise guess a legacy codepage for non-ASCII text.
    return buf.getvalue().encode("utf-8-sig")


def render_html(title: str, columns: list[str], rows: list[list[Cell]],
                summary: dict[str, Any], generated_at: str) -> bytes:
    esc = html.escape

    def cell(v: Cell) -> str:
        return "" if v is None else esc(str(v))

    stat_rows = "".join(
        f"<tr><th>{esc(name)}</th>"
        + "".join(f"<td>{s[k]}</td>" for k in ("count", "sum", "mean", "min", "max"))
        + "</tr>"
        for name, s in summary["columns"].items()
    )
    body_rows = "\n".join(
        "<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows
    )
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 6px}}</style>
</head><body>
<h1>{esc(title)}</h1>
<p>{summary["count"]} rows, generated {esc(generated_at)}</p>
<h2>Summary</h2>
<table><thead><tr><th>column</th><th>count</th><th>sum</th><th>mean</th><th>min</th><th>max</th></tr></thead>
<tbody>{stat_rows}</tbody></table>
<h2>Data</h2>
<table><thead><tr>{"".join(f"<th>{esc(c)}</th>" for c in columns)}</tr></thead>
<tbody>
{body_rows}
</tbody></table>
</body></html>
"""
    return doc.encode()


@job("generate_report", queue="reports", timeout="5m")
def generate_report(payload: dict[str, Any], ctx: JobContext | None = None) -> dict[str, Any]:
    payload = require_object(payload)
    fmt = payload.get("format", "csv")
    if fmt not in REPORT_FORMATS:
        raise invalid(f"format must be one of {sorted(REPORT_FORMATS)}, got {fmt!r}")
    kind = payload.get("kind")
    if kind == "sample":
        columns, rows = SAMPLE_COLUMNS, sample_rows(require_int(payload, "rows", 0, MAX_ROWS))
        default_title = "Sample sales report"
    elif kind is None:
        columns, rows = normalize(payload.get("columns"), payload.get("rows"))
        default_title = "Report"
    else:
        raise invalid(f"kind must be 'sample' or omitted, got {kind!r}")
    title = payload.get("title", default_title)
    if not isinstance(title, str) or len(title) > MAX_TITLE:
        raise invalid(f"title must be a string of at most {MAX_TITLE} characters")

    # ctx.progress/ctx.log: shown live in the dashboard's job drawer (no-ops without a ctx)
    if ctx is not None:
        ctx.log(f"{len(rows)} rows in, {len(columns)} columns, format {fmt}")
        ctx.progress(0.25, "summarising")
    summary = summarize(columns, rows)
    generated_at = datetime.now(UTC).isoformat()
    if ctx is not None:
        ctx.progress(0.5, f"rendering {fmt}")
    if fmt == "csv":
        data = render_csv(columns, rows)
    elif fmt == "html":
        data = render_html(title, columns, rows, summary, generated_at)
    else:
        data = json.dumps({"title": title, "generatedAt": generated_at, "columns": columns,
                           "rows": rows, "summary": summary}, ensure_ascii=False).encode()
    path = output_dir("reports") / f"{output_stem(ctx)}.{REPORT_FORMATS[fmt]}"
    atomic_write(path, data)
    if ctx is not None:
        ctx.log(f"wrote {len(data)} bytes to {path.name}")
        ctx.progress(1.0, "done")
    return {"reportUrl": path.as_uri(), "rows": len(rows), "format": fmt, "bytes": len(data),
            "summary": summary}
