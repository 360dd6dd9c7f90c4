"""The schema comes from Alembic alone and matches the ORM module exactly."""

from __future__ import annotations

import asyncpg
import pytest

from tests.integration.conftest import alembic, create_database, drop_database
from tests.integration.services import Services, unique_database_name


@pytest.fixture
async def empty_database(services: Services):  # type: ignore[no-untyped-def]
    name = unique_database_name("cogep_migrations")
    url = await create_database(services, name)
    yield url
    await drop_database(services, name)


async def test_upgrade_on_an_empty_database_then_autogenerate_finds_no_drift(
    empty_database: str,
) -> None:
    up = alembic(empty_database, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    check = alembic(empty_database, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr


async def test_alembic_check_reports_drift_when_the_database_differs(empty_database: str) -> None:
    assert alembic(empty_database, "upgrade", "head").returncode == 0
    conn = await asyncpg.connect(empty_database)
    try:  # a manual change: exactly what the rules forbid, and what check must catch
        await conn.execute("ALTER TABLE ai.documents ADD COLUMN rogue text")
    finally:
        await conn.close()
    check = alembic(empty_database, "check")
    assert check.returncode != 0
    assert "rogue" in check.stdout + check.stderr


async def test_downgrade_to_base_and_upgrade_again(empty_database: str) -> None:
    assert alembic(empty_database, "upgrade", "head").returncode == 0
    down = alembic(empty_database, "downgrade", "base")
    assert down.returncode == 0, down.stderr
    conn = await asyncpg.connect(empty_database)
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = 'ai'") == 0
    finally:
        await conn.close()
    assert alembic(empty_database, "upgrade", "head").returncode == 0


async def test_the_status_domain_accepts_the_statuses_and_refuses_anything_else(
    database_url: str,
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        for status in ("PENDING", "PROCESSING", "COMPLETED", "FAILED"):
            assert await conn.fetchval("SELECT CAST($1 AS ai.ingestionstatus)", status) == status
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.fetchval("SELECT CAST($1 AS ai.ingestionstatus)", "DONE")
        column_type = await conn.fetchval(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'ai.ingestion_queue'::regclass AND attname = 'status'"
        )
        assert column_type == "ai.ingestionstatus"
        assert await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    finally:
        await conn.close()
