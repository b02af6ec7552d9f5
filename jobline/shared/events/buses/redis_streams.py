"""Redis Streams event bus: one stream per prefix, a consumer group per consumer kind.

- Publish is one pipelined ``XADD ... MAXLEN ~ N`` per event (one round trip per batch); the
  approximate trim keeps memory bounded. A group that lags by more than ``maxlen`` loses the
  trimmed events: the lag endpoint shows it coming, and the audit log in Postgres is the record.
- A consumer reads its own pending entries first (a restarted consumer with the same name), then
  ``XAUTOCLAIM``s entries idle longer than ``claim_idle_ms`` (a dead consumer's), then new ones
  with ``XREADGROUP ... BLOCK``.
- Redis may be flushed: a marker key tells the relay the stream was lost, and the relay replays
  the outbox's retained window (consumers dedupe by event id). A consumer whose group vanished
  recreates it.
- Redis Cluster: every command and script here names the stream alone (one slot), and the
  marker shares the stream's slot (``{P:events}:alive``), so both live on one shard and are lost
  together. A blocking ``XREADGROUP`` waits on the stream's node.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
import redis.exceptions

from jobline.shared.events.bus import BusConsumer, Delivery, EventBus, GroupLag, as_record
from jobline.shared.events.outbox import Event, Record, unpack, unpack_json
from jobline.shared.platform.connections import create_redis
from jobline.shared.platform.redis_client import colocated

DEFAULT_MAXLEN = 1_000_000

# Every record of a relay batch as its own entry (an event, or a statement's events: ack, lag and
# redelivery are per record).
XADD_MANY = """
for i = 2, #ARGV do
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[i])
end
return #ARGV - 1
"""
# A non-blocking XREADGROUP > whose reply is two strings (the entry ids, and the events as one
# JSON array) instead of a nested array per entry: parsing that reply in Python was most of a
# consumer's CPU. Blocking reads (nothing was there) still use XREADGROUP itself.
READ_NEW = """
local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3],
                     'STREAMS', KEYS[1], '>')
if not r then return {'', '[]'} end
local ids, evs = {}, {}
for i, e in ipairs(r[1][2]) do
    ids[i] = e[1]
    evs[i] = e[2][2]
end
return {table.concat(ids, ','), '[' .. table.concat(evs, ',') .. ']'}
"""


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class RedisStreamsBus(EventBus):
    name = "redis"

    def __init__(self, url: str, prefix: str, *, maxlen: int = DEFAULT_MAXLEN,
                 claim_idle_ms: int = 30_000) -> None:
        self.url = url
        self.stream = f"{prefix}:events"
        # In the stream's own slot: on a Redis Cluster a shard lost (flushed, or failed over
        # without its last writes) takes the stream and its marker together, so lost_state()
        # sees the loss. (A marker in another slot would survive it and hide the loss.)
        self.marker = colocated(self.stream, ":alive")
        self.maxlen = maxlen
        self.claim_idle_ms = claim_idle_ms
        self.redis = create_redis(url)
        self._xadd_many = self.redis.register_script(XADD_MANY)
        self._read_new = self.redis.register_script(READ_NEW)

    async def start(self) -> None:
        return None

    async def publish(self, records: Sequence[Record | Event]) -> None:
        # One script call per batch: the relay's CPU went mostly into parsing one XADD reply
        # per event (redis-py's Python parser); the script answers with one integer.
        if records:
            await self._xadd_many(keys=[self.stream],
                                  args=[self.maxlen, *(as_record(r).raw for r in records)])

    async def lost_state(self) -> bool:
        return not await self.redis.exists(self.marker)

    async def mark_state(self) -> None:
        await self.redis.set(self.marker, "1")

    async def ensure_group(self, group: str) -> None:
        try:
            await self.redis.xgroup_create(self.stream, group, id="0", mkstream=True)
        except redis.exceptions.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    async def consumer(self, group: str, name: str) -> BusConsumer:
        await self.ensure_group(group)
        return RedisStreamsConsumer(self, group, name)

    async def lag(self, groups: Sequence[str]) -> list[GroupLag]:
        try:
            info = await self.redis.xinfo_groups(self.stream)
        except redis.exceptions.ResponseError:  # no stream yet
            info = []
        by_name = {_s(g["name"]): g for g in info}
        out = []
        for g in groups:
            row = by_name.get(g)
            if row is None:
                length = await self.redis.xlen(self.stream)
                out.append(GroupLag(g, int(length), 0))
                continue
            lag = row.get("lag")
            out.append(GroupLag(g, int(lag) if lag is not None else 0, int(row["pending"])))
        return out

    async def tail(self, ready: asyncio.Event | None = None) -> AsyncIterator[Event]:
        block = create_redis(self.url, blocking=True)
        # Resolve "now" to a concrete id before signalling ready, so nothing published after
        # ready can fall between two XREADs.
        newest: Any = await self.redis.xrevrange(self.stream, count=1)
        last = _s(newest[0][0]) if newest else "0-0"
        if ready is not None:
            ready.set()
        try:
            while True:
                res: Any = await block.xread({self.stream: last}, count=1000, block=5000)
                for _, entries in res or []:
                    for entry_id, fields in entries:
                        last = _s(entry_id)
                        for e in unpack_json(fields[b"e"]):
                            yield e
        finally:
            await block.aclose()

    async def close(self) -> None:
        await self.redis.aclose()


class RedisStreamsConsumer(BusConsumer):
    def __init__(self, bus: RedisStreamsBus, group: str, name: str) -> None:
        self.bus = bus
        self.group = group
        self.name = name
        self.block = create_redis(bus.url, blocking=True)
        self._own_done = False
        self._claim_cursor = "0-0"
        self._next_claim = 0.0

    def _deliveries(self, entries: Any, stale: list[str]) -> list[Delivery]:
        out = []
        for entry_id, fields in entries or []:
            if not fields:  # trimmed away while pending: nothing to deliver, just ack it
                stale.append(_s(entry_id))
                continue
            token = _s(entry_id)
            out += [Delivery(e, token) for e in unpack_json(fields[b"e"])]
        return out

    async def fetch(self, max_n: int, timeout_s: float) -> list[Delivery]:
        r, stream = self.bus.redis, self.bus.stream
        stale: list[str] = []
        try:
            if not self._own_done:
                res: Any = await r.xreadgroup(self.group, self.name, {stream: "0"},
                                              count=max_n)
                got = self._deliveries(res[0][1] if res else [], stale)
                if got or stale:
                    await self._ack_ids(stale)
                    if got:
                        return got
                else:
                    self._own_done = True
            now = time.monotonic()
            if now >= self._next_claim:
                # Scanning for a dead consumer's entries once per half idle period is enough;
                # doing it on every fetch would keep re-claiming this consumer's own slow ones.
                claimed: Any = await r.xautoclaim(stream, self.group, self.name,
                                             self.bus.claim_idle_ms,
                                             start_id=self._claim_cursor, count=max_n)
                self._claim_cursor = _s(claimed[0])
                if self._claim_cursor == "0-0":
                    self._next_claim = now + self.bus.claim_idle_ms / 2000
                got = self._deliveries(claimed[1], stale)
                if len(claimed) > 2:
                    stale += [_s(i) for i in claimed[2]]
                await self._ack_ids(stale)
                if got:
                    return got
            ids, blob = await self.bus._read_new(keys=[stream],
                                                 args=[self.group, self.name, max_n])
            if ids:
                got = [Delivery(e, i)
                       for i, d in zip(_s(ids).split(","), orjson.loads(blob), strict=True)
                       for e in unpack(d)]
                if got:
                    return got
            new: Any = await self.block.xreadgroup(self.group, self.name, {stream: ">"}, count=max_n,
                                              block=max(1, int(timeout_s * 1000)))
            return self._deliveries(new[0][1] if new else [], stale)
        except redis.exceptions.ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            # Redis was flushed: recreate the group; the relay replays what was lost.
            await self.bus.ensure_group(self.group)
            self._own_done = False
            return []

    async def take_over(self) -> None:
        r, stream = self.bus.redis, self.bus.stream
        cursor = "0-0"
        while True:
            # min idle 0: every pending entry, whoever holds it (redis-py drops the cursor of a
            # JUSTID reply, so the entries come along and are read again by fetch).
            res: Any = await r.xautoclaim(stream, self.group, self.name, 0, start_id=cursor,
                                          count=1000)
            cursor = _s(res[0])
            if cursor == "0-0":
                break
        self._own_done = False

    async def _ack_ids(self, ids: list[str]) -> None:
        if ids:
            await self.bus.redis.xack(self.bus.stream, self.group, *ids)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        await self._ack_ids(list(dict.fromkeys(d.token for d in deliveries)))

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.block.aclose()
