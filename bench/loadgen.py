"""A small open-loop HTTP/1.1 load generator (keep-alive connections, one request in flight each).

Used by the suite's HTTP scenario when ``wrk`` is not installed and by the ``make test`` smoke.
At a fixed ``--rate`` request *i* is due at ``t0 + i / rate``; its latency is measured from that
due time, not from when a connection became free, so a server that falls behind shows up in the
percentiles instead of silently lowering the offered load (no coordinated omission).
``--rate 0`` is saturation: every connection sends its next request as soon as the last returns.

    python bench/loadgen.py --url http://127.0.0.1:8000/api/v1/jobs --body '{...}' \
        --rate 5000 --duration 10 --connections 64

Prints one JSON object: requests, errors, achieved rate, p50/p99/max latency in ms. Sends
``X-Api-Key: $JOBLINE_API_KEY`` when that variable is set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from urllib.parse import urlsplit


def request_bytes(url: str, body: bytes) -> tuple[str, int, bytes]:
    u = urlsplit(url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    headers = [f"POST {u.path or '/'} HTTP/1.1", f"Host: {host}:{port}",
               "Content-Type: application/json", f"Content-Length: {len(body)}"]
    if os.environ.get("JOBLINE_API_KEY"):
        headers.append(f"X-Api-Key: {os.environ['JOBLINE_API_KEY']}")
    return host, port, ("\r\n".join(headers) + "\r\n\r\n").encode() + body


async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes) -> int:
    writer.write(req)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def run(url: str, body: bytes, rate: float, duration: float, connections: int
              ) -> dict[str, float]:
    host, port, req = request_bytes(url, body)
    lat: list[float] = []
    errors = 0
    t0 = time.perf_counter() + 0.2
    end = t0 + duration
    due: asyncio.Queue[float] = asyncio.Queue()

    async def pace() -> None:
        i = 0
        while True:
            now = time.perf_counter()
            if now >= end:
                return
            target = int((now - t0) * rate) + 1 if now >= t0 else 0
            while i < target:
                due.put_nowait(t0 + i / rate)
                i += 1
            await asyncio.sleep(0.001)

    async def conn() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while True:
                if rate > 0:
                    try:
                        start = await asyncio.wait_for(due.get(), max(0.0, end - time.perf_counter()) + 0.01)
                    except TimeoutError:
                        return
                else:
                    start = time.perf_counter()
                    if start >= end:
                        return
                    if start < t0:
                        await asyncio.sleep(t0 - start)
                        continue
                status = await one(reader, writer, req)
                if 200 <= status < 300:
                    lat.append(time.perf_counter() - start)
                else:
                    errors += 1
        finally:
            writer.close()

    tasks = [asyncio.create_task(conn()) for _ in range(connections)]
    if rate > 0:
        tasks.append(asyncio.create_task(pace()))
    await asyncio.gather(*tasks)
    elapsed = max(time.perf_counter(), end) - t0
    lat.sort()

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2) if lat else 0.0

    return {"requests": len(lat), "errors": errors, "rate": round(len(lat) / elapsed, 1),
            "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": pct(1.0)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--body", required=True)
    ap.add_argument("--rate", type=float, default=0.0, help="requests/s; 0 = saturation")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--connections", type=int, default=64)
    a = ap.parse_args()
    import uvloop

    print(json.dumps(uvloop.run(run(a.url, a.body.encode(), a.rate, a.duration,
                                    a.connections))))


if __name__ == "__main__":
    main()
