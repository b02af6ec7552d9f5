"""Cron expressions: parse a standard 5-field (or 6-field, seconds first) expression in an IANA
timezone and compute fire times, with APScheduler's ``CronTrigger`` doing the calendar work.

Standard cron semantics are kept where APScheduler 3.x differs:
  * day-of-week numbers are cron's (0 or 7 = Sunday, 1 = Monday); APScheduler 3 counts from
    Monday, so the field is expanded here and handed over as weekday names;
  * when both day-of-month and day-of-week are restricted, a day matching *either* fires (cron's
    OR rule); APScheduler alone would require both;
  * DST: fire times are computed in the schedule's timezone. A wall-clock time skipped by a
    spring-forward transition fires once, one hour later in wall-clock terms (02:30 -> 03:30). A
    time repeated by a fall-back transition fires once (its first occurrence) when the hour field
    is fixed; with an hour wildcard the schedule follows real time and fires in both hours, like
    Vixie cron.

Fire times are whole seconds, handled as integer milliseconds since the epoch (UTC).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from jobline.shared.platform.errors import ValidationFailed

_DOW_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_APS_DOW = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]  # names are unambiguous in both
_DOW_ITEM = re.compile(r"^(\*|[0-7a-z]+(?:-[0-7a-z]+)?)(?:/(\d+))?$")
#: Iterations that may be skipped (fall-back duplicates) before giving up on a next fire time.
_MAX_SKIPS = 4


def _dow_value(token: str, field: str) -> int:
    if token.isdigit():
        v = int(token)
        if v > 7:
            raise ValidationFailed(field, f"day of week {v} is out of range 0-7")
        return v % 7
    if token in _DOW_NAMES:
        return _DOW_NAMES.index(token)
    raise ValidationFailed(field, f"unknown day of week {token!r}")


def _expand_dow(expr: str, field: str) -> set[int] | None:
    """Cron's day-of-week field as a set of days (0 = Sunday); None for ``*`` (every day)."""
    if expr in ("*", "?"):
        return None
    days: set[int] = set()
    for item in expr.lower().split(","):
        m = _DOW_ITEM.match(item)
        if not m:
            raise ValidationFailed(field, f"invalid day-of-week item {item!r}")
        body, step_s = m.group(1), m.group(2)
        step = int(step_s) if step_s else 1
        if step < 1:
            raise ValidationFailed(field, "a step must be >= 1")
        if body == "*":
            lo, hi = 0, 6
        elif "-" in body:
            a, b = body.split("-")
            lo = _dow_value(a, field)
            hi = 7 if b == "7" else _dow_value(b, field)
            if hi < lo:
                raise ValidationFailed(field, f"day-of-week range {body!r} runs backwards")
        else:
            lo = hi = _dow_value(body, field)
            if step_s:
                hi = 6
        days.update(d % 7 for d in range(lo, hi + 1, step))
    return days


@dataclass(frozen=True)
class CronSchedule:
    """A parsed expression in a timezone. ``next_after(ms)`` is the first fire time > ``ms``."""

    expression: str
    timezone: str
    triggers: tuple[CronTrigger, ...]
    fixed_hour: bool

    @classmethod
    def parse(cls, expression: str, timezone: str = "UTC", *,
              field: str = "schedule", tz_field: str = "timezone") -> CronSchedule:
        if not isinstance(timezone, str) or not timezone:
            raise ValidationFailed(tz_field, "must be an IANA timezone name such as 'UTC'")
        try:
            tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationFailed(tz_field, f"unknown IANA timezone {timezone!r}") from None
        if not isinstance(expression, str):
            raise ValidationFailed(field, "must be a cron expression string")
        parts = expression.split()
        if len(parts) == 5:
            second = "0"
            minute, hour, dom, month, dow = parts
        elif len(parts) == 6:
            second, minute, hour, dom, month, dow = parts
        else:
            raise ValidationFailed(field, f"expected 5 fields (minute hour day-of-month month "
                                   f"day-of-week) or 6 with seconds first, got {len(parts)}")
        days = _expand_dow(dow, field)
        aps_dow = None if days is None else ",".join(_APS_DOW[d] for d in sorted(days))
        dom_any = dom in ("*", "?")
        kw = {"second": second, "minute": minute, "hour": hour, "month": month}
        try:
            if days is not None and not dom_any:
                # cron's OR rule: either day field may match
                triggers: tuple[CronTrigger, ...] = (
                    CronTrigger(day=dom, timezone=tz, **kw),
                    CronTrigger(day_of_week=aps_dow, timezone=tz, **kw))
            else:
                triggers = (CronTrigger(day=None if dom_any else dom, day_of_week=aps_dow,
                                        timezone=tz, **kw),)
        except ValueError as e:
            raise ValidationFailed(field, f"invalid cron expression: {e}") from None
        sched = cls(expression, timezone, triggers, fixed_hour="*" not in hour)
        if sched.next_after(0) is None:
            raise ValidationFailed(field, "the expression never fires")
        return sched

    def _next_one(self, trigger: CronTrigger, after_ms: int) -> int | None:
        # APScheduler returns the first fire time >= now rounded up to a whole second.
        now = datetime.fromtimestamp(after_ms / 1000, tz=UTC) + timedelta(milliseconds=1)
        for _ in range(_MAX_SKIPS):
            f = trigger.get_next_fire_time(None, now)
            if f is None:
                return None
            if not (self.fixed_hour and f.fold == 1 and _repeated(f)):
                return int(f.timestamp() * 1000)
            now = f.astimezone(UTC) + timedelta(milliseconds=1)
        return None

    def next_after(self, after_ms: int) -> int | None:
        """The first fire time strictly after ``after_ms`` (ms since the epoch), or None."""
        found = [t for t in (self._next_one(tr, after_ms) for tr in self.triggers) if t is not None]
        return min(found) if found else None

    def next_runs(self, after_ms: int, n: int = 5) -> list[int]:
        out: list[int] = []
        t = after_ms
        while len(out) < n:
            nxt = self.next_after(t)
            if nxt is None:
                break
            out.append(nxt)
            t = nxt
        return out


def _repeated(f: datetime) -> bool:
    """True if this wall-clock time (fold=1) also occurred an hour earlier (fold=0)."""
    return f.replace(fold=0).utcoffset() != f.utcoffset()
