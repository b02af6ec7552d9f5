"""``/api/v1/audit`` (the audit log, keyset-paged) and ``/api/v1/events/lag`` (how far the
outbox and each consumer group are behind)."""

from __future__ import annotations

import uuid
from datetime import datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from jobline.analytics.consumer import KINDS
from jobline.api.context import ApiContext, ctx, read
from jobline.api.docs import TIME, UUID, Op, Resp, cursor, documented, query
from jobline.api.errors import JSONResponse, endpoint
from jobline.shared.events import audit
from jobline.shared.events import outbox as core
from jobline.shared.events.bus import EventBus
from jobline.shared.events.buses import create_bus
from jobline.shared.events.outbox import EVENT_TYPES
from jobline.shared.platform.errors import ValidationFailed
from jobline.shared.security.masking import mask, mask_text

#: docs/events.md has the envelope.
ENVELOPE = {"type": "object", "description": "event envelope v1 (docs/events.md)"}
_ALLOWED = {"jobId", "type", "from", "to", "limit", "cursor"}


def _time_ms(name: str, raw: str | None) -> int | None:
    """Epoch milliseconds or an ISO-8601 time with a zone."""
    if raw is None or raw == "":
        return None
    if raw.lstrip("-").isdigit():
        return int(raw)
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(name, "must be epoch milliseconds or an ISO-8601 time") from None
    if dt.tzinfo is None:
        raise ValidationFailed(name, "ISO-8601 time needs a zone (e.g. Z)")
    return int(dt.timestamp() * 1000)


@documented(Op(
    "listAuditEvents", "Audit log, newest first", params=(
        query("jobId", UUID, "events of one job"),
        query("type", {"type": "string", "enum": list(EVENT_TYPES)}, "event type"),
        query("from", TIME, "event time >= from"), query("to", TIME, "event time < to"),
        query("limit", {"type": "integer", "minimum": 1}, "page size (default 100)"),
        cursor(schema={"type": "string"})),
    responses={200: Resp("A page", {"type": "object", "properties": {
        "events": {"type": "array", "items": ENVELOPE},
        "nextCursor": {"type": ["string", "null"]}}})}, errors=(400, 422, 503)))
@endpoint
async def list_audit(request: Request) -> Response:
    q = request.query_params
    for k in q:
        if k not in _ALLOWED:
            raise ValidationFailed(k, "unknown query parameter")
    job_id = None
    if q.get("jobId"):
        try:
            job_id = uuid.UUID(q["jobId"])
        except ValueError:
            raise ValidationFailed("jobId", "must be a UUID") from None
    limit = 100
    if q.get("limit"):
        if not q["limit"].isdigit():
            raise ValidationFailed("limit", "must be an integer")
        limit = int(q["limit"])
    keys = ctx(request).settings.mask_keys
    frm, to = _time_ms("from", q.get("from")), _time_ms("to", q.get("to"))
    page = await read(request, lambda deps: audit.query(
        deps, job_id=job_id, type_=q.get("type") or None, from_ms=frm, to_ms=to, limit=limit,
        cursor=q.get("cursor") or None))
    # Stored masked with the default patterns (outbox triggers, events.emit); masked again with
    # this deployment's JOBLINE_MASK_KEYS, which may name more.
    events = [{**mask(e, keys), "error": mask_text(e.get("error"), keys)} if "error" in e
              else mask(e, keys) for e in page.events]
    return JSONResponse({"events": events, "nextCursor": page.next_cursor})


async def bus_of(app: Starlette) -> EventBus:
    """The app's one event bus, created on first use (also handed to the GraphQL mount)."""
    bus: EventBus | None = getattr(app.state, "event_bus", None)
    if bus is None:
        context: ApiContext = app.state.jobline
        bus = await create_bus(context.settings)
        app.state.event_bus = bus
    return bus


async def close(app: Starlette) -> None:
    bus: EventBus | None = getattr(app.state, "event_bus", None)
    if bus is not None:
        app.state.event_bus = None
        await bus.close()


@documented(Op(
    "eventsLag", "Outbox backlog and consumer lag per group", responses={200: Resp("Lag", {
        "type": "object", "properties": {
            "backend": {"type": "string", "enum": ["redis", "kafka"]},
            "outbox": {"type": "object"},
            "groups": {"type": "array", "items": {"type": "object"}}}})}, errors=(503,)))
@endpoint
async def events_lag(request: Request) -> Response:
    deps = ctx(request).require_deps()
    return JSONResponse(await core.lag(deps, await bus_of(request.app), KINDS))


routes = [
    Route("/api/v1/audit", list_audit, methods=["GET"], name="audit"),
    Route("/api/v1/events/lag", events_lag, methods=["GET"], name="events_lag"),
]
