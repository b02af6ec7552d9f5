"""GraphQL reads the dashboard needs: who the key belongs to (so the UI can follow the role),
how many dead letters a filter matches (the bulk-action confirmation states it), and job reads
that mask secrets the way REST does (the job drawer shows the payload)."""

from __future__ import annotations

import httpx
from test_graphql import code, gql

from jobline.shared.core import jobs
from jobline.shared.core.models import JobSpec, Outcome
from jobline.shared.platform.connections import Deps
from jobline.shared.security import auth


async def test_viewer_names_the_keys_role(admin: httpx.AsyncClient, deps: Deps) -> None:
    me = await gql(admin, "{ viewer { role name } }")
    assert me["data"]["viewer"] == {"role": "admin", "name": "test client"}
    _, dev = await auth.create_key(deps, "developer", "dev-laptop")
    me = await gql(admin, "{ viewer { role name } }", key=dev)
    assert me["data"]["viewer"] == {"role": "developer", "name": "dev-laptop"}


async def _dead(deps: Deps, queue: str, job_type: str, n: int) -> None:
    for _ in range(n):
        await jobs.submit(deps, JobSpec(queue, job_type, {}, max_attempts=1))
    for cl in await jobs.claim(deps, "w", [queue], n):
        await jobs.fail(deps, [Outcome(cl.id, cl.token, False, error="boom", error_type="Boom")],
                        [cl.attempt])


async def test_dead_letter_count_follows_the_filter(admin: httpx.AsyncClient, deps: Deps) -> None:
    await _dead(deps, "cnt-a", "t1", 3)
    await _dead(deps, "cnt-b", "t2", 2)
    q = "query($f: DlqFilterInput) { deadLetterCount(filter: $f) }"
    assert (await gql(admin, q, {"f": {"queue": "cnt-a"}}))["data"]["deadLetterCount"] == 3
    assert (await gql(admin, q, {"f": {"jobType": "t2"}}))["data"]["deadLetterCount"] == 2
    assert (await gql(admin, q, {"f": {"queue": "cnt-a", "errorType": "Other"}})
            )["data"]["deadLetterCount"] == 0
    # the count is what the bulk action then acts on
    n = (await gql(admin, q, {"f": {"queue": "cnt-b"}}))["data"]["deadLetterCount"]
    done = await gql(admin, "mutation($f: DlqFilterInput!) { retryDeadLetters(filter: $f) "
                            "{ count } }", {"f": {"queue": "cnt-b"}})
    assert done["data"]["retryDeadLetters"]["count"] == n
    _, dev = await auth.create_key(deps, "developer", "dev")
    assert code(await gql(admin, q, {"f": {}}, key=dev)) == "FORBIDDEN"


async def test_job_reads_mask_secrets_like_rest(admin: httpx.AsyncClient, deps: Deps) -> None:
    r = await jobs.submit(deps, JobSpec("mq", "t", {"user": "ann", "password": "hunter2",
                                                    "nested": {"api_key": "k-123"}},
                                        max_attempts=2))
    (cl,) = await jobs.claim(deps, "w", ["mq"], 1)
    await jobs.fail(deps, [Outcome(cl.id, cl.token, False, error="login failed token=abc123",
                                   error_type="Auth")], [cl.attempt])
    body = await gql(admin, "query($id: ID!) { job(id: $id) { payload error "
                            "attemptHistory { error } } }", {"id": str(r.submitted.id)})
    job = body["data"]["job"]
    assert job["payload"] == {"user": "ann", "password": "***", "nested": {"api_key": "***"}}
    assert "abc123" not in job["error"]
    assert all("abc123" not in (a["error"] or "") for a in job["attemptHistory"])
    listed = await gql(admin, '{ jobs(filter: {queue: "mq"}) { edges { node { payload } } } }')
    assert listed["data"]["jobs"]["edges"][0]["node"]["payload"]["password"] == "***"
    rest = (await admin.get(f"/api/v1/jobs/{r.submitted.id}")).json()
    assert rest["payload"] == job["payload"]


async def test_recent_batches_newest_first_with_progress(admin: httpx.AsyncClient) -> None:
    made = []
    for name in ("first", "second"):
        b = await gql(admin, 'mutation($n: String!) { createBatch(name: $n, jobs: '
                             '[{queue: "bq", jobType: "t"}, {queue: "bq", jobType: "t"}]) { id } }',
                      {"n": name})
        made.append(b["data"]["createBatch"]["id"])
    got = await gql(admin, "{ recentBatches(first: 2) { id name total pending completed } }")
    assert [b["id"] for b in got["data"]["recentBatches"]] == made[::-1]
    assert got["data"]["recentBatches"][0]["total"] == 2
    assert got["data"]["recentBatches"][0]["pending"] == 2
    assert code(await gql(admin, "{ recentBatches(first: 0) { id } }")) == "BAD_USER_INPUT"
