"""Fixtures over real services: PostgreSQL 16 + pgvector and Redis (see services.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from dependency_injector import providers
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.database import create_engine, session_factory
from adapters.postgres.unit_of_work import SqlAlchemyUnitOfWork
from adapters.services.embedded import free_port
from application.ports import UnitOfWorkFactory
from application.use_cases.process_batch import BatchReport, ProcessBatch
from entrypoints.api.app import create_app
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings
from tests.integration.live import running, running_api, wait_until_answering, wait_until_ready
from tests.integration.services import Services, provide_services, unique_database_name
from tests.rerank_scorer import scorer_answers

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


# -- the API over real services --------------------------------------------------------


TEST_DATA_DIR = Path(tempfile.gettempdir()) / "cogep-test-data"


@pytest.fixture(scope="session", autouse=True)
def _test_data_dir() -> Iterator[None]:
    yield
    shutil.rmtree(TEST_DATA_DIR, ignore_errors=True)


def make_settings(database_url: str, redis_url: str, **overrides: object) -> Settings:
    base: dict[str, object] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "max_upload_bytes": 200_000,
        "rate_limit_per_minute": 100_000,
        # revocations show at once here; test_api_auth checks the real cache's bound
        "auth_cache_s": 0.0,
        "batch_size": 8,
        "data_dir": str(TEST_DATA_DIR),
    }
    base.update(overrides)
    return Settings(_env_file=None, **base)  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str, services: Services) -> Settings:
    return make_settings(database_url, services.redis_url)


_SHARED: dict[tuple[object, ...], object] = {}


def shared_model_container(settings: Settings) -> Container:
    """A container whose model, tokenizer and token counter are loaded once per test
    session. Each container would load its own (the tokenizer alone holds ~300 MB of
    native memory that is never given back), and the suite builds one per test."""
    c = build_container(settings)
    shared: dict[str, providers.Provider[Any]] = {
        "e5_tokenizer": c.e5_tokenizer,
        "token_counter": c.token_counter,
    }
    if settings.embedding_backend == "local":
        shared["embedder"] = c.embedder
    model = (settings.embedding_variant, settings.embedding_runtime, settings.embedding_threads)
    for name, provider in shared.items():
        key = (name, *model)
        if key not in _SHARED:
            _SHARED[key] = provider()
        provider.override(providers.Object(_SHARED[key]))
    return c


@pytest.fixture
async def container(settings: Settings, clean_db: AsyncEngine) -> AsyncIterator[Container]:
    c = shared_model_container(settings)
    yield c
    await c.api_doorbell().close()
    await c.engine().dispose()
    c.unwire()


@pytest.fixture
async def process(container: Container) -> AsyncIterator[Callable[[], Awaitable[BatchReport]]]:
    """The worker's ProcessBatch in this process (the real sandbox, chunker, model and
    PostgreSQL): one call claims and processes one batch."""
    handler = container.process_batch(uow_factory=container.uow_factory())

    async def run() -> BatchReport:
        return await handler(ProcessBatch(batch_size=8, worker_id="test-worker"))

    yield run
    container.extractor().close()
    container.fast_extractor().close()


@pytest.fixture
async def redis_client(services: Services) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(services.redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
async def client(
    container: Container, redis_client: aioredis.Redis
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(container)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def keys(container: Container) -> dict[str, str]:
    api_keys = container.api_keys()
    out = {}
    for name, scopes in {
        "admin": ["admin"],
        "ingest": ["ingest"],
        "read": ["read"],
        "ingest_read": ["ingest", "read"],
    }.items():
        out[name] = (await api_keys.create(name, scopes)).plaintext
    return out


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def live_platform(
    database_url: str, services: Services, clean_db: AsyncEngine, tmp_path: Path
) -> Iterator[str]:
    """The API under uvicorn and a Celery worker, as deployed (its URL)."""
    from tests.integration.oracle import start_worker  # it imports this module

    worker = start_worker("worker", database_url, services.redis_url, tmp_path)
    with running(worker), running_api(database_url, services.redis_url) as url:
        wait_until_ready(worker)
        yield url


@pytest.fixture(scope="session")
def scorer() -> Iterator[str]:
    """tests/rerank_scorer.py in its own process: /rerank, and /v1/embeddings of the
    platform's e5 model at any smaller dimension (its URL)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.rerank_scorer", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(lambda: scorer_answers(url), "the scorer", proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(20)
