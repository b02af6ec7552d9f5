"""How ``maintenance_work_mem`` changes the seed's slowest index builds (issue 16).

The 100M seed's index step is bounded by ``(status, id)`` and ``(job_type, id)`` over the
November partition (77M rows). This builds both over a synthetic heap shaped like it (UUIDv7
ids in key order, ~94% of rows one status, a dozen job types, ~200-byte rows), once per given
setting, alternating, and reports the seconds of each build. No parallel build workers: the
seed builds two indexes at once on a 2-core machine.

    .venv/bin/python bench/index_sort.py --rows 30M --mem 512MB,128MB --repeat 2 \
        --base-dir /work/somewhere-with-10-GB
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import uvloop

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import stores  # noqa: E402

from jobline.analytics.seed import parse_count  # noqa: E402

TYPES = ("email.send", "email.campaign", "sms.send", "image.resize", "image.thumbnail",
         "video.encode", "reports.extract", "reports.aggregate", "webhooks.deliver",
         "ml.infer", "notifications.push", "cleanup.purge")

FILL = f"""
CREATE TABLE t (id uuid NOT NULL, status text NOT NULL, job_type text NOT NULL, pad text)
    WITH (autovacuum_enabled = off);
INSERT INTO t
SELECT (lpad(to_hex(((1790000000000 + g * 20) << 16) | 28672 | (hashint8(g) & 4095)), 16, '0')
        || to_hex((hashint8(g * 7) & 4611686018427387903) | (-9223372036854775807 - 1)))::uuid,
       CASE WHEN abs(hashint8(g * 3)) % 100 < 94 THEN 'completed' ELSE 'dead_letter' END,
       (ARRAY{list(TYPES)!r})[1 + abs(hashint8(g * 5)) % {len(TYPES)}],
       repeat('x', 120)
  FROM generate_series(1, $ROWS) AS g ORDER BY 1;
"""

INDEXES = {"status_id": "(status, id)", "type_id": "(job_type, id)"}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    mems = [m.strip() for m in args.mem.split(",") if m.strip()]
    times: dict[str, dict[str, list[float]]] = {m: {k: [] for k in INDEXES} for m in mems}
    async with stores.local("jobline-index-sort-", external=False,
                            base_dir=args.base_dir) as services:
        conn = await asyncpg.connect(services.database_url)
        try:
            await conn.execute("SET synchronous_commit = off")
            await conn.execute(FILL.replace("$ROWS", str(args.rows)))
            await conn.execute("VACUUM (FREEZE, ANALYZE) t")  # as the seed leaves its rows
            await conn.execute("SET max_parallel_maintenance_workers = 0")
            for _ in range(args.repeat):
                for m in mems:
                    await conn.execute(f"SET maintenance_work_mem = '{m}'")
                    for name, cols in INDEXES.items():
                        t0 = time.perf_counter()
                        await conn.execute(f"CREATE INDEX i ON t {cols}")
                        times[m][name].append(round(time.perf_counter() - t0, 2))
                        await conn.execute("DROP INDEX i")
                    print(m, {k: v[-1] for k, v in times[m].items()}, flush=True)
        finally:
            await conn.close()
    return {"rows": args.rows, "repeat": args.repeat, "seconds": times,
            "median_s": {m: {k: statistics.median(v) for k, v in d.items()}
                         for m, d in times.items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", default="30M", help="heap rows (30M: ~5 GB)")
    p.add_argument("--mem", default="512MB,128MB", help="maintenance_work_mem values")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--base-dir", default=None, help="where the store lives (default /dev/shm)")
    p.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    args = p.parse_args()
    args.rows = parse_count(args.rows)
    rep = uvloop.run(run(args))
    text = json.dumps(rep, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
