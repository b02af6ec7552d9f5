"""A worker backend over the HTTP API (``jobline worker --remote URL``), for workers that cannot
reach Postgres or Redis (another network, a laptop, a GPU box behind NAT).

Every call maps to one ``/api/v1/worker/*`` request; the server runs the same core operations a
direct worker runs, so fencing, heartbeats and at-least-once hold unchanged. Outcomes are already
batched by the worker's completer, so a busy remote worker sends one request per batch, not per
job. Transport failures surface as :class:`Unavailable`, which the worker loop already rides over
(retry with backoff; leases expire if the outage outlasts them).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from jobline.shared.core import jobs
from jobline.shared.core.job_types import JobTypeDefaults
from jobline.shared.core.jobs import ClaimResult
from jobline.shared.core.models import ClaimedJob, Outcome
from jobline.shared.platform.clock import SYSTEM_CLOCK, Clock
from jobline.shared.platform.config import Settings
from jobline.shared.platform.errors import ConfigError, Unavailable
from jobline.shared.retry.policy import RetryPolicy
from jobline.worker.backend import Recorded, wait_then_claim

#: Header carrying the API key (authentication itself is the API's concern).
API_KEY_HEADER = "X-Api-Key"
#: The server caps a long poll at 20 s; the client's read timeout must outlast it.
_READ_TIMEOUT_S = 30.0


def _policy_json(p: RetryPolicy) -> dict[str, Any]:
    """The API's ``retryPolicy`` object: only the fields the handler sets."""
    return {k: v for k, v in p.to_json().items() if v is not None}


class RemoteBackend:
    interruptible = False

    def __init__(self, base_url: str, *, api_key: str | None = None,
                 settings: Settings | None = None, clock: Clock = SYSTEM_CLOCK,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.settings = settings or Settings()
        self.clock = clock
        headers = {API_KEY_HEADER: api_key} if api_key else {}
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=headers, transport=transport,
            timeout=httpx.Timeout(10.0, read=_READ_TIMEOUT_S),
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=8))
        self._info: dict[str, Any] | None = None
        self._opened = False
        #: The command the last heartbeat answered with; log lines to send with the next one.
        self._command: str | None = None
        self._logs: list[str] = []

    async def _post(self, path: str, body: Mapping[str, Any]) -> Any:
        try:
            resp = await self._http.post(f"/api/v1/worker/{path}", json=body)
        except httpx.TransportError as e:
            raise Unavailable(f"api unreachable: {type(e).__name__}") from None
        if resp.status_code >= 500 or resp.status_code == 429:
            raise Unavailable(f"api answered {resp.status_code}",
                              retry_after_s=int(resp.headers.get("Retry-After", "1") or 1))
        if resp.status_code >= 400:
            # A 4xx is a protocol mismatch or a refused key: retrying will not help.
            raise ConfigError(f"api refused {path}: {resp.status_code} {resp.text[:300]}")
        return resp.json()

    async def open(self) -> None:
        """Learn the server's lease length, so heartbeats come often enough. Call it before
        building the :class:`Worker` (which derives its heartbeat period from it)."""
        if self._opened:
            return
        res = await self._post("heartbeat", {"workerId": "handshake", "leases": []})
        self.settings = self.settings.with_(lease_ms=int(res["leaseMs"]))
        self._opened = True

    async def aclose(self) -> None:
        await self._http.aclose()

    async def known_queues(self) -> list[str]:
        return []  # an empty list asks the server for every queue (it knows them)

    async def claim(self, worker_id: str, queues: Sequence[str], n: int,
                    rotate: int) -> ClaimResult:
        res = await self._post("claim", {"workerId": worker_id, "queues": list(queues) or None,
                                         "n": n, "rotate": rotate})
        jobs = [ClaimedJob(id=uuid.UUID(j["id"]), queue=j["queue"], job_type=j["jobType"],
                           payload=j["payload"], attempt=j["attempt"],
                           max_attempts=j["maxAttempts"], token=j["token"],
                           timeout_ms=j["timeoutMs"], lease_expires_ms=j["leaseExpiresMs"],
                           started_ms=self.clock.now_ms(), backoff=j["backoff"])
                for j in res["jobs"]]
        return ClaimResult(jobs, res["nextDueMs"])

    async def record(self, batch: Sequence[tuple[Outcome, ClaimedJob, RetryPolicy | None]]
                     ) -> Recorded:
        # A failure carries the handler's retry settings (the policy's third level, which only
        # the worker knows); the server applies them below the job's own and the stored policy
        # (docs/retry-policy.md), exactly as for an in-process worker.
        if not batch:
            return Recorded()
        res = await self._post("complete", {"outcomes": [
            {"id": str(o.id), "token": o.token, "status": "ok" if o.ok else "fail",
             "result": o.result, "error": o.error[:4000] if o.error else o.error,
             "errorType": o.error_type, "retryAfterMs": o.retry_after_ms,
             "burnAttempt": o.burn_attempt, "final": o.final, "cancelled": o.cancelled,
             **({"resultTtl": o.result_ttl_s} if o.result_ttl_s is not None else {}),
             **({"retryPolicy": _policy_json(p)} if p is not None and not o.ok else {})}
            for o, _, p in batch]})
        return Recorded(len(res["completed"]), len(res["failed"]),
                        [uuid.UUID(i) for i in res["rejected"]])

    async def heartbeat(self, held: Sequence[tuple[str, uuid.UUID, int]]
                        ) -> jobs.HeartbeatReport:
        logs, self._logs = self._logs, []
        try:
            res = await self._post("heartbeat", {
                "workerId": (self._info or {}).get("id", "anonymous"), "info": self._info,
                "leases": [{"queue": q, "id": str(i), "token": t} for q, i, t in held],
                **({"logs": logs} if logs else {})})
        except Exception:
            self._logs = logs + self._logs
            raise
        self._command = res.get("command")
        return jobs.HeartbeatReport([uuid.UUID(i) for i in res["lost"]],
                                    [uuid.UUID(i) for i in res.get("cancelRequested", [])])

    async def release(self, held: Sequence[tuple[uuid.UUID, int]]) -> int:
        res = await self._post("release", {"leases": [
            {"id": str(i), "token": t} for i, t in held]})
        return len(res["released"])

    async def wait_for_work(self, queues: Sequence[str] | None, timeout_s: float,
                            owner: str) -> None:
        await self._post("wait", {"workerId": owner, "queues": list(queues) if queues else None,
                                  "timeoutMs": int(min(max(timeout_s, 0.0), 20.0) * 1000)})

    async def wait_and_claim(self, worker_id: str, wait_on: Sequence[str] | None,
                             timeout_s: float, queues: Sequence[str], n: int,
                             rotate: int) -> jobs.ClaimResult:
        return await wait_then_claim(self, worker_id, wait_on, timeout_s, queues, n, rotate)

    async def interrupt(self, owner: str) -> None:
        # Nothing to wake on the server: stopping cancels this worker's own long poll.
        return None

    async def register(self, info: Mapping[str, Any], ttl_ms: int) -> None:
        # Sent with the next heartbeat rather than as a request of its own.
        self._info = dict(info)

    async def deregister(self, worker_id: str) -> None:
        # A clean stop: the server deregisters it, so it is not counted as a crash.
        logs, self._logs = self._logs, []
        await self._post("heartbeat", {"workerId": worker_id, "leases": [], "stopped": True,
                                       **({"logs": logs} if logs else {})})

    async def command(self, worker_id: str) -> str | None:
        return self._command

    async def push_logs(self, worker_id: str, lines: Sequence[str]) -> None:
        self._logs = (self._logs + list(lines))[-500:]  # sent with the next heartbeat

    async def job_types(self, published: Sequence[JobTypeDefaults],
                        unhandled: Sequence[str]) -> None:
        await self._post("job-types", {"types": [t.to_json() for t in published],
                                       "unhandled": list(unhandled)})

    async def dependency_results(self, job_id: uuid.UUID) -> dict[str, Any]:
        # The REST reads, so results come as the API shows them (secrets masked by mask_keys).
        out: dict[str, Any] = {}
        job = await self._get(f"/api/v1/jobs/{job_id}")
        for dep in job.get("dependsOn") or ():
            d = await self._get(f"/api/v1/jobs/{dep}")
            if d.get("status") == "completed":
                out[str(dep)] = d.get("result")
        return out

    async def _get(self, path: str) -> Any:
        try:
            resp = await self._http.get(path)
        except httpx.TransportError as e:
            raise Unavailable(f"api unreachable: {type(e).__name__}") from None
        if resp.status_code >= 400:
            raise Unavailable(f"api answered {resp.status_code} for {path}")
        return resp.json()
