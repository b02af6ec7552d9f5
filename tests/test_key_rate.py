"""Request rate per API key: a token bucket in Redis (Lua) shared by all API replicas; 429 with
Retry-After when exceeded; enforced after authentication."""

from __future__ import annotations

import pytest

from jobline.api.app import create_app
from jobline.shared.platform.clock import FakeClock
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect
from jobline.shared.platform.errors import ConfigError
from jobline.shared.security import auth
from jobline.shared.security.key_rate_limit import KeyRate, bucket_key, parse_rate
from jobline.testing import serve_app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def deps_settings(settings: Settings) -> Settings:
    return settings.with_(rate_per_key="3/10s")


def test_parse_rate() -> None:
    assert parse_rate("600/60s") == KeyRate(600, 60_000)
    assert parse_rate("10/s") == KeyRate(10, 1000)
    assert parse_rate("5/2m") == KeyRate(5, 120_000)
    assert parse_rate("100/250ms") == KeyRate(100, 250)
    assert parse_rate("") is None and parse_rate("0/1s") is None
    for bad in ("fast", "10 per second", "-1/1s", "1/0s"):
        with pytest.raises(ConfigError, match="JOBLINE_RATE_PER_KEY"):
            parse_rate(bad)
    with pytest.raises(ConfigError, match="JOBLINE_RATE_PER_KEY"):
        create_app(Settings().with_(rate_per_key="lots"))


async def test_over_the_rate_429_with_retry_after_shared_across_replicas(
        deps: Deps, clock: FakeClock, settings: Settings) -> None:
    # a second "replica": its own connections and app, the same Redis and database
    other = await connect(deps.settings, clock)
    try:
        async for a in serve_app(create_app(deps.settings, deps=deps), role="developer"):
            async for b in serve_app(create_app(other.settings, deps=other), role=None):
                key = a.headers["X-Api-Key"]
                b.headers["X-Api-Key"] = key
                # unauthenticated requests do not spend the key's tokens
                for _ in range(5):
                    assert (await b.get("/api/v1/jobs",
                                        headers={"X-Api-Key": "jl_wrong"})).status_code == 401
                codes = [(await c.get("/api/v1/jobs")).status_code for c in (a, b, a)]
                assert codes == [200, 200, 200]
                refused = await b.get("/api/v1/jobs")
                assert refused.status_code == 429
                assert refused.json()["error"]["code"] == "rate_limited"
                # one token comes back every 10s/3 = 3334 ms
                assert refused.headers["Retry-After"] == "4"
                # a refused POST stores nothing
                n0 = await deps.pool.fetchval("SELECT count(*) FROM jobs")
                post = await a.post("/api/v1/jobs", json={"queue": "q", "jobType": "t"})
                assert post.status_code == 429
                assert await deps.pool.fetchval("SELECT count(*) FROM jobs") == n0
                # another key has its own bucket
                _, key2 = await auth.create_key(deps, "developer", "second")
                assert (await a.get("/api/v1/jobs",
                                    headers={"X-Api-Key": key2})).status_code == 200
                # public probes are not limited
                assert (await a.get("/healthz")).status_code == 200
                clock.advance(3_333)
                assert (await a.get("/api/v1/jobs")).status_code == 429
                clock.advance(1)
                assert (await a.get("/api/v1/jobs")).status_code == 200
                assert (await a.get("/api/v1/jobs")).status_code == 429
                principal = await auth.authenticate(deps, key)
                ttl = await deps.redis.pttl(bucket_key(deps, str(principal.key_id)))
                assert 0 < ttl <= 10_000  # idle buckets expire
    finally:
        await other.close()


async def test_no_limit_by_default(settings: Settings) -> None:
    d = await connect(settings)
    try:
        assert d.settings.rate_per_key == ""
        async for c in serve_app(create_app(d.settings, deps=d)):
            codes = {(await c.get("/api/v1/queues")).status_code for _ in range(30)}
        assert codes == {200}
    finally:
        await d.close()
