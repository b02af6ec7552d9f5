"""Where a worker supervisor reads its group: the stores directly, or the API (``--remote``)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx

from jobline.shared.fleet import groups
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps, connect


class DirectControl:
    """PostgreSQL: the group row, LISTEN for its changes (one connection held for it)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._deps: Deps | None = None
        self._listen: Any = None
        self._changed = asyncio.Event()

    async def _ensure(self) -> Deps:
        if self._deps is None:
            self._deps = await connect(self.settings, pool_size=2)
        if self._listen is None:
            conn = await self._deps.pool.acquire()
            await conn.add_listener(groups.NOTIFY_CHANNEL, self._notified)
            self._listen = conn
        return self._deps

    def _notified(self, *_: Any) -> None:
        self._changed.set()

    async def open(self, group: str, initial: int) -> int:
        deps = await self._ensure()
        return (await groups.ensure_group(deps, group, initial, by="supervisor")).desired

    async def desired(self, group: str) -> int:
        deps = await self._ensure()
        g = await groups.get_group(deps, group)
        if g is None:  # deleted meanwhile: recreate it at what we run
            return await self.open(group, 1)
        return g.desired

    async def wait_change(self, timeout: float) -> None:
        await self._ensure()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)
        self._changed.clear()

    async def crashed(self, group: str, worker_id: str, code: int | None, detail: str) -> None:
        await groups.record_crash(await self._ensure(), worker_id, group, code, detail)

    async def stopped_on_request(self, group: str) -> int:
        g = await groups.set_desired(await self._ensure(), group, step=-1, by="supervisor")
        return g.desired

    async def aclose(self) -> None:
        if self._deps is not None:
            if self._listen is not None:
                with contextlib.suppress(Exception):
                    await self._listen.remove_listener(groups.NOTIFY_CHANNEL, self._notified)
                    await self._deps.pool.release(self._listen)
            await self._deps.close(timeout=5)


class RemoteControl:
    """The API (``/api/v1/worker/group``), for supervisors of remote workers."""

    def __init__(self, base_url: str, api_key: str | None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        headers = {"X-Api-Key": api_key} if api_key else {}
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers,
                                       timeout=10.0, transport=transport)

    async def _post(self, body: dict[str, Any]) -> int:
        r = await self._http.post("/api/v1/worker/group", json=body)
        r.raise_for_status()
        return int(r.json()["desired"])

    async def open(self, group: str, initial: int) -> int:
        return await self._post({"group": group, "initial": initial})

    async def desired(self, group: str) -> int:
        return await self._post({"group": group})

    async def wait_change(self, timeout: float) -> None:
        await asyncio.sleep(timeout)  # no push over HTTP: re-read every RESYNC_S

    async def crashed(self, group: str, worker_id: str, code: int | None, detail: str) -> None:
        await self._post({"group": group, "crashed": {"workerId": worker_id, "exitCode": code,
                                                      "detail": detail}})

    async def stopped_on_request(self, group: str) -> int:
        return await self._post({"group": group, "step": -1})

    async def aclose(self) -> None:
        await self._http.aclose()
