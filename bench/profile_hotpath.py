"""Profile the durable hot paths with pyinstrument (in-process) to see where the time goes.

    python bench/profile_hotpath.py bulk --jobs 20000      # submit_many, 5,000 per call
    python bench/profile_hotpath.py single --jobs 20000    # concurrent single submits

Workers are profiled from outside with py-spy while ``bench/throughput.py`` runs:
``py-spy record -o worker.svg --pid <worker pid> --duration 10`` (see docs/performance.md).
Prints pyinstrument's text report (client side only: PostgreSQL and Valkey time shows up as
awaits on the driver calls).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import stores
import throughput

from jobline.shared.platform.config import Settings


async def main(args: argparse.Namespace) -> None:
    from pyinstrument import Profiler
    async with stores.local("jobline-prof-") as services:
        s = Settings().with_(database_url=services.database_url, redis_url=services.redis_url,
                             redis_prefix="prof")
        fn = {"bulk": throughput.bench_submit_bulk,
              "single": throughput.bench_submit_concurrent}[args.what]
        await fn(s, 2000)  # warm up connections and statement caches
        await throughput.reset(services.database_url, s)
        prof = Profiler(async_mode="enabled", interval=0.0005)
        t0 = time.perf_counter()
        with prof:
            rate = await fn(s, args.jobs)
        print(f"{args.what}: {rate:,.0f} jobs/s ({time.perf_counter() - t0:.2f}s)")
        print(prof.output_text(unicode=False, color=False, show_all=False))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["bulk", "single"])
    ap.add_argument("--jobs", type=int, default=20_000)
    import uvloop
    uvloop.run(main(ap.parse_args()))
