"""Batch id generation used by bulk submit: the same guarantees as one uuid7() per job."""

from __future__ import annotations

import uuid

from jobline.shared.platform.ids import uuid7, uuid7_many, uuid7_ms


def test_uuid7_many_is_monotonic_unique_and_well_formed() -> None:
    now = 1_900_000_000_000
    ids = uuid7_many(now, 10_000)  # > 4096: the 12-bit counter overflows into the next ms
    assert len(set(ids)) == 10_000
    assert ids == sorted(ids)
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert uuid7_ms(ids[0]) == now
    assert now < uuid7_ms(ids[-1]) <= now + 3


def test_uuid7_many_continues_the_single_id_sequence() -> None:
    now = 1_900_000_100_000
    a = uuid7(now)
    batch = uuid7_many(now, 5)
    b = uuid7(now)
    assert a < batch[0] and batch == sorted(batch) and batch[-1] < b
    assert uuid7_many(now, 0) == []


def test_uuid7_many_random_bits_differ() -> None:
    ids = uuid7_many(1_900_000_200_000, 2_000)
    low = {i.int & 0x3FFF_FFFF_FFFF_FFFF for i in ids}
    assert len(low) == 2_000
