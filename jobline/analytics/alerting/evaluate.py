"""The evaluation tick: ok -> pending -> firing -> resolved, once per evaluation, notified once
per transition, with any number of schedulers running it.

Fencing, as the cron tick does it (``jobline.shared.schedules.recurring``): a tick takes the due
rules (``next_eval_at <= now``) with ``FOR UPDATE SKIP LOCKED``, so two schedulers never evaluate
the same rule at once, and in that one transaction it measures them, writes their new state,
opens/updates/closes their alerts, records the deliveries of every transition and moves
``next_eval_at`` one interval on. A peer that reaches the row after the commit re-checks the
``WHERE`` on the new row version and skips it; a scheduler that dies mid-tick rolls all of it
back and the rule is due again. So each evaluation happens once and each transition's
deliveries are recorded once.

Delivery jobs are submitted after the commit, one per delivery, with the delivery id as the
idempotency key; a crash between the commit and the submit leaves ``job_id`` NULL, and
:func:`sweep_unsubmitted` (every tick) submits them again: the key returns the same job if the
first submit did land. Sending is at-least-once (a worker that dies after the SMTP server
accepted a message and before recording it sends it again): receivers of webhooks can drop
duplicates by ``deliveryId``.

States (``alert_rules.state``): ``ok``; ``pending`` (the condition holds, for less than ``for``);
``firing``. ``resolved`` is the transition firing -> ok; pending -> ok cancels the episode
quietly. Notified: firing, resolved (only if its firing was notified), and ``renotify`` every
``renotifyS`` while firing and not acknowledged. An active silence matching the rule records the
transitions but creates no deliveries (the alert is marked ``silenced``); an alert still firing
when the silence ends is notified ``firing`` then.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jobline.analytics.alerting import store
from jobline.analytics.alerting.channels import render
from jobline.analytics.alerting.metrics import Measurement, Snapshot
from jobline.analytics.alerting.model import Channel, Rule, compare
from jobline.analytics.alerting.store import NewDelivery, Silence
from jobline.shared.platform.clock import to_dt
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.ids import uuid7

log = logging.getLogger("jobline.alerts")

#: Rules evaluated per tick transaction; a full batch makes the loop tick again at once.
TICK_BATCH = 1000
#: A delivery whose job was not submitted this long after its commit is submitted by the sweep.
UNSUBMITTED_AFTER_MS = 5_000

DUE_RULES = f"""
SELECT {store._RULE_COLS} FROM alert_rules
 WHERE enabled AND next_eval_at <= $1
 ORDER BY next_eval_at
 LIMIT $2
   FOR UPDATE SKIP LOCKED
"""
# Including rules a peer holds right now: then the earliest is already due.
EARLIEST_DUE = "SELECT min(next_eval_at) FROM alert_rules WHERE enabled"

UPDATE_RULES = """
UPDATE alert_rules r
   SET state = u.state, state_since = u.since, last_value = u.value, last_eval_at = $8,
       next_eval_at = u.next, evaluations = r.evaluations + 1, alert_id = u.alert_id,
       memory = u.memory
  FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::float8[], $5::timestamptz[],
              $6::uuid[], $7::jsonb[]) AS u(id, state, since, value, next, alert_id, memory)
 WHERE r.id = u.id
"""
INSERT_ALERT = """
INSERT INTO alerts (id, rule_id, rule_name, severity, status, scope_queue, scope_job_type,
                    value, peak_value, summary, details, started_at, fired_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10::jsonb, $11, $12)
"""
UPDATE_ALERT = """
UPDATE alerts
   SET status = $2, value = $3, peak_value = greatest(coalesce(peak_value, $3), $3),
       summary = $4, details = $5::jsonb, fired_at = coalesce(fired_at, $6),
       resolved_at = $7, last_notified_at = coalesce($8, last_notified_at),
       silenced = silenced OR $9
 WHERE id = $1
"""
OPEN_ALERTS = """
SELECT id, status, details, started_at, fired_at, last_notified_at, acknowledged_at, silenced,
       peak_value
  FROM alerts WHERE id = ANY($1::uuid[])
"""
CHANNELS = "SELECT id, name, kind, config, enabled, created_at, updated_at FROM alert_channels " \
           "WHERE id = ANY($1::uuid[]) AND enabled"
UNSUBMITTED = """
SELECT id FROM alert_deliveries WHERE job_id IS NULL AND created_at < $1
 ORDER BY created_at LIMIT 500
"""


@dataclass
class TickReport:
    evaluated: int = 0
    transitions: int = 0
    deliveries: int = 0
    #: More rules were due than one batch takes: tick again at once.
    more: bool = False
    #: Earliest next evaluation (ms) of any enabled rule, for the loop's sleep.
    next_due_ms: int | None = None
    reads: int = 0
    #: Wall time of the transaction (measurement, writes, commit), in ms.
    eval_ms: float = 0.0
    transitioned: list[tuple[uuid.UUID, str]] = field(default_factory=list)


@dataclass
class _Step:
    rule: Rule
    m: Measurement
    state: str
    since_ms: int | None
    alert_id: uuid.UUID | None
    #: notified event (firing/resolved/renotify) or None
    notify: str | None = None
    alert_status: str | None = None


def _next_eval(rule: Rule, now: int, interval: int) -> int:
    """One interval after the due time it was evaluated for (a steady cadence), but never in the
    past (a scheduler that was down does not evaluate the missed intervals one by one)."""
    due = rule.next_eval_ms if rule.next_eval_ms is not None else now
    nxt = due + interval
    return nxt if nxt > now else now + interval


def _summary(rule: Rule, event: str, value: float | None) -> str:
    scope = rule.queue or "all queues"
    if rule.job_type:
        scope += f" / {rule.job_type}"
    v = "no data" if value is None else f"{value:g}"
    word = {"pending": "PENDING", "firing": "FIRING", "renotify": "STILL FIRING",
            "resolved": "RESOLVED", "cancelled": "CLEARED"}.get(event, event.upper())
    return f"[{word}] {rule.name}: {rule.condition.describe()} ({scope}), value {v}"


def _silenced(rule: Rule, silences: Sequence[Silence], now: int) -> bool:
    return any(s.matches(rule, now) for s in silences)


async def tick(deps: Deps, *, batch: int = TICK_BATCH) -> TickReport:
    """Evaluate the due rules (at most ``batch``); see the module docstring for the guarantees."""
    rep = TickReport()
    now = deps.clock.now_ms()
    interval = max(deps.settings.alert_eval_ms, 100)
    started = time.perf_counter()
    delivery_ids: list[uuid.UUID] = []
    async with deps.pool.acquire() as conn:
        async with conn.transaction():
            rows = await conn.fetch(DUE_RULES, to_dt(now), batch)
            rules = [store.rule_of(r) for r in rows]
            rep.evaluated = len(rules)
            rep.more = len(rules) == batch
            if rules:
                delivery_ids = await _evaluate(deps, conn, rules, now, interval, rep)
        earliest = await conn.fetchval(EARLIEST_DUE)
    rep.eval_ms = (time.perf_counter() - started) * 1000
    rep.next_due_ms = int(earliest.timestamp() * 1000) if earliest is not None else None
    if delivery_ids:
        try:
            await store.submit_deliveries(deps, delivery_ids)
        except Exception as e:  # the sweep submits them on a later tick
            log.warning("alert deliveries not submitted yet (%s); the sweep will", e)
    await sweep_unsubmitted(deps)
    return rep


async def _evaluate(deps: Deps, conn: Any, rules: list[Rule], now: int, interval: int,
                    rep: TickReport) -> list[uuid.UUID]:
    snap = Snapshot(deps, conn, now)
    silences = await store.active_silences(conn, now)
    open_ids = [r.alert_id for r in rules if r.alert_id is not None]
    alerts = {a["id"]: a for a in await conn.fetch(OPEN_ALERTS, open_ids)} if open_ids else {}
    steps: list[_Step] = []
    failed: list[str] = []
    for rule in rules:
        try:
            m = await snap.measure(rule)
        except Exception as e:
            # one broken measurement (a source unavailable) must not stop the other rules: the
            # rule sees "no data" (false) this time; logged once per tick, not once per rule
            failed.append(f"{rule.id}: {type(e).__name__}: {e}")
            m = Measurement(None, {"error": "measurement failed"}, None)
        steps.append(_step(rule, m, alerts.get(rule.alert_id) if rule.alert_id else None,
                           now))
    if failed:
        log.warning("%d alert rule measurements failed, e.g. %s", len(failed), failed[0])
    rep.reads = snap.reads + 2

    wanted = sorted({c for s in steps if s.notify for c in s.rule.channel_ids})
    channels = {r["id"]: store._channel(r) for r in await conn.fetch(CHANNELS, wanted)} \
        if wanted else {}
    new: list[NewDelivery] = []
    for s in steps:
        await _write_alert(deps, conn, s, alerts, silences, channels, now, new)
        if s.alert_status is not None:
            rep.transitions += 1
            rep.transitioned.append((s.rule.id, s.alert_status))
    await conn.execute(
        UPDATE_RULES, [s.rule.id for s in steps], [s.state for s in steps],
        [to_dt(s.since_ms) if s.since_ms is not None else None for s in steps],
        [s.m.value for s in steps], [to_dt(_next_eval(s.rule, now, interval)) for s in steps],
        [s.alert_id for s in steps],
        [s.m.memory if s.m.memory is not None else s.rule.memory for s in steps], to_dt(now))
    ids = await store.insert_deliveries(conn, now, new)
    rep.deliveries = len(ids)
    return ids


def _step(rule: Rule, m: Measurement, alert: Any, now: int) -> _Step:
    holds = m.value is not None and compare(m.value, rule.condition.op, rule.condition.threshold)
    st = _Step(rule, m, rule.state, rule.state_since_ms, rule.alert_id)
    if rule.state == "ok" or alert is None:
        if holds:
            st.alert_id = uuid7(now)
            st.since_ms = now
            if rule.for_ms <= 0:
                st.state, st.alert_status, st.notify = "firing", "firing", "firing"
            else:
                st.state, st.alert_status = "pending", "pending"
        else:
            st.state, st.alert_id = "ok", None
            if rule.state != "ok":
                st.since_ms = now
    elif rule.state == "pending":
        if not holds:
            st.state, st.since_ms, st.alert_id, st.alert_status = "ok", now, None, "cancelled"
            st.alert_id = rule.alert_id  # closed below, then cleared
        elif now - (rule.state_since_ms or now) >= rule.for_ms:
            st.state, st.since_ms, st.alert_status, st.notify = "firing", now, "firing", "firing"
    else:  # firing
        if not holds:
            st.state, st.since_ms, st.alert_status = "ok", now, "resolved"
            if alert["last_notified_at"] is not None:
                st.notify = "resolved"
        elif alert["acknowledged_at"] is not None:
            pass
        elif alert["last_notified_at"] is None:
            # its firing was silenced: notified once the silence is over (_write_alert checks)
            st.notify = "firing"
        elif (rule.renotify_ms > 0
              and now - int(alert["last_notified_at"].timestamp() * 1000) >= rule.renotify_ms):
            st.notify = "renotify"
    return st


async def _write_alert(deps: Deps, conn: Any, s: _Step, alerts: dict[uuid.UUID, Any],
                       silences: Sequence[Silence], channels: dict[uuid.UUID, Channel],
                       now: int, new: list[NewDelivery]) -> None:
    rule, m = s.rule, s.m
    if s.alert_id is None:
        return
    existing = alerts.get(s.alert_id)
    details = dict(existing["details"]) if existing is not None else {}
    details.update({k: v for k, v in m.details.items()})
    if rule.condition.metric == "dlq_growth":
        # grouped: one episode counts every dead letter it saw, however many evaluations
        details["deadLettered"] = int(details.get("deadLettered", 0)) + int(
            m.details.get("new", 0)) if existing is not None else int(m.value or 0)
        queues = dict(existing["details"].get("perQueue") or {}) if existing is not None else {}
        for q, n in (m.details.get("perQueue") or {}).items():
            queues[q] = queues.get(q, 0) + n if existing is not None else n
        details["perQueue"] = dict(sorted(queues.items(), key=lambda x: -x[1])[:10])
    event = s.notify or s.alert_status or (existing["status"] if existing is not None
                                           else s.state)
    summary = _summary(rule, event, m.value)
    silenced = bool(s.notify) and _silenced(rule, silences, now)
    notified = s.notify is not None and not silenced
    if existing is None:
        await conn.execute(INSERT_ALERT, s.alert_id, rule.id, rule.name, rule.severity,
                           s.alert_status or s.state, rule.queue, rule.job_type, m.value,
                           summary, details, to_dt(now),
                           to_dt(now) if s.alert_status == "firing" else None)
        started, fired = now, now if s.alert_status == "firing" else None
    else:
        status = s.alert_status or existing["status"]
        await conn.execute(
            UPDATE_ALERT, s.alert_id, status, m.value, summary, details,
            to_dt(now) if status == "firing" else None,
            to_dt(now) if status in ("resolved", "cancelled") else None,
            to_dt(now) if notified else None, silenced)
        started = int(existing["started_at"].timestamp() * 1000)
        fired = (int(existing["fired_at"].timestamp() * 1000) if existing["fired_at"]
                 else (now if status == "firing" else None))
    if existing is None and notified:
        await conn.execute("UPDATE alerts SET last_notified_at = $2, silenced = $3 WHERE id = $1",
                           s.alert_id, to_dt(now), silenced)
    elif existing is None and silenced:
        await conn.execute("UPDATE alerts SET silenced = true WHERE id = $1", s.alert_id)
    if s.alert_status in ("resolved", "cancelled"):
        s.alert_id = None
    if not notified:
        return
    assert s.notify is not None
    message = render(deps.settings, rule, s.notify, m.value, details, summary,
                     alert_id=existing["id"] if existing is not None else s.alert_id,
                     started_ms=started, fired_ms=fired,
                     resolved_ms=now if s.notify == "resolved" else None)
    alert_id = existing["id"] if existing is not None else s.alert_id
    for cid in rule.channel_ids:
        ch = channels.get(cid)
        if ch is None:  # deleted or disabled since the rule was saved
            continue
        new += [NewDelivery(alert_id, ch, i, s.notify, message) for i in range(ch.recipients())]


async def sweep_unsubmitted(deps: Deps) -> int:
    """Submit the delivery jobs a crash between a tick's commit and its submit left behind."""
    rows = await deps.pool.fetch(UNSUBMITTED, to_dt(deps.clock.now_ms() - UNSUBMITTED_AFTER_MS))
    if rows:
        await store.submit_deliveries(deps, [r["id"] for r in rows])
    return len(rows)
