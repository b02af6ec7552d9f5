"""The API serves the built dashboard at ``/``: client-side routes fall back to index.html, the
API's own paths are unaffected, and the committed build matches ``frontend/``'s sources."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from jobline.api.app import create_app
from jobline.api.dashboard import DIST
from jobline.shared.platform.connections import Deps
from jobline.testing import serve_app

FRONTEND = Path(__file__).resolve().parent.parent / "frontend"
# Same list and hash as frontend/scripts/build-info.mjs.
ROOTS = ["src", "public", "index.html", "package-lock.json", "vite.config.ts", "tsconfig.json"]


def source_hash() -> str:
    files: list[str] = []
    for root in ROOTS:
        p = FRONTEND / root
        files += ([f.relative_to(FRONTEND).as_posix() for f in p.rglob("*") if f.is_file()]
                  if p.is_dir() else [root])
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f.encode() + b"\0")
        h.update((FRONTEND / f).read_bytes())
        h.update(b"\0")
    return h.hexdigest()


@pytest.fixture
async def anon(deps: Deps) -> AsyncIterator[httpx.AsyncClient]:
    async for c in serve_app(create_app(deps.settings, deps=deps), role=None):
        yield c


def test_committed_build_matches_the_sources() -> None:
    info = json.loads((DIST / "build-info.json").read_text())
    assert info["sourceHash"] == source_hash(), (
        "jobline/api/dashboard_dist is older than frontend/: cd frontend && npm run build")


async def test_root_and_client_routes_serve_index(anon: httpx.AsyncClient) -> None:
    for path in ("/", "/queues", "/jobs/0193a1b2-0000-7000-8000-000000000000", "/dead-letters"):
        r = await anon.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html")
        assert '<div id="root">' in r.text
        assert r.headers["cache-control"] == "no-cache"


async def test_assets_are_served_and_cached(anon: httpx.AsyncClient) -> None:
    index = (await anon.get("/")).text
    script = index.split('src="', 2)[1].split('"', 1)[0]
    assert script.startswith("/assets/")
    r = await anon.get(script)
    assert r.status_code == 200
    assert "javascript" in r.headers["content-type"]
    assert "immutable" in r.headers["cache-control"]
    assert (await anon.get("/assets/missing-file.js")).status_code == 404


async def test_api_paths_are_unaffected(anon: httpx.AsyncClient) -> None:
    assert (await anon.get("/api/v1/queues")).status_code == 401  # still needs a key
    assert (await anon.get("/healthz")).status_code == 200
    unknown = await anon.get("/api/v1/no-such-route")
    assert unknown.status_code in (401, 404)  # auth fails closed first; never the dashboard
    assert "text/html" not in unknown.headers.get("content-type", "")
    assert (await anon.post("/graphql", json={"query": "{ viewer { role } }"})).status_code == 401
    r = await anon.get("/api")
    assert r.status_code == 404 and "text/html" not in r.headers["content-type"]


async def test_api_404_and_405_are_the_routers_own(admin: httpx.AsyncClient) -> None:
    # the catch-all must not answer for API paths: a wrong method stays 405, a bad id 404
    assert (await admin.delete("/api/v1/jobs/not-a-uuid")).status_code == 404
    assert (await admin.put("/api/v1/jobs")).status_code == 405
    assert (await admin.get("/api/v1/no-such-route")).status_code == 404


async def test_no_file_outside_the_build_is_served(anon: httpx.AsyncClient) -> None:
    for path in ("/..%2f..%2fpyproject.toml", "/assets/..%2f..%2fapp.py", "/%2e%2e/app.py"):
        r = await anon.get(path)
        assert "[project]" not in r.text and "create_app" not in r.text, path
