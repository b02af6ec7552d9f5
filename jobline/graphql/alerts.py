"""Alerting over GraphQL: the same operations as REST (``jobline.api.alerts``) on the same core
(:mod:`jobline.analytics.alerting.store`). Rule/channel/silence inputs mirror the REST bodies
and are validated by the REST request models, so an invalid one is ``BAD_USER_INPUT`` naming the
same field a REST 422 names. Channel configs are masked in every read. :class:`AlertQueries` and
:class:`AlertMutations` are mixed into the ``Query`` and ``Mutation`` roots.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import strawberry
from pydantic.alias_generators import to_camel
from strawberry.scalars import JSON
from strawberry.types import Info

from jobline.analytics.alerting import store
from jobline.analytics.alerting.model import (
    ChannelIn,
    ChannelPatchIn,
    RuleIn,
    RulePatchIn,
    SilenceIn,
)
from jobline.shared.platform.errors import ValidationFailed

from .common import A, D, ctx, parse_id
from .context import Context
from .errors import domain


def _dt(iso: str | None) -> datetime | None:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")) if iso else None


def _id(v: str | None) -> strawberry.ID | None:
    return strawberry.ID(v) if v else None


@strawberry.type
class AlertCondition:
    metric: str
    op: str
    threshold: float
    window_s: int
    target_ms: int | None
    min_samples: int


@strawberry.type
class AlertScope:
    queue: str | None
    job_type: str | None


@strawberry.type
class AlertRule:
    id: strawberry.ID
    name: str
    builtin: str | None
    condition: AlertCondition
    description: str
    scope: AlertScope
    for_s: int
    severity: str
    channel_ids: list[strawberry.ID]
    renotify_s: int
    enabled: bool
    state: str = strawberry.field(description="ok, pending or firing")
    state_since: datetime | None
    last_value: float | None
    last_evaluated_at: datetime | None
    next_evaluation_at: datetime | None
    evaluations: int
    alert_id: strawberry.ID | None

    @staticmethod
    def of(d: dict[str, Any]) -> AlertRule:
        c = d["condition"]
        return AlertRule(
            id=strawberry.ID(d["id"]), name=d["name"], builtin=d["builtin"],
            condition=AlertCondition(metric=c["metric"], op=c["op"], threshold=c["threshold"],
                                     window_s=c["windowS"], target_ms=c["targetMs"],
                                     min_samples=c["minSamples"]),
            description=d["description"],
            scope=AlertScope(queue=d["scope"]["queue"], job_type=d["scope"]["jobType"]),
            for_s=d["forS"], severity=d["severity"],
            channel_ids=[strawberry.ID(i) for i in d["channelIds"]], renotify_s=d["renotifyS"],
            enabled=d["enabled"], state=d["state"], state_since=_dt(d["stateSince"]),
            last_value=d["lastValue"], last_evaluated_at=_dt(d["lastEvaluatedAt"]),
            next_evaluation_at=_dt(d["nextEvaluationAt"]), evaluations=d["evaluations"],
            alert_id=_id(d["alertId"]))


@strawberry.type
class AlertChannel:
    id: strawberry.ID
    name: str
    kind: str
    config: JSON = strawberry.field(description="The kind's settings, secrets masked (***).")
    enabled: bool

    @staticmethod
    def of(d: dict[str, Any]) -> AlertChannel:
        return AlertChannel(id=strawberry.ID(d["id"]), name=d["name"], kind=d["kind"],
                            config=JSON(d["config"]), enabled=d["enabled"])


@strawberry.type
class AlertDelivery:
    id: strawberry.ID
    alert_id: strawberry.ID | None
    channel_id: strawberry.ID
    channel_name: str
    kind: str
    recipient: int
    event: str
    status: str = strawberry.field(description="queued, retrying, sent or failed")
    attempts: int
    error: str | None
    job_id: strawberry.ID | None
    created_at: datetime
    sent_at: datetime | None

    @staticmethod
    def of(d: dict[str, Any]) -> AlertDelivery:
        created = _dt(d["createdAt"])
        assert created is not None
        return AlertDelivery(
            id=strawberry.ID(d["id"]), alert_id=_id(d["alertId"]),
            channel_id=strawberry.ID(d["channelId"]), channel_name=d["channelName"],
            kind=d["kind"], recipient=d["recipient"], event=d["event"], status=d["status"],
            attempts=d["attempts"], error=d["error"], job_id=_id(d["jobId"]),
            created_at=created, sent_at=_dt(d["sentAt"]))


@strawberry.type
class Alert:
    id: strawberry.ID
    rule_id: strawberry.ID
    rule_name: str
    severity: str
    status: str = strawberry.field(description="pending, firing, resolved or cancelled")
    scope: AlertScope
    value: float | None
    peak_value: float | None
    summary: str
    details: JSON
    started_at: datetime
    fired_at: datetime | None
    resolved_at: datetime | None
    silenced: bool
    acknowledged_at: datetime | None
    acknowledged_by: str | None

    @staticmethod
    def of(d: dict[str, Any]) -> Alert:
        started = _dt(d["startedAt"])
        assert started is not None
        return Alert(
            id=strawberry.ID(d["id"]), rule_id=strawberry.ID(d["ruleId"]),
            rule_name=d["ruleName"], severity=d["severity"], status=d["status"],
            scope=AlertScope(queue=d["scope"]["queue"], job_type=d["scope"]["jobType"]),
            value=d["value"], peak_value=d["peakValue"], summary=d["summary"],
            details=JSON(d["details"]), started_at=started, fired_at=_dt(d["firedAt"]),
            resolved_at=_dt(d["resolvedAt"]), silenced=d["silenced"],
            acknowledged_at=_dt(d["acknowledgedAt"]), acknowledged_by=d["acknowledgedBy"])

    @strawberry.field(description="Its notifications: channel, attempt, status, error.")
    @domain
    async def deliveries(self, info: Info[Context, None]) -> list[AlertDelivery]:
        c = ctx(info)
        c.require(D, "read alert deliveries")
        alert_id = uuid.UUID(str(self.id))
        rows = (await store.deliveries_of(c.deps, [alert_id]))[alert_id]
        return [AlertDelivery.of(store.delivery_json(r)) for r in rows]


@strawberry.type
class AlertPage:
    alerts: list[Alert]
    next_cursor: str | None
    firing: int = strawberry.field(description="Alerts firing right now (all, not this page).")


@strawberry.type
class AlertSilence:
    id: strawberry.ID
    rule_id: strawberry.ID | None
    queue: str | None
    job_type: str | None
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str | None
    active: bool

    @staticmethod
    def of(d: dict[str, Any]) -> AlertSilence:
        starts, ends = _dt(d["startsAt"]), _dt(d["endsAt"])
        assert starts is not None and ends is not None
        return AlertSilence(id=strawberry.ID(d["id"]), rule_id=_id(d["ruleId"]),
                            queue=d["queue"], job_type=d["jobType"], starts_at=starts,
                            ends_at=ends, reason=d["reason"], created_by=d["createdBy"],
                            active=d["active"])


_STATUSES = ("pending", "firing", "resolved", "cancelled")


@strawberry.type
class AlertQueries:
    @strawberry.field(description="Alert rules with their evaluation state.")
    @domain
    async def alert_rules(self, info: Info[Context, None]) -> list[AlertRule]:
        c = ctx(info)
        c.require(D, "list alert rules")
        return [AlertRule.of(store.rule_json(r)) for r in await store.list_rules(c.deps)]

    @strawberry.field(description="Notification channels (secrets masked).")
    @domain
    async def alert_channels(self, info: Info[Context, None]) -> list[AlertChannel]:
        c = ctx(info)
        c.require(D, "list alert channels")
        return [AlertChannel.of(store.channel_json(ch))
                for ch in await store.list_channels(c.deps)]

    @strawberry.field(description="Alert history, newest first.")
    @domain
    async def alerts(self, info: Info[Context, None], status: str | None = None,
                     rule_id: strawberry.ID | None = None, queue: str | None = None,
                     severity: str | None = None, first: int = 50,
                     after: str | None = None) -> AlertPage:
        c = ctx(info)
        c.require(D, "read alerts")
        if status is not None and status not in _STATUSES:
            raise ValidationFailed("status", f"one of {', '.join(_STATUSES)}")
        if not 1 <= first <= store.MAX_PAGE:
            raise ValidationFailed("first", f"must be 1-{store.MAX_PAGE}")
        rows, nxt = await store.list_alerts(c.deps, store.AlertFilter(
            status=status, rule_id=parse_id(rule_id, "ruleId") if rule_id else None,
            queue=queue, severity=severity, limit=first,
            before=store.parse_cursor(after) if after else None))
        return AlertPage(alerts=[Alert.of(store.alert_json(r)) for r in rows], next_cursor=nxt,
                         firing=await store.firing_count(c.deps))

    @strawberry.field
    @domain
    async def alert(self, info: Info[Context, None], id: strawberry.ID) -> Alert:
        c = ctx(info)
        c.require(D, "read alerts")
        return Alert.of(store.alert_json(await store.get_alert(c.deps, parse_id(id, "id"))))

    @strawberry.field(description="Silences: active ones, or all with all: true.")
    @domain
    async def alert_silences(self, info: Info[Context, None],
                             all: bool = False) -> list[AlertSilence]:
        c = ctx(info)
        c.require(D, "list silences")
        now = c.deps.clock.now_ms()
        return [AlertSilence.of(store.silence_json(s, now))
                for s in await store.list_silences(c.deps, active_only=not all)]

    @strawberry.field(description="One delivery record (a channel test's progress).")
    @domain
    async def alert_delivery(self, info: Info[Context, None], id: strawberry.ID) -> AlertDelivery:
        c = ctx(info)
        c.require(D, "read alert deliveries")
        return AlertDelivery.of(store.delivery_json(
            await store.get_delivery(c.deps, parse_id(id, "id"))))


def _given(obj: Any) -> dict[str, Any]:
    """The fields a client set, camelCase (validation errors name fields as REST does)."""
    out: dict[str, Any] = {}
    for k, v in vars(obj).items():
        if v is None:
            continue
        if hasattr(v, "__strawberry_definition__"):
            v = _given(v)
        elif isinstance(v, list):
            v = [str(x) for x in v]
        out[to_camel(k)] = v
    return out


@strawberry.input
class AlertConditionInput:
    metric: str | None = None
    op: str | None = None
    threshold: float | None = None
    window_s: int | None = None
    target_ms: int | None = None
    min_samples: int | None = None


@strawberry.input
class AlertScopeInput:
    queue: str | None = None
    job_type: str | None = None


@strawberry.input(description="A rule's fields (REST's body); omitted fields keep their "
                              "value on update, take their default on create.")
class AlertRuleInput:
    name: str | None = None
    condition: AlertConditionInput | None = None
    scope: AlertScopeInput | None = None
    for_s: int | None = None
    severity: str | None = None
    channel_ids: list[strawberry.ID] | None = None
    renotify_s: int | None = None
    enabled: bool | None = None


@strawberry.input
class AlertChannelInput:
    name: str | None = None
    kind: str | None = strawberry.field(default=None, description="email, slack or webhook "
                                                                  "(create only)")
    config: JSON | None = strawberry.field(
        default=None, description="The kind's settings (docs/alerts.md); masked values keep "
                                  "the stored secrets.")
    enabled: bool | None = None


@strawberry.input
class AlertSilenceInput:
    rule_id: strawberry.ID | None = None
    queue: str | None = None
    job_type: str | None = None
    duration_s: int | None = None
    ends_at_ms: float | None = None
    reason: str | None = None


def _silence_body(input: AlertSilenceInput) -> dict[str, Any]:
    body = _given(input)
    if isinstance(body.get("endsAtMs"), float) and body["endsAtMs"].is_integer():
        body["endsAtMs"] = int(body["endsAtMs"])
    return body


@strawberry.type
class AlertMutations:
    @strawberry.mutation(description="Create an alert rule (admin); input as REST's body.")
    @domain
    async def create_alert_rule(self, info: Info[Context, None],
                                input: AlertRuleInput) -> AlertRule:
        c = ctx(info)
        c.require(A, "create alert rules")
        body = store.validate(RuleIn, _given(input))
        return AlertRule.of(store.rule_json(await store.create_rule(c.deps, body)))

    @strawberry.mutation(description="Change some fields of an alert rule (admin).")
    @domain
    async def update_alert_rule(self, info: Info[Context, None], id: strawberry.ID,
                                input: AlertRuleInput) -> AlertRule:
        c = ctx(info)
        c.require(A, "update alert rules")
        body = store.validate(RulePatchIn, _given(input))
        return AlertRule.of(store.rule_json(
            await store.update_rule(c.deps, parse_id(id, "id"), body)))

    @strawberry.mutation(description="Delete an alert rule (admin).")
    @domain
    async def delete_alert_rule(self, info: Info[Context, None], id: strawberry.ID) -> bool:
        c = ctx(info)
        c.require(A, "delete alert rules")
        await store.delete_rule(c.deps, parse_id(id, "id"))
        return True

    @strawberry.mutation(description="Create a notification channel (admin).")
    @domain
    async def create_alert_channel(self, info: Info[Context, None],
                                   input: AlertChannelInput) -> AlertChannel:
        c = ctx(info)
        c.require(A, "create alert channels")
        body = store.validate(ChannelIn, _given(input))
        return AlertChannel.of(store.channel_json(await store.create_channel(c.deps, body)))

    @strawberry.mutation(description="Change a channel (admin); masked secrets sent back are kept.")
    @domain
    async def update_alert_channel(self, info: Info[Context, None], id: strawberry.ID,
                                   input: AlertChannelInput) -> AlertChannel:
        c = ctx(info)
        c.require(A, "update alert channels")
        body = store.validate(ChannelPatchIn, _given(input))
        return AlertChannel.of(store.channel_json(
            await store.update_channel(c.deps, parse_id(id, "id"), body)))

    @strawberry.mutation(description="Delete a channel (admin).")
    @domain
    async def delete_alert_channel(self, info: Info[Context, None], id: strawberry.ID) -> bool:
        c = ctx(info)
        c.require(A, "delete alert channels")
        await store.delete_channel(c.deps, parse_id(id, "id"))
        return True

    @strawberry.mutation(description="Send a test message to each recipient (admin).")
    @domain
    async def test_alert_channel(self, info: Info[Context, None],
                                 id: strawberry.ID) -> list[AlertDelivery]:
        c = ctx(info)
        c.require(A, "test alert channels")
        ids = await store.send_test(c.deps, parse_id(id, "id"))
        return [AlertDelivery.of(store.delivery_json(await store.get_delivery(c.deps, i)))
                for i in ids]

    @strawberry.mutation(description="Acknowledge an alert: no more re-notifications of it.")
    @domain
    async def acknowledge_alert(self, info: Info[Context, None], id: strawberry.ID) -> Alert:
        c = ctx(info)
        p = c.require(D, "acknowledge alerts")
        return Alert.of(store.alert_json(await store.acknowledge(c.deps, parse_id(id, "id"),
                                                                 p.name)))

    @strawberry.mutation(description="Mute notifications of a rule or scope (admin).")
    @domain
    async def create_alert_silence(self, info: Info[Context, None],
                                   input: AlertSilenceInput) -> AlertSilence:
        c = ctx(info)
        p = c.require(A, "create silences")
        body = store.validate(SilenceIn, _silence_body(input))
        s = await store.create_silence(c.deps, body, p.name)
        return AlertSilence.of(store.silence_json(s, c.deps.clock.now_ms()))

    @strawberry.mutation(description="End a silence now (admin).")
    @domain
    async def delete_alert_silence(self, info: Info[Context, None], id: strawberry.ID) -> bool:
        c = ctx(info)
        c.require(A, "delete silences")
        await store.delete_silence(c.deps, parse_id(id, "id"))
        return True
