"""The connection pool skips asyncpg's per-release reset query (one round trip per pooled call);
what pooled connections rely on must still hold."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from jobline.shared.platform.connections import create_pool
from jobline.testing import wait_until


async def test_released_connection_in_a_transaction_is_rolled_back(database_url: str) -> None:
    pool = await create_pool(database_url, max_size=1)
    try:
        await pool.execute("CREATE TABLE pool_probe (v int)")
        conn = await pool.acquire()
        tx = conn.transaction()
        await tx.start()
        await conn.execute("INSERT INTO pool_probe VALUES (1)")
        # released mid-transaction (e.g. a cancelled request): nothing may leak into the next use
        await pool.release(conn)
        assert await pool.fetchval("SELECT count(*) FROM pool_probe") == 0
        assert await pool.fetchval("SELECT pg_current_xact_id_if_assigned()") is None
    finally:
        await pool.close()


async def test_transaction_scoped_advisory_lock_is_free_after_release(database_url: str) -> None:
    pool = await create_pool(database_url, max_size=2)
    try:
        async with pool.acquire() as conn, conn.transaction():
            assert await conn.fetchval("SELECT pg_try_advisory_xact_lock(4242)")
        # another connection can take it at once: nothing session-scoped was left behind
        async with pool.acquire() as a, pool.acquire() as b:
            async with a.transaction():
                assert await a.fetchval("SELECT pg_try_advisory_xact_lock(4242)")
            async with b.transaction():
                assert await b.fetchval("SELECT pg_try_advisory_xact_lock(4242)")
    finally:
        await pool.close()


async def test_cancelled_query_does_not_poison_the_pool(database_url: str) -> None:
    pool = await create_pool(database_url, max_size=1)
    watcher = await asyncpg.connect(database_url)
    try:
        task = asyncio.create_task(pool.fetchval("SELECT pg_sleep(5) AS probe"))
        await wait_until(lambda: watcher.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(5) AS probe'"
            " AND state = 'active'"), message="query running on the server")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.wait_for(pool.fetchval("SELECT 41 + 1"), 5) == 42
    finally:
        await watcher.close()
        await pool.close()
