"""The Python client over the REST API, for apps that cannot reach the stores (another network, a
serverless function, a laptop): ``jobline.Client.http(url, api_key)``.

It has the in-process :class:`~jobline.client.Client`'s submission and read methods with the same
names, arguments and return types (``submit`` -> :class:`~jobline.client.SubmittedJob`, ``get``
-> :class:`~jobline.shared.core.models.Job`, ...), so code can switch between the two. Errors
come back as the same exceptions (:class:`ValidationFailed` naming the field, :class:`NotFound`,
:class:`IllegalTransition`, :class:`Unavailable`). Defaults the request omits (queue, attempts,
timeout, retry policy) are the server's: the job-type registry, resolved in SQL.
"""

from __future__ import annotations

import asyncio
import builtins
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx

from jobline.client import SubmittedJob, _job_id, _ms
from jobline.shared.core.jobs import JobPage
from jobline.shared.core.models import PRIORITY_DEFAULT, TERMINAL, Attempt, Job, Status
from jobline.shared.platform.clock import from_dt
from jobline.shared.platform.errors import (
    IllegalTransition,
    JoblineError,
    NotFound,
    Unavailable,
    ValidationFailed,
)
from jobline.worker.registry import parse_duration_ms

Seconds = float | int | timedelta
API_KEY_HEADER = "X-Api-Key"
_WAIT_MIN_S = 0.02
_WAIT_MAX_S = 0.5


def _parse_ms(v: str | None) -> int | None:
    return from_dt(datetime.fromisoformat(v)) if v else None


def job_of(d: Mapping[str, Any]) -> Job:
    """A :class:`Job` from the API's job JSON (``GET /api/v1/jobs/{id}``)."""
    return Job(
        id=uuid.UUID(d["id"]), queue=d["queue"], job_type=d["jobType"], payload=d["payload"],
        status=Status(d["status"]), priority=d["priority"], attempts=d["attempts"],
        max_attempts=d["maxAttempts"], result=d.get("result"), error=d.get("error"),
        error_type=d.get("errorType"), created_ms=_parse_ms(d["createdAt"]) or 0,
        started_ms=_parse_ms(d.get("startedAt")), completed_ms=_parse_ms(d.get("completedAt")),
        scheduled_for_ms=_parse_ms(d.get("scheduledFor")) or 0, timeout_ms=d.get("timeoutMs"),
        idempotency_key=d.get("idempotencyKey"), worker_id=d.get("workerId"),
        depends_on=[uuid.UUID(x) for x in d.get("dependsOn") or ()],
        batch_id=uuid.UUID(d["batchId"]) if d.get("batchId") else None,
        attempts_history=[Attempt(
            attempt=a["attempt"], worker_id=a.get("workerId"),
            started_ms=_parse_ms(a.get("startedAt")) or 0,
            finished_ms=_parse_ms(a.get("finishedAt")) or 0, outcome=a.get("outcome") or "",
            error_type=a.get("errorType"), error=a.get("error"),
            duration_ms=a.get("durationMs")) for a in d.get("attemptHistory") or ()])


def _submitted(d: Mapping[str, Any]) -> SubmittedJob:
    return SubmittedJob(uuid.UUID(d["jobId"]), Status(d["status"]), d.get("queue") or "",
                        d.get("queuePosition"), bool(d.get("duplicate")))


def _raise_for(resp: httpx.Response) -> None:
    """The API's error shape (``{"error": {"code", "message", "field"?}}``) as the exception
    the in-process client raises for the same failure."""
    if resp.status_code < 400:
        return
    try:
        err = resp.json().get("error") or {}
    except ValueError:
        err = {}
    message = str(err.get("message") or resp.text[:300])
    if resp.status_code in (400, 413, 422):
        raise ValidationFailed(str(err.get("field") or "body"), message)
    if resp.status_code == 404:
        raise NotFound(message)
    if resp.status_code == 409:
        raise IllegalTransition("?", "?", message)
    if resp.status_code in (429, 502, 503, 504):
        raise Unavailable(message, retry_after_s=int(resp.headers.get("Retry-After", "1") or 1))
    e = JoblineError(f"api answered {resp.status_code}: {message}")
    raise e


class HttpClient:
    """Submit and inspect jobs over ``/api/v1`` with an API key (developer role)."""

    def __init__(self, base_url: str, api_key: str | None = None, *,
                 transport: httpx.AsyncBaseTransport | None = None,
                 timeout: float = 30.0) -> None:
        headers = {API_KEY_HEADER: api_key} if api_key else {}
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers,
                                       transport=transport, timeout=timeout)

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _req(self, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = await self._http.request(method, f"/api/v1{path}", **kw)
        except httpx.TransportError as e:
            raise Unavailable(f"api unreachable: {type(e).__name__}") from None
        _raise_for(resp)
        return resp.json() if resp.content else None

    # --- submission ------------------------------------------------------------------------

    @staticmethod
    def body(job_type: str, payload: Mapping[str, Any] | None = None, *,
             queue: str | None = None, priority: int = PRIORITY_DEFAULT,
             max_attempts: int | None = None, delay: Seconds | None = None,
             scheduled_for: datetime | None = None, timeout: Seconds | str | None = None,
             idempotency_key: str | None = None, backoff: Mapping[str, Any] | None = None,
             non_retryable: Sequence[str] | None = None,
             depends_on: Sequence[uuid.UUID | str | int] = ()) -> dict[str, Any]:
        """The REST body for :meth:`Client.submit`'s arguments (omitted = the server's default)."""
        timeout_ms = (parse_duration_ms(timeout) if isinstance(timeout, str | int | float)
                      else _ms(timeout))
        out: dict[str, Any] = {"jobType": job_type, "payload": dict(payload or {}),
                               "priority": priority}
        for k, v in (("queue", queue), ("maxAttempts", max_attempts),
                     ("delayMs", _ms(delay)), ("timeoutMs", timeout_ms),
                     ("idempotencyKey", idempotency_key),
                     ("backoff", dict(backoff) if backoff else None),
                     ("nonRetryable", list(non_retryable) if non_retryable is not None else None),
                     ("scheduledFor", scheduled_for.isoformat() if scheduled_for else None)):
            if v is not None:
                out[k] = v
        if depends_on:
            out["dependsOn"] = [d if isinstance(d, int) else str(d) for d in depends_on]
        return out

    async def submit(self, job_type: str, payload: Mapping[str, Any] | None = None,
                     **options: Any) -> SubmittedJob:
        """``POST /api/v1/jobs``; ``options`` as :meth:`Client.submit`."""
        return _submitted(await self._req("POST", "/jobs", json=self.body(
            job_type, payload, **options)))

    async def submit_many(self, items: Sequence[Mapping[str, Any]]) -> list[SubmittedJob]:
        """``POST /api/v1/jobs/bulk``: dicts of :meth:`submit`'s arguments, all or nothing."""
        bodies = []
        for item in items:
            args = dict(item)
            bodies.append(self.body(args.pop("job_type"), args.pop("payload", None), **args))
        res = await self._req("POST", "/jobs/bulk", json={"jobs": bodies})
        return [_submitted(d) for d in res["jobs"]]

    # --- reads and transitions --------------------------------------------------------------

    async def get(self, job_id: uuid.UUID | str) -> Job:
        return job_of(await self._req("GET", f"/jobs/{_job_id(job_id)}"))

    async def list(self, *, queue: str | None = None, status: Status | str | None = None,
                   job_type: str | None = None, page: int = 1, page_size: int = 50,
                   cursor: str | None = None) -> JobPage:
        params: dict[str, Any] = {"page": page, "pageSize": page_size}
        for k, v in (("queue", queue), ("status", str(status) if status else None),
                     ("jobType", job_type), ("cursor", cursor)):
            if v is not None:
                params[k] = v
        res = await self._req("GET", "/jobs", params=params)
        return JobPage([job_of(j) for j in res["jobs"]], res.get("total"), res.get("nextCursor"))

    async def cancel(self, job_id: uuid.UUID | str) -> Status:
        return Status((await self._req("DELETE", f"/jobs/{_job_id(job_id)}"))["status"])

    async def retry(self, job_id: uuid.UUID | str) -> Status:
        return Status((await self._req("POST", f"/jobs/{_job_id(job_id)}/retry"))["status"])

    async def queues(self) -> builtins.list[dict[str, Any]]:
        res: builtins.list[dict[str, Any]] = (await self._req("GET", "/queues"))["queues"]
        return res

    async def job_types(self) -> builtins.list[dict[str, Any]]:
        """The job-type registry (``GET /api/v1/job-types``) as the API's JSON."""
        res: builtins.list[dict[str, Any]] = (await self._req("GET", "/job-types"))["jobTypes"]
        return res

    async def wait(self, job_id: uuid.UUID | str, timeout: float = 30.0) -> Job:
        """Poll until the job is terminal (backoff 20 ms .. 500 ms); :class:`TimeoutError`
        after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = _WAIT_MIN_S
        while True:
            job = await self.get(job_id)
            if job.status in TERMINAL:
                return job
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"job {job_id} still {job.status.value} after {timeout}s")
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, _WAIT_MAX_S)


__all__ = ["HttpClient", "job_of"]
