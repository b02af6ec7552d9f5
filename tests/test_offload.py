"""S3 offload of large payloads/results and SSM configuration, against a real moto server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aws_local import CREDENTIALS, Moto, moto_server

from jobline.shared.core import jobs, offload
from jobline.shared.core.models import JobSpec
from jobline.shared.platform.config import Settings, load
from jobline.shared.platform.connections import Deps, connect
from jobline.shared.platform.ssm import apply_parameters, env_name
from jobline.testing import drain
from jobline.worker.registry import Registry

BUCKET = "jobline-payloads"


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    with moto_server(tmp_path_factory.mktemp("moto")) as m:
        m.client("s3").create_bucket(Bucket=BUCKET)
        yield m


@pytest.fixture
def aws_env(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> Moto:
    for k, v in CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    return moto


@pytest.fixture
def deps_settings(settings: Settings, aws_env: Moto) -> Settings:
    # the default 256 KiB threshold; payloads may be larger than it once they can be offloaded
    s = settings.with_(s3_bucket=BUCKET, s3_endpoint_url=aws_env.endpoint,
                       max_payload_bytes=2 * 1024 * 1024)
    assert s.offload_bytes == 262_144
    return s


def big(n_bytes: int) -> dict[str, Any]:
    return {"blob": "x" * n_bytes}


def objects(moto: Moto) -> dict[str, int]:
    resp = moto.client("s3").list_objects_v2(Bucket=BUCKET)
    return {o["Key"]: o["Size"] for o in resp.get("Contents", [])}


async def test_large_payload_and_result_round_trip_through_s3(
        deps: Deps, http: httpx.AsyncClient, aws_env: Moto) -> None:
    payload = big(300_000)
    r = await http.post("/api/v1/jobs", json={"queue": "big", "jobType": "echo",
                                              "payload": payload})
    assert r.status_code == 201, r.text
    job_id = r.json()["jobId"]
    # Postgres holds a pointer, S3 the bytes
    stored = await deps.pool.fetchval("SELECT payload FROM jobs WHERE id = $1::uuid", job_id)
    assert offload.is_pointer(stored)
    assert stored[offload.POINTER]["key"] == f"payloads/{job_id}.json"
    assert objects(aws_env)[f"payloads/{job_id}.json"] > 300_000

    seen: list[int] = []
    reg = Registry()

    @reg.job("echo", queue="big")
    async def echo(p: dict[str, Any]) -> dict[str, Any]:
        seen.append(len(p["blob"]))  # the worker gets the real payload, not the pointer
        return {"copy": p["blob"] + "y"}

    await drain(deps, reg, queues=["big"])
    assert seen == [300_000]
    stored = await deps.pool.fetchval("SELECT result FROM jobs WHERE id = $1::uuid", job_id)
    assert offload.is_pointer(stored)
    assert any(k.startswith(f"results/{job_id}/") for k in objects(aws_env))
    # the API resolves both, for one job and in lists
    r = await http.get(f"/api/v1/jobs/{job_id}")
    body = r.json()
    assert body["payload"] == payload and body["result"] == {"copy": "x" * 300_000 + "y"}
    listed = (await http.get("/api/v1/jobs", params={"queue": "big"})).json()["jobs"]
    assert listed[0]["payload"] == payload


async def test_small_values_stay_inline(deps: Deps, aws_env: Moto) -> None:
    before = objects(aws_env)
    [sub] = await jobs.submit_many(deps, [JobSpec(queue="small", job_type="t",
                                                  payload=big(1_000))])
    [c] = await jobs.claim(deps, "w", ["small"], 1)
    assert c.payload == big(1_000)
    await jobs.complete(deps, [jobs.Outcome(c.id, c.token, ok=True, result={"ok": 1})])
    row = await deps.pool.fetchrow("SELECT payload, result FROM jobs WHERE id = $1",
                                   sub.submitted.id)
    assert row["payload"] == big(1_000) and row["result"] == {"ok": 1}
    assert objects(aws_env) == before


async def test_remote_claim_gets_the_offloaded_payload(deps: Deps, http: httpx.AsyncClient) -> None:
    await jobs.submit_many(deps, [JobSpec(queue="big", job_type="t", payload=big(400_000))])
    r = await http.post("/api/v1/worker/claim", json={"workerId": "w", "queues": ["big"]})
    [job] = r.json()["jobs"]
    assert len(job["payload"]["blob"]) == 400_000


async def test_offload_is_off_without_a_bucket(settings: Settings) -> None:
    d = await connect(settings.with_(max_payload_bytes=2 * 1024 * 1024))
    try:
        assert not offload.enabled(d.settings)
        [sub] = await jobs.submit_many(d, [JobSpec(queue="q", job_type="t",
                                                   payload=big(300_000))])
        stored = await d.pool.fetchval("SELECT payload FROM jobs WHERE id = $1", sub.submitted.id)
        assert stored == big(300_000)
    finally:
        await d.close()


async def test_s3_down_fails_the_submit_and_stores_nothing(settings: Settings,
                                                           aws_env: Moto) -> None:
    from jobline.shared.platform.errors import Unavailable

    # nothing listens on port 9: the object cannot be written, so no row may reference it
    d = await connect(settings.with_(s3_bucket=BUCKET, s3_endpoint_url="http://127.0.0.1:9",
                                     max_payload_bytes=2 * 1024 * 1024))
    try:
        with pytest.raises(Unavailable):
            await jobs.submit_many(d, [JobSpec(queue="q", job_type="t", payload=big(300_000))])
        assert await d.pool.fetchval("SELECT count(*) FROM jobs") == 0
    finally:
        await d.close()


# --- SSM -----------------------------------------------------------------------------------------


def test_env_name_maps_parameter_paths() -> None:
    assert env_name("/jobline/prod/database-url") == "DATABASE_URL"
    assert env_name("/jobline/prod/config/JOBLINE_LEASE_MS") == "JOBLINE_LEASE_MS"


def test_ssm_parameters_become_settings_and_explicit_env_wins(aws_env: Moto) -> None:
    ssm = aws_env.client("ssm")
    ssm.put_parameter(Name="/jobline/t1/config/JOBLINE_LEASE_MS", Value="4321", Type="String")
    ssm.put_parameter(Name="/jobline/t1/config/redis-url", Value="redis://from-ssm:6379/0",
                      Type="SecureString")
    ssm.put_parameter(Name="/jobline/t1/config/JOBLINE_MAX_ATTEMPTS", Value="7", Type="String")
    env = {"JOBLINE_MAX_ATTEMPTS": "5"}
    applied = apply_parameters("/jobline/t1/config", env, client=aws_env.client("ssm"))
    assert applied == {"JOBLINE_LEASE_MS": "4321", "REDIS_URL": "redis://from-ssm:6379/0"}
    assert env["JOBLINE_MAX_ATTEMPTS"] == "5"


async def test_lambda_cold_start_reads_its_configuration_from_ssm(
        settings: Settings, aws_env: Moto, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The container gets only JOBLINE_SSM_PREFIX; the connection strings come from SSM."""
    from jobline.functions import _runtime, cron_tick

    ssm = aws_env.client("ssm")
    prefix = f"/jobline/{settings.redis_prefix}"
    assert settings.database_url and settings.redis_url
    ssm.put_parameter(Name=f"{prefix}/database-url", Value=settings.database_url,
                      Type="SecureString")
    ssm.put_parameter(Name=f"{prefix}/redis-url", Value=settings.redis_url, Type="SecureString")
    ssm.put_parameter(Name=f"{prefix}/JOBLINE_LEASE_MS", Value="2222", Type="String")
    for k in ("DATABASE_URL", "REDIS_URL", "JOBLINE_LEASE_MS"):
        # set, then delete: monkeypatch then restores these after the SSM loader wrote them
        monkeypatch.setenv(k, "")
        monkeypatch.delenv(k)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env.endpoint)
    monkeypatch.setenv("JOBLINE_SSM_PREFIX", prefix)
    monkeypatch.setenv("JOBLINE_REDIS_PREFIX", settings.redis_prefix)
    monkeypatch.setenv("JOBLINE_HOME", str(tmp_path))
    try:
        event = {"version": "0", "id": "e", "detail-type": "Scheduled Event",
                 "source": "aws.events", "account": "123456789012",
                 "time": "2026-11-28T01:07:00Z", "region": "us-east-1", "resources": [],
                 "detail": {}}
        result = await asyncio.to_thread(cron_tick.handler, event, None)
        assert result["promoted"] == 0
        rt_deps = _runtime.RUNTIME.deps
        assert rt_deps is not None
        assert rt_deps.settings.database_url == settings.database_url
        assert rt_deps.settings.lease_ms == 2222
        assert load().lease_ms == 2222  # now in this process's environment
    finally:
        await asyncio.to_thread(_runtime.RUNTIME.reset)
