"""The event bus interface: one contract, two backends (``jobline.shared.events.buses``).

``publish`` returns only once the bus has durably accepted every event (the relay marks outbox
rows published after it). A consumer belongs to a group: each event goes to one consumer of each
group, is redelivered until ``ack``ed (at-least-once), and a dead consumer's unacknowledged
events move to a live one. ``tail`` is a groupless live view from "now", for the in-process
live feed. Chosen by ``JOBLINE_EVENT_BUS=redis|kafka``
(:func:`jobline.shared.events.buses.create_bus`, with the backends).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from jobline.shared.events.outbox import Event, Record


def as_record(x: Record | Event) -> Record:
    return x if isinstance(x, Record) else Record.of(x)


@dataclass(frozen=True, slots=True)
class Delivery:
    event: Event
    #: Backend-specific handle for ``ack`` (stream entry id, or (topic, partition, offset)).
    token: Any
    #: The bus partition it came from ("" for the one Redis stream, "topic:partition" on
    #: Kafka): the relay's ``seq`` order holds within one, so consumers keep a watermark each.
    part: str = ""


@dataclass(frozen=True, slots=True)
class GroupLag:
    group: str
    #: Events on the bus this group has not been handed yet.
    lag: int
    #: Handed to a consumer but not acknowledged.
    pending: int

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "lag": self.lag, "pending": self.pending}


class BusConsumer(ABC):
    @abstractmethod
    async def fetch(self, max_n: int, timeout_s: float) -> list[Delivery]:
        """The events of up to ``max_n`` records: this consumer's own unacknowledged ones first,
        then ones reclaimed from dead consumers, then new ones (waiting up to ``timeout_s``).
        A statement record's events come together, sharing one ``token``."""

    @abstractmethod
    async def ack(self, deliveries: Sequence[Delivery]) -> None: ...

    async def take_over(self) -> None:
        """Make every entry the group's other consumers left unacknowledged this consumer's
        own, so ``fetch`` returns them first, in bus order. Only for the group's sole consumer
        (the consumers' group lock); Kafka needs nothing (a rebalance resumes from the
        committed offsets)."""
        return None

    @abstractmethod
    async def close(self) -> None: ...


class EventBus(ABC):
    name: str

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def publish(self, records: Sequence[Record | Event]) -> None:
        """Publish each record (an outbox row: one event or a statement record, see
        :class:`Record`) as one entry / message; a bare :class:`Event` is a one-event record."""

    @abstractmethod
    async def consumer(self, group: str, name: str) -> BusConsumer: ...

    @abstractmethod
    async def lag(self, groups: Sequence[str]) -> list[GroupLag]: ...

    @abstractmethod
    def tail(self, ready: asyncio.Event | None = None) -> AsyncIterator[Event]:
        """Events published after ``ready`` is set (groupless, nothing acknowledged)."""

    async def lost_state(self) -> bool:
        """True when the bus lost the events it held (see the Redis backend)."""
        return False

    async def mark_state(self) -> None:
        return None

    @abstractmethod
    async def close(self) -> None: ...

