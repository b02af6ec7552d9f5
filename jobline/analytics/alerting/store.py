"""Rules, channels, silences, alert history and delivery records in PostgreSQL (migration 0020).

Every read of a channel is masked (:func:`channel_json`); the unmasked config is handed only to
the delivery handler (:func:`get_channel` with ``secrets=True``). Times are the injectable
clock's, passed into SQL as arguments.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic

from jobline.analytics.alerting.model import (
    DELIVERY_JOB_TYPE,
    DELIVERY_QUEUE,
    Channel,
    ChannelIn,
    ChannelPatchIn,
    Condition,
    ConditionIn,
    Rule,
    RuleIn,
    RulePatchIn,
    ScopeIn,
    SilenceIn,
    channel_config,
    check_rule,
    masked_config,
)
from jobline.shared.core import jobs
from jobline.shared.core.inputs import validation_failed
from jobline.shared.core.jobs import translate_errors
from jobline.shared.core.models import JobSpec
from jobline.shared.platform.clock import from_dt, to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import JoblineError, NotFound, ValidationFailed
from jobline.shared.platform.ids import uuid7

log = logging.getLogger("jobline.alerts")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Alert history page size bounds.
MAX_PAGE = 500


class Conflict(JoblineError):
    code = "conflict"
    http_status = 409


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def _ms(v: datetime | None) -> int | None:
    return from_dt(v) if v is not None else None


def parse_uuid(raw: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except (ValueError, TypeError):
        raise NotFound(f"{what} {raw} not found") from None


def validate(model: type[pydantic.BaseModel], data: Any, prefix: str = "") -> Any:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as e:
        raise validation_failed(e, prefix) from None


# --- channels ----------------------------------------------------------------------------------

_CH_COLS = "id, name, kind, config, enabled, created_at, updated_at"


def _channel(r: Any) -> Channel:
    return Channel(id=r["id"], name=r["name"], kind=r["kind"], config=r["config"],
                   enabled=r["enabled"], created_ms=from_dt(r["created_at"]),
                   updated_ms=from_dt(r["updated_at"]))


def channel_json(c: Channel) -> dict[str, Any]:
    """The channel as every read shows it: secrets masked."""
    return {"id": str(c.id), "name": c.name, "kind": c.kind,
            "config": masked_config(c.kind, c.config), "enabled": c.enabled,
            "createdAt": iso(c.created_ms), "updatedAt": iso(c.updated_ms)}


@translate_errors
async def create_channel(deps: Deps, body: ChannelIn) -> Channel:
    cfg = channel_config(body.kind, body.config)
    now = deps.clock.now_ms()
    r = await deps.pool.fetchrow(
        f"""INSERT INTO alert_channels (id, name, kind, config, enabled, created_at, updated_at)
            VALUES ($1, $2, $3, $4::jsonb, $5, $6, $6) RETURNING {_CH_COLS}""",
        uuid7(now), body.name, body.kind, cfg, body.enabled, to_dt(now))
    return _channel(r)


@translate_errors
async def list_channels(deps: Deps) -> list[Channel]:
    return [_channel(r) for r in await deps.pool.fetch(
        f"SELECT {_CH_COLS} FROM alert_channels ORDER BY created_at, id")]


@translate_errors
async def get_channel(deps: Deps, channel_id: uuid.UUID) -> Channel:
    r = await deps.pool.fetchrow(f"SELECT {_CH_COLS} FROM alert_channels WHERE id = $1",
                                 channel_id)
    if r is None:
        raise NotFound(f"alert channel {channel_id} not found")
    return _channel(r)


@translate_errors
async def update_channel(deps: Deps, channel_id: uuid.UUID, body: ChannelPatchIn) -> Channel:
    async with deps.pool.acquire() as conn, conn.transaction():
        r = await conn.fetchrow(
            f"SELECT {_CH_COLS} FROM alert_channels WHERE id = $1 FOR UPDATE", channel_id)
        if r is None:
            raise NotFound(f"alert channel {channel_id} not found")
        old = _channel(r)
        cfg = (channel_config(old.kind, body.config, old.config) if body.config is not None
               else old.config)
        r = await conn.fetchrow(
            f"""UPDATE alert_channels SET name = $2, config = $3::jsonb, enabled = $4,
                       updated_at = $5 WHERE id = $1 RETURNING {_CH_COLS}""",
            channel_id, body.name if body.name is not None else old.name, cfg,
            body.enabled if body.enabled is not None else old.enabled,
            to_dt(deps.clock.now_ms()))
    return _channel(r)


@translate_errors
async def delete_channel(deps: Deps, channel_id: uuid.UUID) -> None:
    """Removes it from every rule too; its past delivery records stay (they name it)."""
    async with deps.pool.acquire() as conn, conn.transaction():
        gone = await conn.fetchval("DELETE FROM alert_channels WHERE id = $1 RETURNING id",
                                   channel_id)
        if gone is None:
            raise NotFound(f"alert channel {channel_id} not found")
        await conn.execute(
            "UPDATE alert_rules SET channel_ids = array_remove(channel_ids, $1) "
            "WHERE $1 = ANY(channel_ids)", channel_id)


# --- rules -------------------------------------------------------------------------------------

_RULE_COLS = """id, name, builtin, condition, scope_queue, scope_job_type, for_ms, severity,
       channel_ids, renotify_ms, enabled, created_at, updated_at, state, state_since,
       last_value, last_eval_at, next_eval_at, evaluations, alert_id, memory"""


def rule_of(r: Any) -> Rule:
    return Rule(id=r["id"], name=r["name"], builtin=r["builtin"],
                condition=Condition.from_json(r["condition"]), queue=r["scope_queue"],
                job_type=r["scope_job_type"], for_ms=r["for_ms"], severity=r["severity"],
                channel_ids=list(r["channel_ids"]), renotify_ms=r["renotify_ms"],
                enabled=r["enabled"], created_ms=from_dt(r["created_at"]),
                updated_ms=from_dt(r["updated_at"]), state=r["state"],
                state_since_ms=_ms(r["state_since"]), last_value=r["last_value"],
                last_eval_ms=_ms(r["last_eval_at"]), next_eval_ms=_ms(r["next_eval_at"]),
                evaluations=r["evaluations"], alert_id=r["alert_id"], memory=r["memory"] or {})


def rule_json(r: Rule) -> dict[str, Any]:
    return {"id": str(r.id), "name": r.name, "builtin": r.builtin,
            "condition": r.condition.to_json(), "description": r.condition.describe(),
            "scope": {"queue": r.queue, "jobType": r.job_type}, "forS": r.for_ms // 1000,
            "severity": r.severity, "channelIds": [str(c) for c in r.channel_ids],
            "renotifyS": r.renotify_ms // 1000, "enabled": r.enabled, "state": r.state,
            "stateSince": iso(r.state_since_ms), "lastValue": r.last_value,
            "lastEvaluatedAt": iso(r.last_eval_ms), "nextEvaluationAt": iso(r.next_eval_ms),
            "evaluations": r.evaluations, "alertId": str(r.alert_id) if r.alert_id else None,
            "createdAt": iso(r.created_ms), "updatedAt": iso(r.updated_ms)}


async def _check_channels(conn: Any, ids: Sequence[str]) -> list[uuid.UUID]:
    parsed = [uuid.UUID(i) for i in ids]
    known = {r["id"] for r in await conn.fetch(
        "SELECT id FROM alert_channels WHERE id = ANY($1::uuid[])", parsed)}
    for i, c in enumerate(parsed):
        if c not in known:
            raise ValidationFailed(f"channelIds[{i}]", "no such alert channel")
    return parsed


@translate_errors
async def create_rule(deps: Deps, body: RuleIn) -> Rule:
    check_rule(body, body.condition, body.scope)
    now = deps.clock.now_ms()
    async with deps.pool.acquire() as conn, conn.transaction():
        channels = await _check_channels(conn, body.channel_ids)
        r = await conn.fetchrow(
            f"""INSERT INTO alert_rules (id, name, condition, scope_queue, scope_job_type, for_ms,
                       severity, channel_ids, renotify_ms, enabled, created_at, updated_at,
                       next_eval_at)
                VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7, $8, $9, $10, $11, $11, $11)
                RETURNING {_RULE_COLS}""",
            uuid7(now), body.name, body.condition.model_dump(by_alias=True), body.scope.queue,
            body.scope.job_type, body.for_s * 1000, body.severity, channels,
            body.renotify_s * 1000, body.enabled, to_dt(now))
    return rule_of(r)


@translate_errors
async def list_rules(deps: Deps) -> list[Rule]:
    return [rule_of(r) for r in await deps.pool.fetch(
        f"SELECT {_RULE_COLS} FROM alert_rules ORDER BY builtin IS NULL, created_at, id")]


@translate_errors
async def get_rule(deps: Deps, rule_id: uuid.UUID) -> Rule:
    r = await deps.pool.fetchrow(f"SELECT {_RULE_COLS} FROM alert_rules WHERE id = $1", rule_id)
    if r is None:
        raise NotFound(f"alert rule {rule_id} not found")
    return rule_of(r)


CLOSE_EPISODE = """
UPDATE alerts SET status = CASE WHEN status = 'firing' THEN 'resolved' ELSE 'cancelled' END,
       resolved_at = $2, details = details || $3::jsonb
 WHERE id = $1 AND status IN ('pending', 'firing')
"""


@translate_errors
async def update_rule(deps: Deps, rule_id: uuid.UUID, body: RulePatchIn) -> Rule:
    """Changing what is measured (condition, scope) or disabling the rule closes its open
    episode quietly (no notification: the rule that raised it no longer exists as it was)."""
    now = deps.clock.now_ms()
    async with deps.pool.acquire() as conn, conn.transaction():
        r = await conn.fetchrow(f"SELECT {_RULE_COLS} FROM alert_rules WHERE id = $1 FOR UPDATE",
                                rule_id)
        if r is None:
            raise NotFound(f"alert rule {rule_id} not found")
        old = rule_of(r)
        cond = body.condition or ConditionIn.model_validate(
            {k: v for k, v in old.condition.to_json().items() if v is not None})
        scope = body.scope or ScopeIn(queue=old.queue, job_type=old.job_type)
        check_rule(body, cond, scope)
        channels = (await _check_channels(conn, body.channel_ids)
                    if body.channel_ids is not None else old.channel_ids)
        enabled = body.enabled if body.enabled is not None else old.enabled
        measured_changed = (body.condition is not None and cond.model_dump(by_alias=True)
                            != old.condition.to_json()) or (
            body.scope is not None and (scope.queue, scope.job_type) != (old.queue, old.job_type))
        reset = old.state != "ok" and (measured_changed or not enabled)
        if reset and old.alert_id is not None:
            await conn.execute(CLOSE_EPISODE, old.alert_id, to_dt(now),
                               {"closedBy": "rule changed" if enabled else "rule disabled"})
        r = await conn.fetchrow(
            f"""UPDATE alert_rules
                   SET name = $2, condition = $3::jsonb, scope_queue = $4, scope_job_type = $5,
                       for_ms = $6, severity = $7, channel_ids = $8, renotify_ms = $9,
                       enabled = $10, updated_at = $11,
                       state = CASE WHEN $12 THEN 'ok' ELSE state END,
                       state_since = CASE WHEN $12 THEN $11 ELSE state_since END,
                       alert_id = CASE WHEN $12 THEN NULL ELSE alert_id END,
                       memory = CASE WHEN $13 THEN '{{}}'::jsonb ELSE memory END,
                       next_eval_at = CASE WHEN $10 AND NOT enabled THEN $11 ELSE next_eval_at END
                 WHERE id = $1 RETURNING {_RULE_COLS}""",
            rule_id, body.name or old.name, cond.model_dump(by_alias=True), scope.queue,
            scope.job_type, body.for_s * 1000 if body.for_s is not None else old.for_ms,
            body.severity or old.severity, channels,
            body.renotify_s * 1000 if body.renotify_s is not None else old.renotify_ms,
            enabled, to_dt(now), reset, measured_changed)
    return rule_of(r)


@translate_errors
async def delete_rule(deps: Deps, rule_id: uuid.UUID) -> None:
    """Its alerts stay in the history (closed if open); a built-in rule can only be disabled."""
    async with deps.pool.acquire() as conn, conn.transaction():
        r = await conn.fetchrow("SELECT builtin, alert_id FROM alert_rules WHERE id = $1 "
                                "FOR UPDATE", rule_id)
        if r is None:
            raise NotFound(f"alert rule {rule_id} not found")
        if r["builtin"] is not None:
            raise Conflict(f"alert rule {rule_id} is built in: disable it instead")
        if r["alert_id"] is not None:
            await conn.execute(CLOSE_EPISODE, r["alert_id"], to_dt(deps.clock.now_ms()),
                               {"closedBy": "rule deleted"})
        await conn.execute("DELETE FROM alert_rules WHERE id = $1", rule_id)


# --- silences ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Silence:
    id: uuid.UUID
    rule_id: uuid.UUID | None
    queue: str | None
    job_type: str | None
    starts_ms: int
    ends_ms: int
    reason: str
    created_by: str | None
    created_ms: int

    def matches(self, rule: Rule, now_ms: int) -> bool:
        return (self.starts_ms <= now_ms < self.ends_ms
                and (self.rule_id is None or self.rule_id == rule.id)
                and (self.queue is None or self.queue == rule.queue)
                and (self.job_type is None or self.job_type == rule.job_type))


def silence_json(s: Silence, now_ms: int) -> dict[str, Any]:
    return {"id": str(s.id), "ruleId": str(s.rule_id) if s.rule_id else None,
            "queue": s.queue, "jobType": s.job_type, "startsAt": iso(s.starts_ms),
            "endsAt": iso(s.ends_ms), "reason": s.reason, "createdBy": s.created_by,
            "createdAt": iso(s.created_ms), "active": s.starts_ms <= now_ms < s.ends_ms}


def _silence(r: Any) -> Silence:
    return Silence(id=r["id"], rule_id=r["rule_id"], queue=r["queue"], job_type=r["job_type"],
                   starts_ms=from_dt(r["starts_at"]), ends_ms=from_dt(r["ends_at"]),
                   reason=r["reason"], created_by=r["created_by"],
                   created_ms=from_dt(r["created_at"]))


@translate_errors
async def create_silence(deps: Deps, body: SilenceIn, by: str | None) -> Silence:
    now = deps.clock.now_ms()
    if (body.duration_s is None) == (body.ends_at_ms is None):
        raise ValidationFailed("durationS", "give exactly one of durationS and endsAtMs")
    ends = now + body.duration_s * 1000 if body.duration_s is not None else body.ends_at_ms
    assert ends is not None
    if ends <= now:
        raise ValidationFailed("endsAtMs", "must be in the future")
    rule_id = uuid.UUID(body.rule_id) if body.rule_id else None
    if rule_id is not None and await deps.pool.fetchval(
            "SELECT 1 FROM alert_rules WHERE id = $1", rule_id) is None:
        raise ValidationFailed("ruleId", "no such alert rule")
    r = await deps.pool.fetchrow(
        """INSERT INTO alert_silences (id, rule_id, queue, job_type, starts_at, ends_at, reason,
                                       created_by, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $5) RETURNING *""",
        uuid7(now), rule_id, body.queue, body.job_type, to_dt(now), to_dt(ends), body.reason,
        by)
    return _silence(r)


@translate_errors
async def list_silences(deps: Deps, *, active_only: bool = False) -> list[Silence]:
    now = deps.clock.now_ms()
    rows = await deps.pool.fetch(
        "SELECT * FROM alert_silences WHERE NOT $1 OR ends_at > $2 ORDER BY created_at DESC",
        active_only, to_dt(now))
    return [_silence(r) for r in rows]


async def active_silences(conn: Any, now_ms: int) -> list[Silence]:
    rows = await conn.fetch("SELECT * FROM alert_silences WHERE starts_at <= $1 AND ends_at > $1",
                            to_dt(now_ms))
    return [_silence(r) for r in rows]


@translate_errors
async def delete_silence(deps: Deps, silence_id: uuid.UUID) -> None:
    """Ends it (the row is kept until it expires, as a record of who muted what)."""
    if await deps.pool.fetchval("DELETE FROM alert_silences WHERE id = $1 RETURNING id",
                                silence_id) is None:
        raise NotFound(f"silence {silence_id} not found")


# --- alert history -----------------------------------------------------------------------------

_ALERT_COLS = """id, rule_id, rule_name, severity, status, scope_queue, scope_job_type, value,
       peak_value, summary, details, started_at, fired_at, resolved_at, last_notified_at,
       silenced, acknowledged_at, acknowledged_by"""


def alert_json(r: Any, deliveries: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out = {"id": str(r["id"]), "ruleId": str(r["rule_id"]), "ruleName": r["rule_name"],
           "severity": r["severity"], "status": r["status"],
           "scope": {"queue": r["scope_queue"], "jobType": r["scope_job_type"]},
           "value": r["value"], "peakValue": r["peak_value"], "summary": r["summary"],
           "details": r["details"], "startedAt": iso(_ms(r["started_at"])),
           "firedAt": iso(_ms(r["fired_at"])), "resolvedAt": iso(_ms(r["resolved_at"])),
           "lastNotifiedAt": iso(_ms(r["last_notified_at"])), "silenced": r["silenced"],
           "acknowledgedAt": iso(_ms(r["acknowledged_at"])),
           "acknowledgedBy": r["acknowledged_by"]}
    if deliveries is not None:
        out["deliveries"] = deliveries
    return out


@dataclass(frozen=True, slots=True)
class AlertFilter:
    status: str | None = None
    rule_id: uuid.UUID | None = None
    queue: str | None = None
    severity: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    limit: int = 50
    #: Keyset cursor: alerts started before this (started_at ms, id) pair.
    before: tuple[int, uuid.UUID] | None = None


LIST_ALERTS = f"""
SELECT {_ALERT_COLS} FROM alerts
 WHERE ($1::text IS NULL OR status = $1)
   AND ($2::uuid IS NULL OR rule_id = $2)
   AND ($3::text IS NULL OR scope_queue = $3)
   AND ($4::text IS NULL OR severity = $4)
   AND ($5::timestamptz IS NULL OR started_at >= $5)
   AND ($6::timestamptz IS NULL OR started_at < $6)
   AND ($7::timestamptz IS NULL OR (started_at, id) < ($7, $8::uuid))
 ORDER BY started_at DESC, id DESC
 LIMIT $9
"""


@translate_errors
async def list_alerts(deps: Deps, f: AlertFilter) -> tuple[list[Any], str | None]:
    """Newest first; returns the rows and the next page's cursor (None: last page)."""
    limit = max(1, min(f.limit, MAX_PAGE))
    rows = await deps.pool.fetch(
        LIST_ALERTS, f.status, f.rule_id, f.queue, f.severity,
        to_dt(f.since_ms) if f.since_ms is not None else None,
        to_dt(f.until_ms) if f.until_ms is not None else None,
        to_dt(f.before[0]) if f.before else None, f.before[1] if f.before else None,
        limit + 1)
    cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        cursor = f"{from_dt(last['started_at'])}_{last['id']}"
    return list(rows), cursor


def parse_cursor(raw: str) -> tuple[int, uuid.UUID]:
    try:
        ms, _, rid = raw.partition("_")
        return int(ms), uuid.UUID(rid)
    except ValueError:
        raise ValidationFailed("cursor", "malformed cursor") from None


@translate_errors
async def get_alert(deps: Deps, alert_id: uuid.UUID) -> Any:
    r = await deps.pool.fetchrow(f"SELECT {_ALERT_COLS} FROM alerts WHERE id = $1", alert_id)
    if r is None:
        raise NotFound(f"alert {alert_id} not found")
    return r


def delivery_json(r: Any) -> dict[str, Any]:
    return {"id": str(r["id"]), "alertId": str(r["alert_id"]) if r["alert_id"] else None,
            "channelId": str(r["channel_id"]), "channelName": r["channel_name"],
            "kind": r["kind"], "recipient": r["recipient"], "event": r["event"],
            "status": r["status"], "attempts": r["attempts"], "error": r["last_error"],
            "jobId": str(r["job_id"]) if r["job_id"] else None,
            "createdAt": iso(_ms(r["created_at"])), "updatedAt": iso(_ms(r["updated_at"])),
            "sentAt": iso(_ms(r["sent_at"]))}


_DELIVERY_COLS = """id, alert_id, channel_id, channel_name, kind, recipient, event, status,
       attempts, last_error, job_id, created_at, updated_at, sent_at"""


@translate_errors
async def deliveries_of(deps: Deps, alert_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
    out: dict[uuid.UUID, list[Any]] = {a: [] for a in alert_ids}
    for r in await deps.pool.fetch(
            f"SELECT {_DELIVERY_COLS} FROM alert_deliveries WHERE alert_id = ANY($1::uuid[]) "
            "ORDER BY created_at, id", list(alert_ids)):
        out[r["alert_id"]].append(r)
    return out


@translate_errors
async def get_delivery(deps: Deps, delivery_id: uuid.UUID) -> Any:
    r = await deps.pool.fetchrow(f"SELECT {_DELIVERY_COLS} FROM alert_deliveries WHERE id = $1",
                                 delivery_id)
    if r is None:
        raise NotFound(f"delivery {delivery_id} not found")
    return r


@translate_errors
async def acknowledge(deps: Deps, alert_id: uuid.UUID, by: str | None) -> Any:
    """Stops re-notification of this episode (its resolution is still notified)."""
    r = await deps.pool.fetchrow(
        f"""UPDATE alerts SET acknowledged_at = coalesce(acknowledged_at, $2),
                   acknowledged_by = coalesce(acknowledged_by, $3)
             WHERE id = $1 RETURNING {_ALERT_COLS}""",
        alert_id, to_dt(deps.clock.now_ms()), by)
    if r is None:
        raise NotFound(f"alert {alert_id} not found")
    return r


@translate_errors
async def firing_count(deps: Deps) -> int:
    n: int = await deps.pool.fetchval("SELECT count(*) FROM alerts WHERE status = 'firing'")
    return n


# --- deliveries ----------------------------------------------------------------------------------

INSERT_DELIVERIES = """
INSERT INTO alert_deliveries (id, alert_id, channel_id, channel_name, kind, recipient, event,
                              message, created_at, updated_at)
SELECT d.id, d.alert_id, d.channel_id, d.channel_name, d.kind, d.recipient, d.event, d.message,
       $9, $9
  FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::int[], $7::text[],
              $8::jsonb[]) AS d(id, alert_id, channel_id, channel_name, kind, recipient, event,
                                message)
"""


@dataclass(frozen=True, slots=True)
class NewDelivery:
    alert_id: uuid.UUID | None
    channel: Channel
    recipient: int
    event: str
    message: dict[str, Any]


async def insert_deliveries(conn: Any, now_ms: int, new: Sequence[NewDelivery]) -> list[uuid.UUID]:
    if not new:
        return []
    ids = [uuid7(now_ms) for _ in new]
    await conn.execute(
        INSERT_DELIVERIES, ids, [d.alert_id for d in new], [d.channel.id for d in new],
        [d.channel.name for d in new], [d.channel.kind for d in new],
        [d.recipient for d in new], [d.event for d in new], [d.message for d in new],
        to_dt(now_ms))
    return ids


def delivery_spec(deps: Deps, delivery_id: uuid.UUID) -> JobSpec:
    """One job per delivery; the idempotency key makes a re-submission (the sweep after a crash
    between commit and submit) return the same job."""
    s = deps.settings
    return JobSpec(queue=DELIVERY_QUEUE, job_type=DELIVERY_JOB_TYPE,
                   payload={"deliveryId": str(delivery_id)},
                   max_attempts=s.alert_delivery_attempts,
                   idempotency_key=f"jobline:alert-delivery:{delivery_id}",
                   backoff={"baseMs": s.alert_backoff_base_ms, "factor": 2.0,
                            "capMs": s.alert_backoff_cap_ms},
                   result_ttl_s=86_400)


async def submit_deliveries(deps: Deps, ids: Sequence[uuid.UUID]) -> None:
    """Submit the delivery jobs and note their ids; a failure leaves ``job_id`` NULL for the
    sweep (:func:`jobline.analytics.alerting.evaluate.sweep_unsubmitted`)."""
    if not ids:
        return
    results = await jobs.submit_many(deps, [delivery_spec(deps, i) for i in ids],
                                     limits=False)
    await deps.pool.execute(
        "UPDATE alert_deliveries d SET job_id = u.j FROM unnest($1::uuid[], $2::uuid[]) "
        "AS u(i, j) WHERE d.id = u.i AND d.job_id IS NULL",
        list(ids), [r.submitted.id for r in results])


@translate_errors
async def send_test(deps: Deps, channel_id: uuid.UUID) -> list[uuid.UUID]:
    """A test message to every recipient of the channel, through the same delivery jobs."""
    from jobline.analytics.alerting.channels import test_message

    channel = await get_channel(deps, channel_id)
    now = deps.clock.now_ms()
    new = [NewDelivery(None, channel, i, "test", test_message(deps.settings, channel, now))
           for i in range(channel.recipients())]
    async with deps.pool.acquire() as conn, conn.transaction():
        ids = await insert_deliveries(conn, now, new)
    await submit_deliveries(deps, ids)
    return ids
