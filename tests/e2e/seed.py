"""Demo data for screenshots and the latency benchmark: a few queues with completed, failed,
dead-lettered, running and delayed jobs, a batch, a dependency chain and a schedule."""

from __future__ import annotations

from typing import Any

import httpx

SUBMIT_MANY = ("mutation($in: [SubmitJobInput!]!) { submitMany(inputs: $in) { id status } }")


async def gql(c: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None
              ) -> dict[str, Any]:
    r = await c.post("/graphql", json={"query": query, "variables": variables or {}})
    r.raise_for_status()
    body: dict[str, Any] = r.json()
    assert "errors" not in body, body
    return body["data"]  # type: ignore[no-any-return]


async def seed(c: httpx.AsyncClient) -> dict[str, Any]:
    jobs: list[dict[str, Any]] = []
    for i in range(40):
        jobs.append({"queue": "default", "jobType": "demo.noop", "payload": {"n": i}})
    for i in range(12):
        jobs.append({"queue": "reports", "jobType": "demo.sleep",
                     "payload": {"ms": 200 + 150 * (i % 5)}})
    for i in range(6):
        jobs.append({"queue": "billing", "jobType": "demo.flaky", "maxAttempts": 2,
                     "payload": {"failTimes": 5, "failWith": "timeout", "invoice": 1000 + i,
                                 "api_key": "sk-live-secret"}})
    for i in range(3):
        jobs.append({"queue": "email", "jobType": "demo.flaky", "maxAttempts": 1,
                     "payload": {"failTimes": 1, "failWith": "connection_refused", "to": i}})
    jobs.append({"queue": "reports", "jobType": "demo.sleep", "payload": {"ms": 60_000}})
    jobs.append({"queue": "default", "jobType": "demo.noop", "payload": {}, "delayMs": 3_600_000})
    await gql(c, SUBMIT_MANY, {"in": jobs})
    chain = await gql(c, SUBMIT_MANY, {"in": [
        {"queue": "etl", "jobType": "demo.sleep", "payload": {"ms": 300}},
        {"queue": "etl", "jobType": "demo.sleep", "payload": {"ms": 300}, "dependsOn": ["0"]},
        {"queue": "etl", "jobType": "demo.noop", "payload": {"step": "load"},
         "dependsOn": ["0", "1"]}]})
    batch = await gql(c, """mutation($jobs: [SubmitJobInput!]!) {
        createBatch(name: "nightly-thumbnails", jobs: $jobs) { id } }""",
                      {"jobs": [{"queue": "images", "jobType": "demo.sleep",
                                 "payload": {"ms": 100 * (i % 4)}} for i in range(20)]})
    await gql(c, """mutation { createSchedule(input: {name: "hourly-report", queue: "reports",
        jobType: "demo.noop", schedule: "0 * * * *", timezone: "UTC", payload: {kind: "hourly"}})
        { id } }""")
    await gql(c, 'mutation { setRateLimit(queue: "email", limit: 50, windowMs: 1000) { name } }')
    await gql(c, 'mutation { setConcurrency(queue: "reports", maxInFlight: 4) { name } }')
    return {"chain": [j["id"] for j in chain["submitMany"]],
            "batch": batch["createBatch"]["id"]}


async def traffic(c: httpx.AsyncClient, n: int = 400) -> None:
    """A few minutes' worth of mixed work at once, for a Timeline and Charts with something on them."""
    jobs = []
    for i in range(n):
        q = ("default", "reports", "images", "email")[i % 4]
        if i % 23 == 0:
            jobs.append({"queue": q, "jobType": "demo.flaky", "maxAttempts": 1,
                         "payload": {"failTimes": 1, "failWith": "timeout"}})
        else:
            jobs.append({"queue": q, "jobType": "demo.sleep",
                         "payload": {"ms": 50 + (i * 37) % 900}})
    await gql(c, SUBMIT_MANY, {"in": jobs})
