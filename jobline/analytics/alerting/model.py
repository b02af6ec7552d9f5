"""Alert rules, channels and silences: the request models (REST and GraphQL validate with the
same ones, camelCase, strict, unknown fields refused by name), the stored shapes, and the
masking of channel secrets.

Invariants:
  * a channel's secrets (SMTP password, Slack webhook URLs, webhook signing secret, header
    values) never leave the store unmasked: every read goes through :func:`channel_json`;
  * a write that sends back a masked value (``"***"``, or a Slack URL as read) keeps the stored
    secret, so a client can edit a channel it can only read masked;
  * a rule's cross-field checks (:func:`check_rule`) raise :class:`ValidationFailed` naming the
    field (``condition.targetMs``, ``scope.jobType``, ``channelIds[1]``), a 422 on both shells.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from jobline.shared.core.inputs import JOB_TYPE_PATTERN, NO_NUL_PATTERN, QUEUE_PATTERN, InputModel
from jobline.shared.platform.errors import ValidationFailed

#: The internal queue delivery jobs run on, and their job type (docs/alerts.md).
DELIVERY_QUEUE = "jobline.alerts"
DELIVERY_JOB_TYPE = "jobline.alerts.deliver"
#: The built-in dead-letter rule (the seed's ``notifyAdmins``), created by migration 0020.
DEAD_LETTERS_BUILTIN = "dead_letters"

MASK = "***"
MAX_NAME = 200
MAX_CHANNELS_PER_RULE = 20
MAX_RECIPIENTS = 50
MAX_WINDOW_S = 7 * 86_400
MAX_FOR_S = 7 * 86_400

Metric = Literal["failure_rate", "throughput", "p95_duration_ms", "backlog",
                 "oldest_pending_age_s", "dlq_growth", "active_workers", "sla_compliance",
                 "anomaly"]
#: Metrics read from the per-minute rollups over ``windowS`` (may be scoped to a job type).
ROLLUP_METRICS = frozenset({"failure_rate", "throughput", "p95_duration_ms", "sla_compliance"})
#: Metrics read from live state (queue counts, worker registry, outbox): per queue at most.
LIVE_METRICS = frozenset({"backlog", "oldest_pending_age_s", "dlq_growth", "active_workers",
                          "anomaly"})
Op = Literal[">", ">=", "<", "<="]
Severity = Literal["info", "warning", "critical"]
Kind = Literal["email", "slack", "webhook"]
RuleState = Literal["ok", "pending", "firing"]

UUID_PATTERN = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME, pattern=NO_NUL_PATTERN)]
Id = Annotated[str, Field(pattern=UUID_PATTERN)]
Text = Annotated[str, Field(max_length=2_000, pattern=NO_NUL_PATTERN)]
Url = Annotated[str, Field(min_length=8, max_length=2_000, pattern=r"^(https?://\S+|\*\*\*)$")]
Email = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s<>,]+@[^@\s<>,]+$")]


def compare(value: float, op: str, threshold: float) -> bool:
    if op == ">":
        return value > threshold
    if op == ">=":
        return value >= threshold
    if op == "<":
        return value < threshold
    return value <= threshold


# --- requests ----------------------------------------------------------------------------------


class ConditionIn(InputModel):
    """What is measured and when it counts as true (``metric op threshold``)."""

    metric: Metric
    op: Op = ">"
    threshold: float
    #: The look-back of rollup metrics and of ``anomaly`` (ignored by the other live metrics).
    window_s: Annotated[int, Field(ge=60, le=MAX_WINDOW_S)] = 300
    #: ``sla_compliance`` only: a job meets the SLA when it runs within this many ms.
    target_ms: Annotated[int, Field(ge=1, le=86_400_000)] | None = None
    #: Rates and percentiles need this many finished attempts in the window, else the condition
    #: is false (one failure out of one is not a 100% failure rate worth waking someone for).
    min_samples: Annotated[int, Field(ge=0, le=1_000_000)] = 1

    @field_validator("threshold", mode="before")
    @classmethod
    def _number(cls, v: Any) -> Any:
        # strict floats refuse ints; a threshold of 10 is a fine number
        if isinstance(v, int) and not isinstance(v, bool):
            return float(v)
        return v

    @field_validator("threshold")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


class ScopeIn(InputModel):
    """Which jobs the rule watches: every queue (both null), one queue, one job type (of one
    queue, or of every queue)."""

    queue: Annotated[str, Field(pattern=QUEUE_PATTERN)] | None = None
    job_type: Annotated[str, Field(pattern=JOB_TYPE_PATTERN)] | None = None


class RuleIn(InputModel):
    """``POST /api/v1/alert-rules`` and GraphQL ``createAlertRule``."""

    name: Name
    condition: ConditionIn
    scope: ScopeIn = Field(default_factory=ScopeIn)
    #: How long the condition must hold before the alert fires (0: at the first evaluation).
    for_s: Annotated[int, Field(ge=0, le=MAX_FOR_S)] = 0
    severity: Severity = "warning"
    channel_ids: Annotated[list[Id], Field(max_length=MAX_CHANNELS_PER_RULE)] = Field(
        default_factory=list)
    #: Notify a firing alert again every this many seconds until it resolves or is
    #: acknowledged (0: once).
    renotify_s: Annotated[int, Field(ge=0, le=MAX_FOR_S)] = 0
    enabled: bool = True


class RulePatchIn(InputModel):
    """``PATCH /api/v1/alert-rules/{id}``: any subset; absent fields are kept."""

    name: Name | None = None
    condition: ConditionIn | None = None
    scope: ScopeIn | None = None
    for_s: Annotated[int, Field(ge=0, le=MAX_FOR_S)] | None = None
    severity: Severity | None = None
    channel_ids: Annotated[list[Id], Field(max_length=MAX_CHANNELS_PER_RULE)] | None = None
    renotify_s: Annotated[int, Field(ge=0, le=MAX_FOR_S)] | None = None
    enabled: bool | None = None


class EmailConfigIn(InputModel):
    host: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9.:\[\]_-]+$")]
    port: Annotated[int, Field(ge=1, le=65_535)] = 587
    #: ``starttls``: plain connect then STARTTLS (587); ``tls``: TLS from the start (465);
    #: ``none``: no encryption (a local relay, tests).
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: Annotated[str, Field(max_length=255, pattern=NO_NUL_PATTERN)] | None = None
    password: Annotated[str, Field(max_length=1_000, pattern=NO_NUL_PATTERN)] | None = None
    from_address: Email
    to: Annotated[list[Email], Field(min_length=1, max_length=MAX_RECIPIENTS)]
    timeout_s: Annotated[int, Field(ge=1, le=120)] = 15
    #: Accept a self-signed server certificate (a private relay); off by default.
    insecure_skip_verify: bool = False


class SlackConfigIn(InputModel):
    #: Incoming-webhook URLs (one per Slack channel); secrets, masked on read.
    webhook_urls: Annotated[list[Url], Field(min_length=1, max_length=MAX_RECIPIENTS)]
    timeout_s: Annotated[int, Field(ge=1, le=120)] = 10


class WebhookConfigIn(InputModel):
    urls: Annotated[list[Url], Field(min_length=1, max_length=MAX_RECIPIENTS)]
    #: HMAC-SHA256 key of the ``X-Jobline-Signature`` header (docs/alerts.md); masked on read.
    secret: Annotated[str, Field(max_length=1_000,
                                 pattern=r"^(\*\*\*|[^\x00]{8,})$")] | None = None
    #: Extra request headers (an Authorization header, say); values masked on read.
    headers: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,100}$")], Text] = Field(
        default_factory=dict)
    timeout_s: Annotated[int, Field(ge=1, le=120)] = 10


CONFIG_MODELS: dict[str, type[InputModel]] = {
    "email": EmailConfigIn, "slack": SlackConfigIn, "webhook": WebhookConfigIn}


class ChannelIn(InputModel):
    """``POST /api/v1/alert-channels``; ``config`` is checked against ``kind``'s model."""

    name: Name
    kind: Kind
    config: dict[str, Any]
    enabled: bool = True


class ChannelPatchIn(InputModel):
    name: Name | None = None
    config: dict[str, Any] | None = None
    enabled: bool | None = None


class SilenceIn(InputModel):
    """Mute notifications of a rule and/or a scope until ``endsAt`` (epoch ms) or for
    ``durationS``. Transitions are still evaluated and recorded, marked silenced."""

    rule_id: Id | None = None
    queue: Annotated[str, Field(pattern=QUEUE_PATTERN)] | None = None
    job_type: Annotated[str, Field(pattern=JOB_TYPE_PATTERN)] | None = None
    duration_s: Annotated[int, Field(ge=1, le=90 * 86_400)] | None = None
    ends_at_ms: Annotated[int, Field(ge=0)] | None = None
    reason: Text = ""


# --- stored shapes -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Condition:
    metric: str
    op: str
    threshold: float
    window_s: int = 300
    target_ms: int | None = None
    min_samples: int = 1

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "op": self.op, "threshold": self.threshold,
                "windowS": self.window_s, "targetMs": self.target_ms,
                "minSamples": self.min_samples}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Condition:
        return cls(metric=d["metric"], op=d.get("op", ">"), threshold=float(d["threshold"]),
                   window_s=int(d.get("windowS", 300)), target_ms=d.get("targetMs"),
                   min_samples=int(d.get("minSamples", 1)))

    def describe(self) -> str:
        unit = {"failure_rate": "", "sla_compliance": "", "p95_duration_ms": " ms",
                "oldest_pending_age_s": " s"}.get(self.metric, "")
        window = f" over {self.window_s // 60} min" if self.metric in ROLLUP_METRICS | {
            "anomaly"} else ""
        return f"{self.metric} {self.op} {self.threshold:g}{unit}{window}"


@dataclass(frozen=True, slots=True)
class Rule:
    id: uuid.UUID
    name: str
    builtin: str | None
    condition: Condition
    queue: str | None
    job_type: str | None
    for_ms: int
    severity: str
    channel_ids: list[uuid.UUID]
    renotify_ms: int
    enabled: bool
    created_ms: int
    updated_ms: int
    state: str = "ok"
    state_since_ms: int | None = None
    last_value: float | None = None
    last_eval_ms: int | None = None
    next_eval_ms: int | None = None
    evaluations: int = 0
    alert_id: uuid.UUID | None = None
    memory: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Channel:
    id: uuid.UUID
    name: str
    kind: str
    #: Unmasked: only the delivery handler and the store see this; reads use channel_json.
    config: dict[str, Any]
    enabled: bool
    created_ms: int
    updated_ms: int

    def recipients(self) -> int:
        """How many deliveries one notification makes: one email to every address, one POST
        per Slack/webhook URL (a failing URL is retried alone, the others are not re-sent)."""
        if self.kind == "email":
            return 1
        return len(self.config.get("webhookUrls" if self.kind == "slack" else "urls") or [])


def check_rule(rule: RuleIn | RulePatchIn, merged_condition: ConditionIn | Condition | None,
               merged_scope: ScopeIn | None) -> None:
    """The checks one field's model cannot make (each names its field)."""
    cond = merged_condition
    if cond is not None:
        if cond.metric == "sla_compliance":
            if cond.target_ms is None:
                raise ValidationFailed("condition.targetMs", "is required for sla_compliance")
            if not 0 <= cond.threshold <= 1:
                raise ValidationFailed("condition.threshold",
                                       "sla_compliance is a fraction in [0, 1]")
        if cond.metric == "failure_rate" and not 0 <= cond.threshold <= 1:
            raise ValidationFailed("condition.threshold", "failure_rate is a fraction in [0, 1]")
        if cond.metric in LIVE_METRICS and merged_scope is not None and merged_scope.job_type:
            raise ValidationFailed("scope.jobType",
                                   f"{cond.metric} is measured per queue, not per job type")
    ids = rule.channel_ids or []
    if len(set(ids)) != len(ids):
        raise ValidationFailed("channelIds", "lists a channel twice")


def channel_config(kind: str, raw: dict[str, Any], stored: dict[str, Any] | None = None
                   ) -> dict[str, Any]:
    """``raw`` validated against ``kind``'s model (errors under ``config.``), masked values
    replaced by the ``stored`` secrets they stand for. Returns the camelCase dict stored."""
    from jobline.shared.core.inputs import validation_failed

    model = CONFIG_MODELS[kind]
    import pydantic

    try:
        cfg = model.model_validate(raw).model_dump(by_alias=True)
    except pydantic.ValidationError as e:
        raise validation_failed(e, "config") from None
    old = stored or {}
    if kind == "email":
        if cfg.get("password") == MASK:
            cfg["password"] = old.get("password")
    elif kind == "slack":
        cfg["webhookUrls"] = _unmask_urls("config.webhookUrls", cfg["webhookUrls"],
                                          old.get("webhookUrls") or [])
    else:
        cfg["urls"] = _unmask_urls("config.urls", cfg["urls"], old.get("urls") or [])
        if cfg.get("secret") == MASK:
            cfg["secret"] = old.get("secret")
        old_headers = old.get("headers") or {}
        for k, v in list(cfg["headers"].items()):
            if v == MASK:
                if k not in old_headers:
                    raise ValidationFailed(f"config.headers.{k}", "no stored value to keep")
                cfg["headers"][k] = old_headers[k]
    return cfg


def _unmask_urls(where: str, urls: list[str], old: list[str]) -> list[str]:
    masked_old = {mask_url(u): u for u in old}
    out = []
    for i, u in enumerate(urls):
        if u in masked_old:
            out.append(masked_old[u])
        elif MASK in u:
            raise ValidationFailed(f"{where}[{i}]", "a masked URL that matches no stored one")
        else:
            out.append(u)
    return out


def mask_url(url: str) -> str:
    """Scheme and host kept (which service), path and query masked (they carry the token)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return MASK
    host = rest.split("/", 1)[0].split("?", 1)[0]
    if "@" in host:  # credentials in the authority
        host = host.rsplit("@", 1)[1]
    return f"{scheme}://{host}/{MASK}"


def masked_config(kind: str, cfg: dict[str, Any]) -> dict[str, Any]:
    out = dict(cfg)
    if kind == "email":
        if out.get("password"):
            out["password"] = MASK
    elif kind == "slack":
        out["webhookUrls"] = [mask_url(u) for u in out.get("webhookUrls") or []]
    else:
        # a webhook URL may carry a token in its path or query too
        out["urls"] = [mask_url(u) for u in out.get("urls") or []]
        if out.get("secret"):
            out["secret"] = MASK
        out["headers"] = {k: MASK for k in (out.get("headers") or {})}
    return out
