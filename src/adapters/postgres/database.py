"""Async engines and sessions (SQLAlchemy + asyncpg)."""

from __future__ import annotations

import time
from typing import Any

import orjson
from sqlalchemy import NullPool, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.util import await_

from adapters.postgres.fair_pool import FairAsyncQueuePool


def async_url(url: str) -> str:
    """Accept postgres://, postgresql://, postgresql+<driver>:// and use asyncpg."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"DATABASE_URL must point at PostgreSQL, got {parsed.get_backend_name()}")
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def sync_url(url: str, driver: str = "psycopg") -> str:
    parsed = make_url(async_url(url))
    return parsed.set(drivername=f"postgresql+{driver}").render_as_string(hide_password=False)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_engine(
    url: str,
    *,
    application_name: str = "cogep-ingest",
    pool_size: int = 5,
    max_overflow: int = 10,
    statement_timeout_ms: int = 30_000,
    pool_timeout_s: float = 30.0,
    pooled: bool = True,
    ping_idle_s: float = 0.1,
) -> AsyncEngine:
    """An engine per process (API) or per task (worker: the seed's pattern, disposed in finally).

    A pooled connection idle for ``ping_idle_s`` or longer is pinged before use (0:
    before every use)."""
    server_settings = {
        "application_name": application_name,
        "jit": "off",  # short OLTP statements; JIT only adds latency here
    }
    if statement_timeout_ms:
        server_settings["statement_timeout"] = str(statement_timeout_ms)
    kwargs: dict[str, Any] = {
        "json_serializer": _json_dumps,
        "json_deserializer": orjson.loads,
        "connect_args": {"server_settings": server_settings, "timeout": 10},
    }
    if pooled:
        kwargs.update(
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout_s,
            poolclass=FairAsyncQueuePool,  # first come, first served under load
        )
    else:
        kwargs["poolclass"] = NullPool
    engine = create_async_engine(async_url(url), **kwargs)
    if pooled:
        _ping_on_checkout(engine, ping_idle_s)
    return engine


_FRESH = "cogep_fresh"
_RETURNED = "cogep_returned"


def _ping_on_checkout(engine: AsyncEngine, idle_s: float) -> None:
    """Pessimistic disconnect handling in one round trip per checkout of a connection
    that has been idle.

    SQLAlchemy's ``pool_pre_ping`` on asyncpg wraps its ping in BEGIN / ROLLBACK (for
    PgBouncer's transaction mode): three round trips before every request's first
    statement. A simple-protocol ``SELECT 1`` is one, prepares no statement (safe
    behind PgBouncer too) and fails on a connection the server has dropped; the pool
    then replaces the connection and tries again (``DisconnectionError``). A
    connection made for this checkout is not pinged: it has just answered.

    Nor is one that came back less than ``idle_s`` ago (HikariCP's "alive bypass
    window"; 500 ms there, 100 ms here): under load every connection comes back within
    tens of milliseconds, and the ping was a round trip per request, ~6% of the API's
    CPU per upload (decision 0008). A server restart takes longer than the window (the
    smallest embedded server: ~0.25 s), so what it cut is still pinged and replaced; a
    single connection killed inside the window fails its request (503, retry), and the
    pool then replaces the connections it held (SQLAlchemy invalidates the pool on a
    disconnect error)."""
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "connect")
    def _connected(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_FRESH] = True

    @event.listens_for(pool, "checkin")
    def _returned(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_RETURNED] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _ping(
        dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
    ) -> None:
        if record.info.pop(_FRESH, False):
            return
        returned = record.info.get(_RETURNED)
        if returned is not None and time.monotonic() - returned < idle_s:
            return
        driver = record.driver_connection
        if driver is None:  # invalidated: the pool connects again
            raise DisconnectionError("the pooled connection is closed")
        try:
            await_(driver.execute("SELECT 1"))
        except Exception as exc:  # any failure: this connection is not to be trusted
            raise DisconnectionError(f"the pooled connection failed its ping: {exc}") from exc


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
