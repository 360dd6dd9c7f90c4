"""The pooled engine against real PostgreSQL: what a checkout costs on the wire."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text

from adapters.postgres.database import create_engine
from adapters.postgres.fair_pool import FairAsyncQueuePool


async def test_a_checkout_pings_in_one_query_and_a_new_connection_not_at_all(
    database_url: str,
) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    logged: list[str] = []

    def log(record: Any) -> None:
        logged.append(record.query)

    try:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            driver.add_query_logger(log)
            # the connection was made for this checkout: nothing was sent before this
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
        await asyncio.sleep(0)
        assert logged == ["BEGIN;", "ROLLBACK;"]  # the statement's transaction, reset on return
        logged.clear()
        async with engine.connect() as conn:
            await asyncio.sleep(0)  # asyncpg hands query records to loggers with call_soon
            # a pooled connection: one query, no BEGIN / ROLLBACK around it
            assert logged == ["SELECT 1"]
            assert (await conn.get_raw_connection()).driver_connection is driver
    finally:
        await engine.dispose()


async def test_a_wait_for_a_connection_still_ends_at_the_pool_timeout(database_url: str) -> None:
    """The first-come, first-served pool (adapters/postgres/fair_pool.py) keeps the
    pool's bound on a wait, and an abandoned wait does not keep the connection."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    engine = create_engine(database_url, pool_size=1, max_overflow=0, pool_timeout_s=0.2)
    assert isinstance(engine.sync_engine.pool, FairAsyncQueuePool)
    try:
        async with engine.connect():
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            try:
                async with engine.connect():
                    raise AssertionError("the pool's only connection is in use")
            except PoolTimeout:
                pass
            assert 0.15 < loop.time() - t0 < 2.0
        # the connection is free again, and the abandoned wait did not keep it
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await engine.dispose()
