"""API keys and roles: every route answers 401 without a valid key and 403 for a role that may
not act; keys are stored hashed, revocable, and managed with `jobline keys`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid

import pytest
from starlette.routing import Route

from jobline.api.app import create_app
from jobline.api.auth import required_role
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps
from jobline.shared.security import auth
from jobline.testing import serve_app


def concrete(path: str) -> str:
    """A request path for a route template: ids become fresh UUIDs, names a word."""
    path = re.sub(r"\{[^}:]+:uuid\}", str(uuid.uuid4()), path)
    return re.sub(r"\{[^}]+\}", "somename", path)


def all_routes(deps: Deps) -> list[tuple[str, str]]:
    app = create_app(deps.settings, deps=deps)
    out = []
    for r in app.routes:
        if isinstance(r, Route):
            for m in sorted((r.methods or set()) - {"HEAD"}):
                out.append((m, r.path))
    return out


async def test_every_route_needs_a_valid_key_and_the_right_role(deps: Deps) -> None:
    routes = all_routes(deps)
    assert len(routes) > 30
    admin_only = 0
    async for anon in serve_app(create_app(deps.settings, deps=deps), role=None):
        _, dev_key = await auth.create_key(deps, "developer", "dev")
        _, revoked = await auth.create_key(deps, "admin", "old")
        await auth.revoke_key(deps, revoked[:11])
        for method, template in routes:
            path = concrete(template)
            needed = required_role(method, path)
            if needed is None:
                assert template in ("/healthz", "/readyz", "/api/v1/openapi.json"), template
                continue
            r = await anon.request(method, path)
            assert r.status_code == 401, (method, template, r.status_code)
            assert r.json()["error"]["code"] == "unauthenticated"
            r = await anon.request(method, path, headers={"X-Api-Key": revoked})
            assert r.status_code == 401, (method, template)
            r = await anon.request(method, path, headers={"Authorization": f"Bearer {dev_key}"})
            if needed == auth.Role.ADMIN:
                admin_only += 1
                assert r.status_code == 403, (method, template, r.status_code)
                assert r.json()["error"]["code"] == "forbidden"
            else:
                assert r.status_code not in (401, 403), (method, template, r.status_code)
    # DLQ, queue controls, audit and lag are admin's
    assert admin_only >= 10


async def test_roles_on_representative_routes(deps: Deps) -> None:
    app = create_app(deps.settings, deps=deps)
    async for dev in serve_app(app, role="developer"):
        r = await dev.post("/api/v1/jobs", json={"jobType": "t", "payload": {}})
        assert r.status_code == 201
        assert (await dev.get(f"/api/v1/jobs/{r.json()['jobId']}")).status_code == 200
        assert (await dev.post("/api/v1/queues/default/pause")).status_code == 403
        assert (await dev.get("/api/v1/admin/dlq")).status_code == 403
    async for admin in serve_app(create_app(deps.settings, deps=deps), role="admin"):
        assert (await admin.post("/api/v1/queues/default/pause")).status_code == 200
        assert (await admin.get("/api/v1/admin/dlq")).status_code == 200


async def test_keys_are_stored_hashed_and_revocation_takes_effect(deps: Deps) -> None:
    info, key = await auth.create_key(deps, "developer", "ci")
    assert key.startswith("jl_") and len(key) > 40
    stored = await deps.pool.fetchrow("SELECT key_hash, prefix FROM api_keys WHERE id = $1", info.id)
    assert stored["key_hash"] == auth.hash_key(key) and key not in stored["key_hash"]
    assert key.startswith(stored["prefix"])
    p = await auth.authenticate(deps, key)
    assert p.role == auth.Role.DEVELOPER and p.may(auth.Role.DEVELOPER)
    assert not p.may(auth.Role.ADMIN)
    await auth.revoke_key(deps, str(info.id))
    with pytest.raises(auth.Unauthenticated):
        await auth.authenticate(deps, key)
    with pytest.raises(auth.Unauthenticated):
        await auth.authenticate(deps, None)
    with pytest.raises(auth.Forbidden):
        auth.authorize(p, auth.Role.ADMIN, "pause queues")


def test_cli_creates_lists_and_revokes_keys(settings: Settings) -> None:
    env = dict(os.environ, DATABASE_URL=settings.database_url or "",
               REDIS_URL=settings.redis_url or "", JOBLINE_REDIS_PREFIX=settings.redis_prefix)

    def run(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "jobline", "keys", *args], env=env,
                              check=True, capture_output=True, text=True, timeout=60).stdout

    out = run("create", "--role", "admin", "--name", "ops")
    key = out.strip().splitlines()[-1]
    assert key.startswith("jl_") and " " not in key
    listing = run("list")
    assert key[:11] in listing and "admin" in listing and "active" in listing
    assert "revoked" in run("revoke", key[:11])
    assert "revoked" in run("list")
