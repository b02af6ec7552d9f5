"""The event-bus backends and the factory that picks one (``JOBLINE_EVENT_BUS=redis|kafka``).

The factory lives with the backends, not with the interface (``jobline.shared.events.bus``) they
implement: the backends import the interface, so the interface importing them back would be a
cycle.
"""

from __future__ import annotations

from typing import Any

from jobline.shared.events.bus import EventBus
from jobline.shared.events.buses.kafka import KafkaBus
from jobline.shared.events.buses.redis_streams import RedisStreamsBus
from jobline.shared.platform.config import Settings
from jobline.shared.platform.errors import ConfigError

__all__ = ["KafkaBus", "RedisStreamsBus", "create_bus"]


async def create_bus(settings: Settings, **kw: Any) -> EventBus:
    """The configured bus, started (streams/topics exist)."""
    bus: EventBus
    if settings.event_bus == "redis":
        if not settings.redis_url:
            raise ConfigError("the redis event bus needs REDIS_URL")
        bus = RedisStreamsBus(settings.redis_url, settings.redis_prefix, **kw)
    elif settings.event_bus == "kafka":
        if not settings.kafka_bootstrap:
            raise ConfigError("JOBLINE_EVENT_BUS=kafka needs KAFKA_BOOTSTRAP_SERVERS")
        bus = KafkaBus(settings.kafka_bootstrap, settings.redis_prefix, **kw)
    else:
        raise ConfigError(f"JOBLINE_EVENT_BUS must be redis or kafka, not {settings.event_bus!r}")
    await bus.start()
    return bus
