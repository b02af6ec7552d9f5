"""``send_welcome_email``: a real RFC 5322 message, delivered over SMTP or dropped in an outbox.

With ``JOBLINE_SMTP_URL`` (``smtp://[user:pass@]host[:port]`` or ``smtps://...``) the message is
sent with :mod:`smtplib`; without it the message is written to ``$JOBLINE_HOME/outbox/`` as an
``.eml`` file, so the demo works with no mail server at all.
"""

from __future__ import annotations

import ipaddress
import os
import re
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any
from urllib.parse import unquote, urlsplit

from jobline.demo._common import atomic_write, invalid, output_dir, output_stem, require_object
from jobline.shared.platform.errors import JobError, Unrecoverable
from jobline.worker.registry import JobContext, job

SUBJECT = "Welcome!"
BODY = "Thanks for signing up!\n"
DEFAULT_FROM = "Jobline <no-reply@jobline.local>"
#: Below the job's 30 s timeout: the worker cannot interrupt a pool thread, so the socket must
#: give up on its own.
SMTP_TIMEOUT_S = 10.0

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# Deliberately narrower than RFC 5321 (no quoted local parts or IP literals): what signup forms
# accept in practice, and no whitespace/CR/LF can slip through into headers.
_EMAIL = re.compile(rf"^[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]{{1,64}}@{_LABEL}(?:\.{_LABEL})+$")


def validate_email(value: object) -> str:
    if not isinstance(value, str) or len(value) > 254 or not _EMAIL.match(value):
        raise invalid(f"email is not a valid address: {value!r}")
    local = value.split("@", 1)[0]
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise invalid(f"email is not a valid address: {value!r}")
    return value


def build_message(sender: str, to: str, user_id: object, message_id: str,
                  now: datetime) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = SUBJECT
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    if user_id is not None:
        msg["X-Jobline-User-Id"] = str(user_id)
    msg.set_content(BODY)
    return msg


def _message_id(ctx: JobContext | None, sender: str) -> str:
    domain = parseaddr(sender)[1].rpartition("@")[2] or "jobline.local"
    if ctx is None:
        return make_msgid(domain=domain)
    # Stable across retries: if an attempt delivered but died before recording success, the
    # resend carries the same Message-ID and receiving systems can de-duplicate it.
    return f"<welcome.{ctx.id}@{domain}>"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def send_smtp(url: str, msg: EmailMessage) -> None:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    if scheme not in ("smtp", "smtps") or not parts.hostname or port == -1:
        # An operator mistake: retrying with the same config cannot help.
        raise Unrecoverable("JOBLINE_SMTP_URL must look like smtp://host:port", error_type="config_error")
    host = parts.hostname
    implicit_tls = scheme == "smtps"
    smtp_cls = smtplib.SMTP_SSL if implicit_tls else smtplib.SMTP
    try:
        with smtp_cls(host, port or (465 if implicit_tls else 25), timeout=SMTP_TIMEOUT_S) as smtp:
            if parts.username:
                if not implicit_tls:
                    smtp.ehlo()
                    if smtp.has_extn("starttls"):
                        smtp.starttls(context=ssl.create_default_context())
                        smtp.ehlo()
                    elif not _is_loopback(host):
                        raise Unrecoverable("refusing to send SMTP credentials without TLS",
                                            error_type="config_error")
                smtp.login(unquote(parts.username), unquote(parts.password or ""))
            smtp.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        if all(code >= 500 for code in codes):
            raise Unrecoverable(f"recipient rejected: {exc.recipients}",
                                error_type="recipient_rejected") from exc
        raise JobError(f"recipient temporarily refused: {exc.recipients}",
                       error_type="smtp_temporary") from exc
    except (smtplib.SMTPConnectError, smtplib.SMTPServerDisconnected) as exc:
        raise JobError(f"SMTP connection to {host}:{port} failed: {exc}",
                       error_type="connection_refused") from exc
    except smtplib.SMTPResponseException as exc:
        # SMTP reply classes: 4xx is "try again later", 5xx is permanent.
        if exc.smtp_code >= 500:
            raise Unrecoverable(f"SMTP server rejected the message: {exc}",
                                error_type="smtp_rejected") from exc
        raise JobError(f"SMTP server deferred the message: {exc}",
                       error_type="smtp_temporary") from exc
    except TimeoutError as exc:
        raise JobError(f"SMTP server {host}:{port} timed out", error_type="timeout") from exc
    except OSError as exc:  # refused, unreachable, DNS failure, TLS failure, other SMTPException
        raise JobError(f"cannot reach SMTP server {host}:{port}: {exc}",
                       error_type="connection_refused") from exc


@job("send_welcome_email", queue="email", max_attempts=3, timeout="30s")
def send_welcome_email(payload: dict[str, Any], ctx: JobContext | None = None) -> dict[str, Any]:
    payload = require_object(payload)
    to = validate_email(payload.get("email"))
    user_id = payload.get("userId")
    if user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, int | str)):
        raise invalid(f"userId must be an integer or string, got {user_id!r}")

    now = datetime.now(UTC)
    sender = os.environ.get("JOBLINE_MAIL_FROM") or DEFAULT_FROM
    message_id = _message_id(ctx, sender)
    msg = build_message(sender, to, user_id, message_id, now)
    result: dict[str, Any] = {"emailId": message_id, "to": to}

    smtp_url = os.environ.get("JOBLINE_SMTP_URL")
    if smtp_url:
        send_smtp(smtp_url, msg)
        result["delivery"] = "smtp"
    else:
        path = output_dir("outbox") / f"{output_stem(ctx)}.eml"
        # The SMTP policy gives CRLF line endings: the .eml is byte-for-byte what would go on
        # the wire, so mail clients open it as-is.
        atomic_write(path, msg.as_bytes(policy=SMTP_POLICY))
        result["delivery"] = "file"
        result["path"] = path.as_uri()
    result["sentAt"] = datetime.now(UTC).isoformat()
    return result
