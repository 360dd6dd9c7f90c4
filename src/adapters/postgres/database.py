"""Async engines and sessions (SQLAlchemy + asyncpg)."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import NullPool, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


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
) -> AsyncEngine:
    """An engine per process (API) or per task (worker: the seed's pattern, disposed in finally)."""
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
            pool_pre_ping=True,
        )
    else:
        kwargs["poolclass"] = NullPool
    return create_async_engine(async_url(url), **kwargs)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
