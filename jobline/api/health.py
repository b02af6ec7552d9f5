"""``/healthz`` (the process is up) and ``/readyz`` (it can reach Postgres and Redis).

On a Redis Cluster "reach Redis" means every primary answers ``PING``: with one shard down a
third of the queues cannot be served, which is an outage of this process's dispatch, not a
detail (a failover takes it back to ready within seconds).

Liveness deliberately checks nothing external: restarting an API process cannot fix a database
outage, so a down database must make it unready (taken out of rotation), never "dead".
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobline.api.context import ctx
from jobline.api.docs import Op, Resp, documented
from jobline.api.errors import JSONResponse, endpoint
from jobline.api.schemas import HealthOut
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.redis_client import ping_all

#: A readiness probe must answer fast even when a store hangs rather than refuses.
PROBE_TIMEOUT_S = 2.0


@documented(Op("healthz", "Liveness", responses={200: Resp("Alive", HealthOut)}, errors=None))
@endpoint
async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _check_postgres(deps: Deps) -> str:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            await deps.pool.fetchval("SELECT 1")
    except Exception as e:
        return f"down: {type(e).__name__}"
    return "ok"


async def _check_redis(deps: Deps) -> str:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            await ping_all(deps.redis)
    except Exception as e:
        return f"down: {type(e).__name__}"
    return "ok"


@documented(Op("readyz", "Readiness (Postgres and Redis reachable)", errors=None, responses={
    200: Resp("Ready", HealthOut),
    503: Resp("Not ready; names what is down", HealthOut,
              headers={"Retry-After": {"schema": {"type": "integer"}}})}))
@endpoint
async def readyz(request: Request) -> Response:
    deps = ctx(request).deps
    if deps is None:
        return JSONResponse({"status": "unavailable", "postgres": "not connected",
                             "redis": "not connected"}, status_code=503,
                            headers={"Retry-After": "1"})
    pg, rd = await asyncio.gather(_check_postgres(deps), _check_redis(deps))
    ok = pg == "ok" and rd == "ok"
    return JSONResponse({"status": "ok" if ok else "unavailable", "postgres": pg, "redis": rd},
                        status_code=200 if ok else 503,
                        headers=None if ok else {"Retry-After": "1"})


routes = [
    Route("/healthz", healthz, methods=["GET"], name="healthz"),
    Route("/readyz", readyz, methods=["GET"], name="readyz"),
]
