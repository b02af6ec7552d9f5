"""Every shell gets the same submit limits (issue 13, defect 4): the queue backlog cap
(backpressure) and the bulk-size cap are enforced by the core operations, so GraphQL
``submit``/``submitMany``/``createBatch`` and :class:`jobline.Client` refuse exactly what REST
refuses, with the same error type, and store nothing. (REST's status codes and bodies for the
same limits: test_safe_defaults.py, test_limits.py, test_api.py.)"""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest

from jobline.client import Client
from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec
from jobline.shared.dispatch import backpressure
from jobline.shared.flow import batches
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import Unavailable, ValidationFailed

#: One queue capped at 2 queued jobs; ``max_bulk_jobs`` 3 for every bulk operation.
CAP, BULK = 2, 3


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    return settings.with_(max_bulk_jobs=BULK, queue_depths={"capped": CAP})


async def count_jobs(deps: Deps) -> int:
    n = await deps.pool.fetchval("SELECT count(*) FROM jobs")
    assert isinstance(n, int)
    return n


async def fill(deps: Deps) -> None:
    """Bring the capped queue to its cap (through the core, which admits exactly up to it)."""
    await jobs.submit_many(deps, [JobSpec(queue="capped", job_type="t", payload={}) for _ in range(CAP)])
    assert await backpressure.queue_depths(deps, ["capped"]) == {"capped": CAP}


async def gql(http: httpx.AsyncClient, query: str) -> dict[str, Any]:
    r = await http.post("/graphql", json={"query": query})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def error_of(body: dict[str, Any]) -> dict[str, Any]:
    assert body.get("errors"), body
    err: dict[str, Any] = body["errors"][0]
    return err


JOB = '{queue: "capped", jobType: "t"}'
FREE = '{queue: "free", jobType: "t"}'


async def test_graphql_submit_over_the_queue_cap_is_refused(
        deps: Deps, admin: httpx.AsyncClient) -> None:
    await fill(deps)
    err = error_of(await gql(admin, f"mutation {{ submit(input: {JOB}) {{ id }} }}"))
    assert err["extensions"]["code"] == "UNAVAILABLE", err
    assert err["extensions"]["retryAfterS"] == backpressure.RETRY_AFTER_S
    assert "capped" in err["message"]
    many = error_of(await gql(admin, f"mutation {{ submitMany(inputs: [{FREE}, {JOB}]) "
                                     "{ id } }"))
    assert many["extensions"]["code"] == "UNAVAILABLE", many
    batch = error_of(await gql(admin, f'mutation {{ createBatch(name: "b", jobs: [{JOB}]) '
                                      "{ id } }"))
    assert batch["extensions"]["code"] == "UNAVAILABLE", batch
    assert await count_jobs(deps) == CAP
    assert await deps.pool.fetchval("SELECT count(*) FROM job_batches") == 0
    # another queue is not affected
    ok = await gql(admin, f"mutation {{ submit(input: {FREE}) {{ id }} }}")
    assert "errors" not in ok, ok


async def test_graphql_create_batch_over_the_bulk_cap_is_refused(
        deps: Deps, admin: httpx.AsyncClient) -> None:
    jobs_arg = ", ".join([FREE] * (BULK + 1))
    err = error_of(await gql(admin, f'mutation {{ createBatch(name: "b", jobs: [{jobs_arg}]) '
                                    "{ id } }"))
    assert err["extensions"]["code"] == "BAD_USER_INPUT", err
    assert err["extensions"]["field"] == "jobs"
    assert await count_jobs(deps) == 0
    assert await deps.pool.fetchval("SELECT count(*) FROM job_batches") == 0
    # exactly at the cap, plus an onComplete job (not counted: it is held, not queued)
    jobs_arg = ", ".join([FREE] * BULK)
    ok = await gql(admin, f'mutation {{ createBatch(name: "b", jobs: [{jobs_arg}], '
                          f"onComplete: {FREE}) {{ id total }} }}")
    assert ok["data"]["createBatch"]["total"] == BULK, ok


async def test_graphql_submit_many_over_the_bulk_cap_is_refused(
        deps: Deps, admin: httpx.AsyncClient) -> None:
    err = error_of(await gql(admin, "mutation { submitMany(inputs: ["
                                    + ", ".join([FREE] * (BULK + 1)) + "]) { id } }"))
    assert err["extensions"]["code"] == "BAD_USER_INPUT", err
    assert err["extensions"]["field"] == "inputs"
    assert await count_jobs(deps) == 0


async def test_client_gets_the_same_limits(deps: Deps) -> None:
    async with Client(deps) as client:
        await fill(deps)
        with pytest.raises(Unavailable) as single:
            await client.submit("t", queue="capped")
        assert single.value.retry_after_s == backpressure.RETRY_AFTER_S
        with pytest.raises(Unavailable):
            await client.submit_many([{"job_type": "t", "queue": "free"},
                                      {"job_type": "t", "queue": "capped"}])
        with pytest.raises(Unavailable):
            await client.submit_batch("b", [{"job_type": "t", "queue": "capped"}])
        with pytest.raises(ValidationFailed) as bulk:
            await client.submit_many([{"job_type": "t", "queue": "free"}] * (BULK + 1))
        assert bulk.value.field == "jobs"
        with pytest.raises(ValidationFailed) as batch:
            await client.submit_batch("b", [{"job_type": "t", "queue": "free"}] * (BULK + 1))
        assert batch.value.field == "jobs"
        assert await count_jobs(deps) == CAP
        assert (await client.submit("t", queue="free")).queue == "free"


async def test_core_operations_enforce_the_limits(deps: Deps) -> None:
    """The core is where the limits live: a shell that forgets to check cannot bypass them."""
    await fill(deps)
    with pytest.raises(Unavailable):
        await jobs.submit(deps, JobSpec(queue="capped", job_type="t", payload={}))
    with pytest.raises(ValidationFailed) as bulk:
        await jobs.submit_many(deps, [JobSpec(queue="free", job_type="t", payload={})] * (BULK + 1))
    assert bulk.value.field == "jobs"
    with pytest.raises(ValidationFailed):
        await batches.create_batch(deps, "b", [JobSpec(queue="free", job_type="t", payload={})] * (BULK + 1))
    with pytest.raises(Unavailable):
        await batches.create_batch(deps, "b", [JobSpec(queue="capped", job_type="t", payload={})])
    assert await count_jobs(deps) == CAP
    # a cap of 0 for a queue means uncapped; the global cap is off by default
    free = dataclasses.replace(deps, settings=deps.settings.with_(queue_depths={"capped": 0}))
    await jobs.submit(free, JobSpec(queue="capped", job_type="t", payload={}))
    assert await count_jobs(deps) == CAP + 1
