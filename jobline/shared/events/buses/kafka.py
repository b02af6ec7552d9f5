"""Kafka event bus (aiokafka): one topic per event type, one message per outbox record.

- Publish sends every record (an event, or a statement record of several jobs' events; key =
  the record's key: a statement record's queue, an event's job id, so one job's events of a
  type stay in order on one partition) and waits for all acknowledgements (``acks=all``).
- Consumers of a group subscribe to every event topic with auto-commit off; ``ack`` commits the
  next offset per partition after the caller has processed (and durably applied) the batch. A
  consumer that dies leaves its partitions uncommitted; the group rebalances and another member
  resumes from the last commit, re-delivering what was not acknowledged (at-least-once).
- Topic names carry the prefix (``{prefix}.jobs.completed``) so tests and tenants can share a
  broker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import OffsetAndMetadata

from jobline.shared.events.bus import BusConsumer, Delivery, EventBus, GroupLag, as_record
from jobline.shared.events.outbox import EVENT_TYPES, Event, Record, unpack_json


class KafkaBus(EventBus):
    name = "kafka"

    def __init__(self, bootstrap: str, prefix: str, *, partitions: int = 3,
                 session_timeout_ms: int | None = None) -> None:
        """``session_timeout_ms``: how long the group coordinator waits for a silent member
        before handing its partitions to the others (the analogue of the Redis bus's
        ``claim_idle_ms``); ``None`` keeps aiokafka's default (10 s). Tests shorten it so a
        dead consumer's partitions move in about a second; heartbeats go at a tenth of it."""
        self.bootstrap = bootstrap
        self.prefix = prefix
        self.partitions = partitions
        self._group_options: dict[str, int] = {}
        if session_timeout_ms is not None:
            self._group_options = {"session_timeout_ms": session_timeout_ms,
                                   "heartbeat_interval_ms": max(1, session_timeout_ms // 10)}
        self.topics = [self.topic(t) for t in EVENT_TYPES]
        self.producer: AIOKafkaProducer | None = None
        self._admin: AIOKafkaAdminClient | None = None

    def topic(self, event_type: str) -> str:
        return f"{self.prefix}.{event_type}"

    async def start(self) -> None:
        self._admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await self._admin.start()
        existing = set(await self._admin.list_topics())
        missing = [NewTopic(t, self.partitions, 1) for t in self.topics if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await self._admin.create_topics(missing)
        self.producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                         linger_ms=1)
        await self.producer.start()

    async def publish(self, records: Sequence[Record | Event]) -> None:
        assert self.producer is not None
        futures = [await self.producer.send(self.topic(r.type), r.raw, key=r.key.encode())
                   for r in map(as_record, records)]
        await asyncio.gather(*futures)

    async def consumer(self, group: str, name: str) -> BusConsumer:
        c = AIOKafkaConsumer(*self.topics, bootstrap_servers=self.bootstrap, group_id=group,
                             client_id=name, enable_auto_commit=False,
                             auto_offset_reset="earliest", **self._group_options)
        await c.start()
        return KafkaConsumer(c)

    async def lag(self, groups: Sequence[str]) -> list[GroupLag]:
        out = []
        for g in groups:
            # A consumer that never subscribes does not join the group; it only reads the
            # group's committed offsets (OffsetFetch), next to the partitions' end offsets.
            probe = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=g,
                                     enable_auto_commit=False)
            await probe.start()
            try:
                parts = [TopicPartition(t, p) for t in self.topics
                         for p in (probe.partitions_for_topic(t) or range(self.partitions))]
                ends = await probe.end_offsets(parts)
                behind = 0
                for tp, end in ends.items():
                    done = await probe.committed(tp)
                    behind += max(0, end - (done if done is not None and done >= 0 else 0))
            finally:
                await probe.stop()
            out.append(GroupLag(g, behind, 0))
        return out

    async def tail(self, ready: asyncio.Event | None = None) -> AsyncIterator[Event]:
        # A short fetch wait: the live feed is about latency, and an idle long-poll otherwise
        # holds events back for up to the broker's wait.
        c = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                             fetch_max_wait_ms=10)
        await c.start()
        try:
            # Assign every partition by hand and pin the end offsets before signalling ready.
            parts = [TopicPartition(t, p) for t in self.topics
                     for p in (c.partitions_for_topic(t) or range(self.partitions))]
            c.assign(parts)
            await c.seek_to_end(*parts)
            for tp in parts:
                await c.position(tp)
            if ready is not None:
                ready.set()
            async for msg in c:
                assert msg.value is not None
                for e in unpack_json(msg.value):
                    yield e
        finally:
            await c.stop()

    async def close(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
        if self._admin is not None:
            await self._admin.close()


class KafkaConsumer(BusConsumer):
    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.c = consumer

    async def fetch(self, max_n: int, timeout_s: float) -> list[Delivery]:
        batches = await self.c.getmany(timeout_ms=int(timeout_s * 1000), max_records=max_n)
        out = []
        for tp, msgs in batches.items():
            for m in msgs:
                assert m.value is not None
                part = f"{tp.topic}:{tp.partition}"
                out += [Delivery(e, (tp, m.offset), part) for e in unpack_json(m.value)]
        return out

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        nxt: dict[TopicPartition, int] = {}
        for d in deliveries:
            tp, off = d.token
            nxt[tp] = max(nxt.get(tp, 0), off + 1)
        if nxt:
            offsets: dict[TopicPartition, Any] = {
                tp: OffsetAndMetadata(o, "") for tp, o in nxt.items()}
            await self.c.commit(offsets)

    async def close(self) -> None:
        await self.c.stop()
