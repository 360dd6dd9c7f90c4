"""The pooled engine against real PostgreSQL: what a checkout costs on the wire."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from adapters.postgres.database import create_engine
from adapters.postgres.fair_pool import FairAsyncQueuePool
from entrypoints.api.problems import UNAVAILABLE


async def test_a_checkout_pings_in_one_query_and_a_new_connection_not_at_all(
    database_url: str,
) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0, ping_idle_s=0)
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


async def test_a_connection_back_within_the_window_is_not_pinged_and_an_idle_one_is(
    database_url: str,
) -> None:
    window = 0.3
    engine = create_engine(database_url, pool_size=1, max_overflow=0, ping_idle_s=window)
    logged: list[str] = []
    try:
        async with engine.connect() as conn:  # made for this checkout
            driver = (await conn.get_raw_connection()).driver_connection
            assert driver is not None
            driver.add_query_logger(lambda record: logged.append(record.query))
        async with engine.connect() as conn:  # back a moment ago: used as it is
            await asyncio.sleep(0)  # asyncpg hands query records to loggers with call_soon
            assert logged == []
            assert (await conn.get_raw_connection()).driver_connection is driver
        await asyncio.sleep(window + 0.1)
        async with engine.connect():  # idle for longer than the window: pinged
            await asyncio.sleep(0)
            assert logged == ["SELECT 1"]
    finally:
        await engine.dispose()


async def test_a_connection_killed_within_the_window_fails_once_then_is_replaced(
    database_url: str,
) -> None:
    """The window's price: a connection the server dropped less than the window after
    its last use fails the statement that finds it dead (SQLAlchemy's disconnect
    error, which the API answers with a 503); the pool then connects again."""
    engine = create_engine(database_url, pool_size=1, max_overflow=0, ping_idle_s=60)
    try:
        async with engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        killer = await asyncpg.connect(database_url)
        try:
            assert await killer.fetchval("SELECT pg_terminate_backend($1)", pid) is True
        finally:
            await killer.close()
        await asyncio.sleep(0.2)  # the server has closed its end
        with pytest.raises(DBAPIError) as failed:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT pg_backend_pid()"))
        assert failed.value.connection_invalidated
        assert isinstance(failed.value, UNAVAILABLE)  # 503 + Retry-After, never a 500
        async with engine.connect() as conn:
            again = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert again != pid
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
