"""Alerting over REST (docs/alerts.md): ``/api/v1/alert-rules``, ``/api/v1/alert-channels``,
``/api/v1/alert-silences``, the history ``/api/v1/alerts`` with per-alert delivery records, and
acknowledgement. Rule, channel and silence writes are admin-only (:mod:`jobline.api.auth`);
reads and acknowledging need a developer key. Channel secrets are masked in every response.

Thin shells over :mod:`jobline.analytics.alerting.store`: validate, one core operation,
serialise.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response

from jobline.analytics.alerting import store
from jobline.analytics.alerting.model import (
    ChannelIn,
    ChannelPatchIn,
    RuleIn,
    RulePatchIn,
    SilenceIn,
)
from jobline.api.body import parse_json, read_body
from jobline.api.context import ctx
from jobline.api.docs import UUID, Op, Resp, cursor, documented, query
from jobline.api.errors import JSONResponse, by_method, endpoint
from jobline.api.schemas import _Out
from jobline.shared.platform.clock import from_dt
from jobline.shared.platform.errors import ValidationFailed

_BODY = 65_536


# --- response models (the OpenAPI document; tests validate responses against them) ----------


class ConditionOut(_Out):
    metric: str
    op: str
    threshold: float
    window_s: int
    target_ms: int | None
    min_samples: int


class ScopeOut(_Out):
    queue: str | None
    job_type: str | None


class AlertRuleOut(_Out):
    id: uuid.UUID
    name: str
    #: Set for the rules Jobline ships (``dead_letters``): they can be disabled, not deleted.
    builtin: str | None
    condition: ConditionOut
    description: str
    scope: ScopeOut
    for_s: int
    severity: Literal["info", "warning", "critical"]
    channel_ids: list[uuid.UUID]
    renotify_s: int
    enabled: bool
    state: Literal["ok", "pending", "firing"]
    state_since: datetime | None
    last_value: float | None
    last_evaluated_at: datetime | None
    next_evaluation_at: datetime | None
    evaluations: int
    alert_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class AlertRuleListOut(_Out):
    rules: list[AlertRuleOut]


class AlertChannelOut(_Out):
    id: uuid.UUID
    name: str
    kind: Literal["email", "slack", "webhook"]
    #: The kind's settings with every secret masked (``***``).
    config: dict[str, Any]
    enabled: bool
    created_at: datetime
    updated_at: datetime


class AlertChannelListOut(_Out):
    channels: list[AlertChannelOut]


class DeliveryOut(_Out):
    id: uuid.UUID
    alert_id: uuid.UUID | None
    channel_id: uuid.UUID
    channel_name: str
    kind: str
    recipient: int
    event: Literal["firing", "resolved", "renotify", "test"]
    status: Literal["queued", "retrying", "sent", "failed"]
    attempts: int
    error: str | None
    job_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


class DeliveryListOut(_Out):
    deliveries: list[DeliveryOut]


class AlertOut(_Out):
    id: uuid.UUID
    rule_id: uuid.UUID
    rule_name: str
    severity: str
    status: Literal["pending", "firing", "resolved", "cancelled"]
    scope: ScopeOut
    value: float | None
    peak_value: float | None
    summary: str
    details: dict[str, Any]
    started_at: datetime
    fired_at: datetime | None
    resolved_at: datetime | None
    last_notified_at: datetime | None
    silenced: bool
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    deliveries: list[DeliveryOut] | None = None


class AlertListOut(_Out):
    alerts: list[AlertOut]
    next_cursor: str | None
    #: How many alerts are firing right now (all of them, not only this page's).
    firing: int


class SilenceOut(_Out):
    id: uuid.UUID
    rule_id: uuid.UUID | None
    queue: str | None
    job_type: str | None
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str | None
    created_at: datetime
    active: bool


class SilenceListOut(_Out):
    silences: list[SilenceOut]


def _id(request: Request, name: str, what: str) -> uuid.UUID:
    return store.parse_uuid(request.path_params[name], what)


async def _body(request: Request) -> Any:
    return parse_json(await read_body(request, _BODY))


def _who(request: Request) -> str | None:
    p = request.scope.get("state", {}).get("principal")
    return getattr(p, "name", None)


# --- rules ---------------------------------------------------------------------------------------


@documented(Op("createAlertRule", "Create an alert rule (admin)", body=RuleIn,
                responses={201: Resp("Created", AlertRuleOut)}, errors=(400, 413, 422, 503)))
@endpoint
async def create_rule(request: Request) -> Response:
    body = store.validate(RuleIn, await _body(request))
    r = await store.create_rule(ctx(request).require_deps(), body)
    return JSONResponse(store.rule_json(r), status_code=201)


@documented(Op("listAlertRules", "Every alert rule with its evaluation state",
                responses={200: Resp("Rules", AlertRuleListOut)}, errors=(503,)))
@endpoint
async def list_rules(request: Request) -> Response:
    rules = await store.list_rules(ctx(request).require_deps())
    return JSONResponse({"rules": [store.rule_json(r) for r in rules]})


@documented(Op("getAlertRule", "One alert rule", responses={200: Resp("The rule", AlertRuleOut)},
                errors=(404, 503)))
@endpoint
async def get_rule(request: Request) -> Response:
    r = await store.get_rule(ctx(request).require_deps(), _id(request, "ruleId", "alert rule"))
    return JSONResponse(store.rule_json(r))


@documented(Op("updateAlertRule", "Change some fields of an alert rule (admin)",
                body=RulePatchIn, responses={200: Resp("Changed", AlertRuleOut)},
                errors=(400, 404, 413, 422, 503)))
@endpoint
async def patch_rule(request: Request) -> Response:
    rule_id = _id(request, "ruleId", "alert rule")
    body = store.validate(RulePatchIn, await _body(request))
    r = await store.update_rule(ctx(request).require_deps(), rule_id, body)
    return JSONResponse(store.rule_json(r))


@documented(Op("deleteAlertRule", "Delete an alert rule (admin); its alerts stay in the history",
                responses={204: Resp("Deleted")}, errors=(404, 409, 503)))
@endpoint
async def delete_rule(request: Request) -> Response:
    await store.delete_rule(ctx(request).require_deps(), _id(request, "ruleId", "alert rule"))
    return Response(status_code=204)


# --- channels --------------------------------------------------------------------------------


@documented(Op("createAlertChannel", "Create a notification channel (admin)", body=ChannelIn,
                responses={201: Resp("Created (secrets masked)", AlertChannelOut)},
                errors=(400, 413, 422, 503)))
@endpoint
async def create_channel(request: Request) -> Response:
    body = store.validate(ChannelIn, await _body(request))
    c = await store.create_channel(ctx(request).require_deps(), body)
    return JSONResponse(store.channel_json(c), status_code=201)


@documented(Op("listAlertChannels", "Every notification channel (secrets masked)",
                responses={200: Resp("Channels", AlertChannelListOut)}, errors=(503,)))
@endpoint
async def list_channels(request: Request) -> Response:
    cs = await store.list_channels(ctx(request).require_deps())
    return JSONResponse({"channels": [store.channel_json(c) for c in cs]})


@documented(Op("getAlertChannel", "One channel (secrets masked)",
                responses={200: Resp("The channel", AlertChannelOut)}, errors=(404, 503)))
@endpoint
async def get_channel(request: Request) -> Response:
    c = await store.get_channel(ctx(request).require_deps(),
                                _id(request, "channelId", "alert channel"))
    return JSONResponse(store.channel_json(c))


@documented(Op("updateAlertChannel",
                "Change a channel (admin); a masked secret sent back keeps the stored one",
                body=ChannelPatchIn, responses={200: Resp("Changed", AlertChannelOut)},
                errors=(400, 404, 413, 422, 503)))
@endpoint
async def patch_channel(request: Request) -> Response:
    channel_id = _id(request, "channelId", "alert channel")
    body = store.validate(ChannelPatchIn, await _body(request))
    c = await store.update_channel(ctx(request).require_deps(), channel_id, body)
    return JSONResponse(store.channel_json(c))


@documented(Op("deleteAlertChannel", "Delete a channel (admin); rules stop using it",
                responses={204: Resp("Deleted")}, errors=(404, 503)))
@endpoint
async def delete_channel(request: Request) -> Response:
    await store.delete_channel(ctx(request).require_deps(),
                               _id(request, "channelId", "alert channel"))
    return Response(status_code=204)


@documented(Op("testAlertChannel",
                "Send a test message to every recipient of the channel (admin)",
                responses={202: Resp("Queued; follow each delivery", DeliveryListOut)},
                errors=(404, 503)))
@endpoint
async def test_channel(request: Request) -> Response:
    deps = ctx(request).require_deps()
    ids = await store.send_test(deps, _id(request, "channelId", "alert channel"))
    rows = [await store.get_delivery(deps, i) for i in ids]
    return JSONResponse({"deliveries": [store.delivery_json(r) for r in rows]}, status_code=202)


@documented(Op("getAlertDelivery", "One delivery record (a channel test's progress)",
                responses={200: Resp("The delivery", DeliveryOut)}, errors=(404, 503)))
@endpoint
async def get_delivery(request: Request) -> Response:
    r = await store.get_delivery(ctx(request).require_deps(),
                                 _id(request, "deliveryId", "delivery"))
    return JSONResponse(store.delivery_json(r))


# --- history ---------------------------------------------------------------------------------

_STATUSES = ("pending", "firing", "resolved", "cancelled")


def _time(raw: str | None, name: str) -> int | None:
    if raw is None:
        return None
    if raw.isdigit():
        return int(raw)
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(name, "epoch ms or ISO-8601 with zone") from None
    if dt.tzinfo is None:
        raise ValidationFailed(name, "needs a time zone")
    return from_dt(dt)


@documented(Op(
    "listAlerts", "Alert history, newest first (firing, pending and past alerts)",
    responses={200: Resp("A page of alerts", AlertListOut)}, errors=(400, 422, 503),
    params=(query("status", {"type": "string", "enum": list(_STATUSES)}),
            query("ruleId", UUID), query("queue", {"type": "string", "maxLength": 64}),
            query("severity", {"type": "string", "enum": ["info", "warning", "critical"]}),
            query("since", {"type": "string"}, "started at or after (epoch ms or ISO-8601)"),
            query("until", {"type": "string"}, "started before (epoch ms or ISO-8601)"),
            query("limit", {"type": "integer", "minimum": 1, "maximum": store.MAX_PAGE,
                            "default": 50}),
            query("deliveries", {"type": "boolean"}, "include each alert's delivery records"),
            cursor(schema={"type": "string"}))))
@endpoint
async def list_alerts(request: Request) -> Response:
    q = request.query_params
    deps = ctx(request).require_deps()
    status = q.get("status")
    if status is not None and status not in _STATUSES:
        raise ValidationFailed("status", f"one of {', '.join(_STATUSES)}")
    severity = q.get("severity")
    if severity is not None and severity not in ("info", "warning", "critical"):
        raise ValidationFailed("severity", "one of info, warning, critical")
    rule_id = None
    if q.get("ruleId"):
        try:
            rule_id = uuid.UUID(q["ruleId"])
        except ValueError:
            raise ValidationFailed("ruleId", "must be a UUID") from None
    try:
        limit = int(q.get("limit", "50"))
    except ValueError:
        raise ValidationFailed("limit", "must be an integer") from None
    if not 1 <= limit <= store.MAX_PAGE:
        raise ValidationFailed("limit", f"1-{store.MAX_PAGE}")
    f = store.AlertFilter(status=status, rule_id=rule_id, queue=q.get("queue"),
                          severity=severity, since_ms=_time(q.get("since"), "since"),
                          until_ms=_time(q.get("until"), "until"), limit=limit,
                          before=store.parse_cursor(q["cursor"]) if q.get("cursor") else None)
    rows, nxt = await store.list_alerts(deps, f)
    with_deliveries = q.get("deliveries") in ("1", "true")
    by_alert = await store.deliveries_of(deps, [r["id"] for r in rows]) if with_deliveries \
        else {}
    return JSONResponse({
        "alerts": [store.alert_json(r, [store.delivery_json(d) for d in by_alert[r["id"]]]
                                    if with_deliveries else None) for r in rows],
        "nextCursor": nxt, "firing": await store.firing_count(deps)})


@documented(Op("getAlert", "One alert with its delivery records",
                responses={200: Resp("The alert", AlertOut)}, errors=(404, 503)))
@endpoint
async def get_alert(request: Request) -> Response:
    deps = ctx(request).require_deps()
    alert_id = _id(request, "alertId", "alert")
    r = await store.get_alert(deps, alert_id)
    ds = (await store.deliveries_of(deps, [alert_id]))[alert_id]
    return JSONResponse(store.alert_json(r, [store.delivery_json(d) for d in ds]))


@documented(Op("listAlertDeliveries", "One alert's delivery records (channel, attempt, status, "
                                      "error)",
                responses={200: Resp("Deliveries", DeliveryListOut)}, errors=(404, 503)))
@endpoint
async def alert_deliveries(request: Request) -> Response:
    deps = ctx(request).require_deps()
    alert_id = _id(request, "alertId", "alert")
    await store.get_alert(deps, alert_id)
    ds = (await store.deliveries_of(deps, [alert_id]))[alert_id]
    return JSONResponse({"deliveries": [store.delivery_json(d) for d in ds]})


@documented(Op("acknowledgeAlert",
                "Acknowledge an alert: no more re-notifications of it (resolution still is)",
                responses={200: Resp("Acknowledged", AlertOut)}, errors=(404, 503)))
@endpoint
async def acknowledge(request: Request) -> Response:
    r = await store.acknowledge(ctx(request).require_deps(), _id(request, "alertId", "alert"),
                                _who(request))
    return JSONResponse(store.alert_json(r))


# --- silences --------------------------------------------------------------------------------


@documented(Op("createAlertSilence", "Mute notifications of a rule or scope for a while (admin)",
                body=SilenceIn, responses={201: Resp("Created", SilenceOut)},
                errors=(400, 413, 422, 503)))
@endpoint
async def create_silence(request: Request) -> Response:
    deps = ctx(request).require_deps()
    body = store.validate(SilenceIn, await _body(request))
    s = await store.create_silence(deps, body, _who(request))
    return JSONResponse(store.silence_json(s, deps.clock.now_ms()), status_code=201)


@documented(Op("listAlertSilences", "Silences (active ones, or all with all=true)",
                responses={200: Resp("Silences", SilenceListOut)}, errors=(400, 503),
                params=(query("all", {"type": "boolean"}),)))
@endpoint
async def list_silences(request: Request) -> Response:
    deps = ctx(request).require_deps()
    ss = await store.list_silences(deps, active_only=request.query_params.get("all")
                                   not in ("1", "true"))
    now = deps.clock.now_ms()
    return JSONResponse({"silences": [store.silence_json(s, now) for s in ss]})


@documented(Op("deleteAlertSilence", "End a silence now (admin)",
                responses={204: Resp("Ended")}, errors=(404, 503)))
@endpoint
async def delete_silence(request: Request) -> Response:
    await store.delete_silence(ctx(request).require_deps(),
                               _id(request, "silenceId", "silence"))
    return Response(status_code=204)


routes = [
    by_method("/api/v1/alert-rules", {"POST": create_rule, "GET": list_rules},
              name="alert_rules"),
    by_method("/api/v1/alert-rules/{ruleId}",
              {"GET": get_rule, "PATCH": patch_rule, "DELETE": delete_rule}, name="alert_rule"),
    by_method("/api/v1/alert-channels", {"POST": create_channel, "GET": list_channels},
              name="alert_channels"),
    by_method("/api/v1/alert-channels/{channelId}",
              {"GET": get_channel, "PATCH": patch_channel, "DELETE": delete_channel},
              name="alert_channel"),
    by_method("/api/v1/alert-channels/{channelId}/test", {"POST": test_channel},
              name="alert_channel_test"),
    by_method("/api/v1/alert-deliveries/{deliveryId}", {"GET": get_delivery},
              name="alert_delivery"),
    by_method("/api/v1/alerts", {"GET": list_alerts}, name="alerts"),
    by_method("/api/v1/alerts/{alertId}", {"GET": get_alert}, name="alert"),
    by_method("/api/v1/alerts/{alertId}/deliveries", {"GET": alert_deliveries},
              name="alert_deliveries"),
    by_method("/api/v1/alerts/{alertId}/acknowledge", {"POST": acknowledge},
              name="alert_acknowledge"),
    by_method("/api/v1/alert-silences", {"POST": create_silence, "GET": list_silences},
              name="alert_silences"),
    by_method("/api/v1/alert-silences/{silenceId}", {"DELETE": delete_silence},
              name="alert_silence"),
]
