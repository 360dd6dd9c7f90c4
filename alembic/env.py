"""Alembic environment: async (asyncpg), URL from the settings, schema `ai` only.

The URL is, in order: a connection handed over by the caller
(``config.attributes["connection"]``), ``config.attributes["url"]``, ``-x url=...``,
then DATABASE_URL from the settings (environment / .env).
"""

from __future__ import annotations

import asyncio
from typing import Any

from alembic import context
from sqlalchemy import Enum
from sqlalchemy.dialects.postgresql import DOMAIN
from sqlalchemy.engine import Connection
from sqlalchemy.sql.schema import SchemaItem

from adapters.postgres.database import create_engine
from adapters.postgres.orm import SCHEMA, Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    if url:
        return str(url)
    from entrypoints.settings import Settings

    return Settings().require_database_url()


def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
    if type_ == "schema":
        return name == SCHEMA
    return True


def include_object(
    obj: SchemaItem, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    # the version table lives in `public`; everything of ours in `ai`
    return not (type_ == "table" and name == "alembic_version")


def compare_type(
    ctx: Any, inspected_column: Any, metadata_column: Any, inspected_type: Any, metadata_type: Any
) -> bool | None:
    """The status column is the DOMAIN ai.ingestionstatus in the database and the seed's
    ``Enum(IngestionStatus, schema="ai", native_enum=False)`` in the ORM: the same type."""
    if isinstance(inspected_type, DOMAIN) and inspected_type.name == "ingestionstatus":
        return not (isinstance(metadata_type, Enum) and metadata_type.native_enum is False)
    return None  # default comparison


def _configure(connection: Connection | None = None, **kw: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_schemas=True,
        include_name=include_name,
        include_object=include_object,
        compare_type=compare_type,
        compare_server_default=False,
        transaction_per_migration=True,
        **kw,
    )


def run_migrations_offline() -> None:
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_url(), application_name="cogep-alembic", pooled=False)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_sync(connection)
        return
    asyncio.run(_run_async())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
