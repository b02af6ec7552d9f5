"""Measure one peer (run by bench/peers.py with the peers' venv python, cwd bench/peer_apps).

    PEER=rq PEER_REDIS_URL=redis://127.0.0.1:port/1 python driver.py N IDLE

Prints JSON: enqueue_per_s (N jobs, the peer's fastest documented enqueue path), process_per_s
(drain of those N jobs by the peer's workers, between 10% and 90% done;
process_first_to_last_per_s: first to last handler call), latency p50/p99 (ms,
IDLE jobs one at a time into idle workers: submit -> handler start).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import redis

PEER = os.environ["PEER"]
URL = os.environ["PEER_REDIS_URL"]
BIN = os.path.dirname(sys.executable)
NODE = os.environ.get("PEER_NODE_DIR", "")
r = redis.Redis.from_url(URL)
#: One loop for the whole run: async clients (SAQ, taskiq) bind to the loop they connected on.
LOOP = asyncio.new_event_loop()


def worker_cmds() -> list[list[str]]:
    b = lambda x: os.path.join(BIN, x)  # noqa: E731
    return {
        "celery": [[b("celery"), "-A", "tasks.celery_app", "worker", "-P", "prefork", "-c", "2",
                    "--without-gossip", "--without-mingle", "--without-heartbeat", "-l",
                    "warning"]],
        "dramatiq": [[b("dramatiq"), "tasks", "-p", "2", "-t", "8"]],
        "huey": [[b("huey_consumer"), "tasks.huey", "-w", "4", "-k", "thread", "-d", "0.001",
                  "-m", "0.01"]] * 2,
        "rq": [[b("rq"), "worker", "--url", URL, "--worker-class", "rq.worker.SimpleWorker",
                "-q"]] * 2,
        "arq": [[b("arq"), "tasks.ArqSettings"]] * 2,
        "saq": [[b("saq"), "tasks.saq_settings", "--workers", "2"]],
        "taskiq": [[b("taskiq"), "worker", "tasks:taskiq_broker", "--workers", "2",
                    "--max-async-tasks", "25"]],
        "bullmq": [["node", os.path.join(os.getcwd(), "bullmq.mjs"), "work"]] * 2,
    }[PEER]


async def enqueue(n: int, t: float | None = None) -> float | None:
    """Enqueue n jobs; returns the seconds it took when timed by a subprocess (BullMQ: node's
    start-up is not part of the enqueue)."""
    import tasks
    if PEER == "celery":
        for _ in range(n):
            tasks.celery_noop.delay(t)
    elif PEER == "dramatiq":
        for _ in range(n):
            tasks.dramatiq_noop.send(t)
    elif PEER == "huey":
        for _ in range(n):
            tasks.huey_noop(t)
    elif PEER == "rq":
        from rq import Queue
        q = Queue(connection=r)
        for s in range(0, n, 1000):
            q.enqueue_many([Queue.prepare_data(tasks.rq_noop, (t,))
                            for _ in range(min(1000, n - s))])
    elif PEER == "arq":
        from arq import create_pool
        from arq.connections import RedisSettings
        pool = await create_pool(RedisSettings.from_dsn(URL))
        for s in range(0, n, 1000):
            await asyncio.gather(*(pool.enqueue_job("arq_noop", t)
                                   for _ in range(min(1000, n - s))))
        await pool.aclose()
    elif PEER == "saq":
        q = tasks.saq_queue
        if not getattr(q, "_bench_connected", False):
            await q.connect()
            q._bench_connected = True
        for s in range(0, n, 1000):
            await asyncio.gather(*(q.enqueue("saq_noop", t=t) for _ in range(min(1000, n - s))))
    elif PEER == "taskiq":
        if not getattr(tasks.taskiq_broker, "_bench_started", False):
            await tasks.taskiq_broker.startup()
            tasks.taskiq_broker._bench_started = True
        for s in range(0, n, 1000):
            await asyncio.gather(*(tasks.taskiq_noop.kiq(t) for _ in range(min(1000, n - s))))
    elif PEER == "bullmq":
        out = subprocess.run(["node", "bullmq.mjs", "enqueue", str(n)], check=True,
                             env=os.environ, capture_output=True, text=True).stdout
        return float(json.loads(out.strip().splitlines()[-1])["s"])
    return None


def main() -> None:
    n, idle = int(sys.argv[1]), int(sys.argv[2])
    r.flushdb()
    t0 = time.perf_counter()
    took = LOOP.run_until_complete(enqueue(n))
    enqueue_per_s = n / (took if took is not None else time.perf_counter() - t0)
    procs = [subprocess.Popen(c, env=os.environ, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
             for c in worker_cmds()]
    try:
        deadline = time.monotonic() + 600
        first = None
        marks: dict[float, float] = {}  # fraction done -> when first seen
        while True:
            done = int(r.get("pb:done") or 0)
            now = time.perf_counter()
            if done and first is None:
                first = (now, done)
            for frac in (0.1, 0.9):
                if frac not in marks and done >= frac * n:
                    marks[frac] = now
            if done >= n:
                break
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit(f"workers finished {done} of {n} jobs")
            time.sleep(0.002)  # progress probe
        assert first is not None
        process_first_last = (n - first[1]) / max(1e-6, now - first[0])
        # the middle 80%: the steady rate, without worker start-up skew or stragglers
        process_per_s = 0.8 * n / max(1e-6, marks[0.9] - marks[0.1])
        lat = []
        for i in range(idle + 3):
            time.sleep(0.02)  # workers idle again
            if PEER == "bullmq":  # stamped inside node at add time (node start-up excluded)
                subprocess.run(["node", "bullmq.mjs", "enqueue", "1", "now"], check=True,
                               env=os.environ)
            else:
                LOOP.run_until_complete(enqueue(1, time.time()))
            got = r.blpop("pb:lat", timeout=10)
            if got is None:
                raise SystemExit("latency job did not run")
            if i >= 3:
                lat.append(float(got[1]) * 1000)
        lat.sort()
        print(json.dumps({"enqueue_per_s": enqueue_per_s, "process_per_s": process_per_s,
                          "process_first_to_last_per_s": process_first_last,
                          "latency_p50_ms": lat[len(lat) // 2],
                          "latency_p99_ms": lat[min(len(lat) - 1, int(0.99 * len(lat)))]}))
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
