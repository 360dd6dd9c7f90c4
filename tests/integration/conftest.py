"""Fixtures over real services: PostgreSQL 16 + pgvector and Redis (see services.py)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.database import create_engine, session_factory
from adapters.postgres.unit_of_work import SqlAlchemyUnitOfWork
from application.ports import UnitOfWorkFactory
from tests.integration.services import Services, provide_services, unique_database_name

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    with provide_services() as running:
        yield running


async def create_database(services: Services, name: str) -> str:
    conn = await asyncpg.connect(services.server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return services.database_url(name)


async def drop_database(services: Services, name: str) -> None:
    conn = await asyncpg.connect(services.server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def alembic(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the alembic CLI exactly as a developer would, against `url`."""
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"url={url}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="session")
async def database_url(services: Services) -> AsyncIterator[str]:
    name = unique_database_name()
    url = await create_database(services, name)
    result = alembic(url, "upgrade", "head")
    assert result.returncode == 0, result.stderr
    yield url
    await drop_database(services, name)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url, application_name="cogep-tests")
    yield eng
    await eng.dispose()


async def truncate_all(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        tables = (
            (await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'ai'")))
            .scalars()
            .all()
        )
        if tables:
            await conn.execute(
                text("TRUNCATE " + ", ".join(f"ai.{t}" for t in tables) + " CASCADE")
            )


@pytest.fixture
async def clean_db(engine: AsyncEngine) -> AsyncEngine:
    await truncate_all(engine)
    return engine


@pytest.fixture
def uow_factory(clean_db: AsyncEngine) -> UnitOfWorkFactory:
    sessions = session_factory(clean_db)
    return lambda: SqlAlchemyUnitOfWork(sessions)
