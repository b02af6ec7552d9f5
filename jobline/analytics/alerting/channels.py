"""Rendering a notification and sending it: email over SMTP (aiosmtplib), Slack incoming
webhooks (blocks), generic webhooks (JSON, HMAC-SHA256 signed).

The message is rendered once, at the transition, into a plain dict stored with each delivery
(``alert_deliveries.message``): a retry sends what was true when the alert fired, and the
delivery job's payload is only the delivery id. Each message links to the dashboard page of the
rule and of the affected queue(s) (``JOBLINE_DASHBOARD_URL``).

Webhook signature (docs/alerts.md, "Verifying a webhook"): headers
``X-Jobline-Timestamp: <unix seconds>`` and
``X-Jobline-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>``; a receiver
recomputes it over the raw body and refuses timestamps older than a few minutes (replays).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ssl
from email.message import EmailMessage
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from jobline.analytics.alerting.model import Channel, Rule
from jobline.shared.platform.config import Settings

SIGNATURE_HEADER = "X-Jobline-Signature"
TIMESTAMP_HEADER = "X-Jobline-Timestamp"
SEVERITY_EMOJI = {"info": ":information_source:", "warning": ":warning:",
                  "critical": ":rotating_light:"}
_EVENT_WORD = {"firing": "Firing", "resolved": "Resolved", "renotify": "Still firing",
               "test": "Test"}


class DeliveryFailed(Exception):
    """The receiver refused or could not be reached; the delivery job retries."""


def links(settings: Settings, rule_id: str | None, queues: list[str]) -> dict[str, Any]:
    base = settings.dashboard_url
    out: dict[str, Any] = {"alerts": f"{base}/alerts"}
    if rule_id:
        out["rule"] = f"{base}/alerts?rule={rule_id}"
    out["queues"] = {q: f"{base}/jobs?queue={quote(q, safe='')}" for q in queues[:5]}
    return out


def render(settings: Settings, rule: Rule, event: str, value: float | None,
           details: dict[str, Any], summary: str, *, alert_id: Any, started_ms: int,
           fired_ms: int | None, resolved_ms: int | None) -> dict[str, Any]:
    queues = [rule.queue] if rule.queue else list((details.get("perQueue") or {}).keys()) or \
        list(details.get("queues") or [])
    return {
        "event": event, "title": f"{_EVENT_WORD.get(event, event)}: {rule.name}",
        "summary": summary, "severity": rule.severity,
        "rule": {"id": str(rule.id), "name": rule.name,
                 "condition": rule.condition.to_json(),
                 "description": rule.condition.describe(), "forS": rule.for_ms // 1000},
        "scope": {"queue": rule.queue, "jobType": rule.job_type},
        "alertId": str(alert_id) if alert_id else None, "value": value, "details": details,
        "startedAtMs": started_ms, "firedAtMs": fired_ms, "resolvedAtMs": resolved_ms,
        "links": links(settings, str(rule.id), [q for q in queues if q]),
    }


def test_message(settings: Settings, channel: Channel, now_ms: int) -> dict[str, Any]:
    return {"event": "test", "title": f"Test: channel {channel.name}",
            "summary": f"Test notification from Jobline to channel {channel.name!r}.",
            "severity": "info", "rule": None, "scope": {"queue": None, "jobType": None},
            "alertId": None, "value": None, "details": {}, "startedAtMs": now_ms,
            "firedAtMs": None, "resolvedAtMs": None, "links": links(settings, None, [])}


# --- payloads --------------------------------------------------------------------------------


def webhook_body(message: dict[str, Any], delivery_id: str) -> dict[str, Any]:
    """The generic webhook's JSON (documented in docs/alerts.md; ``version`` bumps on an
    incompatible change)."""
    return {"version": 1, "deliveryId": delivery_id, **message}


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, now_s: int,
           tolerance_s: int = 300) -> bool:
    """What a receiver does (also used by the tests): constant-time compare, bounded age."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now_s - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


def slack_body(message: dict[str, Any]) -> dict[str, Any]:
    emoji = SEVERITY_EMOJI.get(message["severity"], "")
    if message["event"] == "resolved":
        emoji = ":white_check_mark:"
    fields = [{"type": "mrkdwn", "text": f"*Severity*\n{message['severity']}"}]
    if message.get("value") is not None:
        fields.append({"type": "mrkdwn", "text": f"*Value*\n{message['value']:g}"})
    scope = message.get("scope") or {}
    fields.append({"type": "mrkdwn", "text": "*Scope*\n" + (
        (scope.get("queue") or "all queues") + (f" / {scope['jobType']}" if scope.get(
            "jobType") else ""))})
    if message.get("details", {}).get("deadLettered"):
        fields.append({"type": "mrkdwn",
                       "text": f"*Dead-lettered*\n{message['details']['deadLettered']}"})
    link_items = []
    lk = message.get("links") or {}
    if lk.get("rule"):
        link_items.append(f"<{lk['rule']}|Rule>")
    for q, url in (lk.get("queues") or {}).items():
        link_items.append(f"<{url}|Queue {q}>")
    link_items.append(f"<{lk.get('alerts')}|All alerts>")
    return {
        "text": message["summary"],  # the notification preview and the fallback
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text":
                                        f"{message['title']}"[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": f"{emoji} {message['summary']}"},
             "fields": fields[:10]},
            {"type": "context", "elements": [{"type": "mrkdwn",
                                              "text": " · ".join(link_items)}]},
        ],
    }


def email_message(cfg: dict[str, Any], message: dict[str, Any]) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = f"[Jobline] {message['title']}"
    msg["From"] = cfg["fromAddress"]
    msg["To"] = ", ".join(cfg["to"])
    lines = [message["summary"], ""]
    if message.get("value") is not None:
        lines.append(f"Value: {message['value']:g}")
    lines.append(f"Severity: {message['severity']}")
    for k, v in (message.get("details") or {}).items():
        lines.append(f"{k}: {v}")
    lk = message.get("links") or {}
    lines.append("")
    if lk.get("rule"):
        lines.append(f"Rule: {lk['rule']}")
    for q, url in (lk.get("queues") or {}).items():
        lines.append(f"Queue {q}: {url}")
    lines.append(f"All alerts: {lk.get('alerts')}")
    msg.set_content("\n".join(lines) + "\n")
    return msg


# --- sending ---------------------------------------------------------------------------------


async def send(channel: Channel, recipient: int, message: dict[str, Any], delivery_id: str,
               now_s: int) -> None:
    """Send one delivery; raises :class:`DeliveryFailed` (retried) on any refusal."""
    cfg = channel.config
    if channel.kind == "email":
        await _send_email(cfg, email_message(cfg, message))
        return
    if channel.kind == "slack":
        urls = cfg.get("webhookUrls") or []
        body = orjson.dumps(slack_body(message))
        headers = {"content-type": "application/json"}
    else:
        urls = cfg.get("urls") or []
        body = orjson.dumps(webhook_body(message, delivery_id))
        headers = {"content-type": "application/json", "user-agent": "jobline-alerts/1",
                   **(cfg.get("headers") or {}), TIMESTAMP_HEADER: str(now_s)}
        if cfg.get("secret"):
            headers[SIGNATURE_HEADER] = sign(cfg["secret"], now_s, body)
    if recipient >= len(urls):
        raise DeliveryFailed("the channel no longer has this recipient")
    await _post(urls[recipient], body, headers, float(cfg.get("timeoutS", 10)))


@functools.cache
def _tls() -> ssl.SSLContext:
    # Loading the CA bundle costs tens of ms: once per process, not once per message.
    return ssl.create_default_context()


async def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> None:
    try:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False,
                                     verify=_tls()) as client:
            resp = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as e:
        raise DeliveryFailed(f"{type(e).__name__}: {e}"[:500]) from None
    if resp.status_code >= 300:
        raise DeliveryFailed(f"HTTP {resp.status_code}: {resp.text[:200]}")


async def _send_email(cfg: dict[str, Any], msg: EmailMessage) -> None:
    import aiosmtplib

    security = cfg.get("security", "starttls")
    context = _tls()
    if cfg.get("insecureSkipVerify"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        await aiosmtplib.send(
            msg, hostname=cfg["host"], port=int(cfg.get("port", 587)),
            username=cfg.get("username") or None, password=cfg.get("password") or None,
            use_tls=security == "tls", start_tls=security == "starttls",
            tls_context=context if security != "none" else None,
            timeout=float(cfg.get("timeoutS", 15)))
    except aiosmtplib.SMTPException as e:
        raise DeliveryFailed(f"SMTP: {e}"[:500]) from None
    except OSError as e:
        raise DeliveryFailed(f"SMTP connection: {e}"[:500]) from None
