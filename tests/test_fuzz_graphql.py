"""schemathesis against the GraphQL endpoint, over real HTTP (uvicorn) on the real stores, with an
admin key: every generated query and mutation is answered without a 5xx and without leaking an
internal error's details. Fixed seed (``derandomize``) and bounded examples for CI."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import schemathesis
import uvicorn
from graphql import IntValueNode, NameNode, ObjectFieldNode, ObjectValueNode, StringValueNode
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from test_fuzz_api import free_port

from jobline.api.app import create_app
from jobline.shared.platform.connections import Deps
from jobline.shared.security.auth import create_key
from jobline.testing import wait_until

EXAMPLES = 8


def _json_objects() -> st.SearchStrategy[ObjectValueNode]:
    """``JSON`` arguments (a payload to predict for): small flat objects of numbers and text."""
    value = st.one_of(st.integers(-10_000, 10_000).map(lambda i: IntValueNode(value=str(i))),
                      st.text(max_size=12).map(lambda t: StringValueNode(value=t)))
    return st.dictionaries(st.from_regex(r"[a-zA-Z]{1,10}", fullmatch=True), value,
                           max_size=4).map(lambda d: ObjectValueNode(fields=tuple(
                               ObjectFieldNode(name=NameNode(value=k), value=v)
                               for k, v in d.items())))


schemathesis.graphql.scalar("JSON", _json_objects())
#: Fragments that would mean a trace or driver detail reached a client.
LEAKS = ("Traceback", "asyncpg", "File \"/", "redis.exceptions")


@dataclass
class Report:
    operations: int = 0
    requests: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    with_errors: int = 0
    failures: list[str] = field(default_factory=list)


def fuzz(url: str, key: str) -> Report:
    headers = {"X-Api-Key": key}
    schema = schemathesis.graphql.from_url(url, headers=headers)
    report = Report()
    for result in schema.get_all_operations():
        op = result.ok()
        report.operations += 1

        @hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None,
                             derandomize=True, phases=[Phase.explicit, Phase.generate],
                             suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def run(case: Any) -> None:
            response = case.call(url=url, headers=headers, timeout=30)
            report.requests += 1
            report.by_status[response.status_code] += 1
            assert response.status_code < 500, (response.status_code, response.text[:500])
            body = response.text
            assert not any(leak in body for leak in LEAKS), body[:1000]
            if '"errors"' in body:
                report.with_errors += 1

        try:
            run()
        except Exception as e:  # report every failing operation at once
            report.failures.append(f"{op.label}: {e!s:.1500}")
    return report


@pytest.mark.timeout(900)  # a fixed example count; a busy machine runs it slower
async def test_graphql_endpoint_never_fails_or_leaks(deps: Deps) -> None:
    _, key = await create_key(deps, "admin", "graphql fuzzer")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        create_app(deps.settings, deps=deps), host="127.0.0.1", port=port, lifespan="on",
        log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return bool(server.started)

    await wait_until(started, message="uvicorn started")
    try:
        report = await asyncio.to_thread(fuzz, f"http://127.0.0.1:{port}/graphql", key)
    finally:
        server.should_exit = True
        await task
    print(f"\nschemathesis GraphQL: {report.operations} operations, {report.requests} requests, "
          f"status codes {dict(sorted(report.by_status.items()))}, "
          f"responses with GraphQL errors {report.with_errors}, failures {len(report.failures)}")
    assert report.failures == [], "\n\n".join(report.failures)
    assert report.operations >= 20
    assert report.by_status[200] > report.operations
