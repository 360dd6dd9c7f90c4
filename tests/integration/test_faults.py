"""Faults with real processes: Redis down during uploads, PostgreSQL restarted
mid-batch, the same Celery message delivered three times at once, a doorbell lost
after commit. The oracle: every accepted document ends COMPLETED with exactly one
chunk set (or FAILED with a reason), with no manual action.

Each test that stops a server runs its own embedded one, so the rest of the suite
never notices, whatever services the suite itself runs on.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.postgres.database import create_engine
from adapters.services.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from application.ports import UnitOfWorkFactory
from domain.model import Document, DocumentType, IngestionJob
from entrypoints.api.app import create_app
from entrypoints.container import build_container, task_uow_factory
from entrypoints.worker.celery_app import PROCESS_BATCH, QUEUE, create_celery_app
from tests.documents import make_pdf_pages
from tests.integration.conftest import alembic, make_settings
from tests.integration.live import running, running_api, wait_until_ready
from tests.integration.oracle import (
    assert_one_chunk_set_each,
    chunks_expected,
    start_beat,
    start_worker,
    statuses,
    upload,
    wait_for_terminal,
)
from tests.integration.services import Services

pytestmark = pytest.mark.slow


def scratch_dir(prefix: str) -> Path:
    # not under pytest's 0700 tmp: as root the embedded PostgreSQL runs as another user
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    folder = scratch_dir("cogep-redis-")
    redis = EmbeddedRedis(folder, persistent=False)
    redis.start()
    yield redis
    redis.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def own_postgres() -> AsyncIterator[tuple[EmbeddedPostgres, AsyncEngine]]:
    folder = scratch_dir("cogep-pg-")
    pg = EmbeddedPostgres(folder / "pg", durable=False, database="cogep")
    pg.start()
    try:
        result = alembic(pg.url, "upgrade", "head")
        assert result.returncode == 0, result.stderr
        engine = create_engine(pg.url, pooled=False)  # survives the restart
        yield pg, engine
        await engine.dispose()
    finally:
        pg.stop()
        shutil.rmtree(folder, ignore_errors=True)


def text_document(n: int) -> bytes:
    return (
        f"Memorando nº {n}/2026: a unidade {n} informa a escala de plantão do setor de "
        f"gestão de pessoas e o registro de frequência do servidor {n}."
    ).encode()


async def insert_documents(
    uow_factory: UnitOfWorkFactory, files: list[tuple[str, DocumentType, bytes]]
) -> list[uuid.UUID]:
    """Documents and PENDING jobs written straight to the queue: no doorbell rung."""
    ids = []
    now = datetime.now(UTC)
    async with uow_factory() as uow:
        for filename, kind, data in files:
            doc = Document(
                uuid.uuid4(), "default", filename, kind, len(data), uuid.uuid4().hex * 2, {}, now
            )
            assert await uow.documents.add(doc, data)
            await uow.jobs.add(IngestionJob.new(doc.id, now, max_attempts=5))
            ids.append(doc.id)
        await uow.commit()
    return ids


async def test_uploads_during_a_redis_outage_all_complete_after_it_returns(
    database_url: str,
    clean_db: AsyncEngine,
    keys: dict[str, str],
    own_redis: EmbeddedRedis,
    tmp_path: Path,
) -> None:
    fast = {"COGEP_SWEEP_INTERVAL_S": "1"}
    worker = start_worker("worker", database_url, own_redis.url, tmp_path, **fast)
    beat = start_beat(database_url, own_redis.url, tmp_path, **fast)
    with (
        running(worker, beat),
        running_api(
            database_url, own_redis.url, extra_env={"COGEP_RATE_LIMIT_PER_MINUTE": "0"}
        ) as url,
    ):
        wait_until_ready(worker)
        accepted: list[uuid.UUID] = []
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            for batch in range(20):
                if batch == 5:
                    own_redis.stop()  # uploads 50..149 happen with no broker at all
                if batch == 15:
                    own_redis.start()  # same port, empty: every doorbell so far is lost
                accepted += await asyncio.gather(
                    *(
                        upload(client, keys["ingest"], f"m{i}.txt", text_document(i))
                        for i in range(batch * 10, batch * 10 + 10)
                    )
                )
        assert len(accepted) == 200  # all 201: the row is the truth, the doorbell optional
        state = await wait_for_terminal(clean_db, 200, 180, [worker, beat])
    assert all(state[i][0] == "COMPLETED" for i in accepted), state
    assert await assert_one_chunk_set_each(clean_db) == 200


async def test_a_postgres_restart_mid_batch_loses_and_duplicates_nothing(
    own_postgres: tuple[EmbeddedPostgres, AsyncEngine],
    services: Services,
    redis_client: object,
    tmp_path: Path,
) -> None:
    pg, engine = own_postgres
    uow_factory = task_uow_factory(engine)
    pages = ["Art. 1º O plantão observará a escala mensal aprovada pela chefia. " * 25] * 3
    pdfs = [make_pdf_pages([*pages, f"norma {n}"]) for n in range(10)]
    await insert_documents(
        uow_factory, [(f"norma-{n}.pdf", DocumentType.PDF, pdf) for n, pdf in enumerate(pdfs)]
    )
    lease = {"COGEP_LEASE_SECONDS": "4", "COGEP_BATCH_SIZE": "4", "COGEP_SWEEP_INTERVAL_S": "1"}
    worker = start_worker("worker", pg.url, services.redis_url, tmp_path, **lease)
    beat = start_beat(pg.url, services.redis_url, tmp_path, **lease)
    with running(worker, beat):
        deadline = time.monotonic() + 60
        while True:
            states = {s for s, _, _ in (await statuses(engine)).values()}
            if "PROCESSING" in states:
                break
            assert time.monotonic() < deadline, worker.log()[-3000:]
            await asyncio.sleep(0.05)
        pg.restart()  # immediate: every connection of the worker is cut mid-batch
        state = await wait_for_terminal(engine, 10, 180, [worker, beat])
    assert all(s[0] == "COMPLETED" for s in state.values()), state
    # exactly the pipeline's chunks of the ten PDFs: nothing lost, nothing stored twice
    expected = chunks_expected([(pdf, DocumentType.PDF.value) for pdf in pdfs])
    assert await assert_one_chunk_set_each(engine) == expected > 10


async def test_pooled_connections_cut_by_a_postgres_restart_are_replaced_before_use(
    own_postgres: tuple[EmbeddedPostgres, AsyncEngine],
) -> None:
    """The API's pooled engine: after a restart every pooled connection is dead; the
    checkout ping finds that and the pool connects again, so no request fails. A
    connection is pinged once it has been idle for the window, and a restart takes
    longer than the window: every connection it cut has been idle that long."""
    pg, _ = own_postgres
    window = 0.05  # an embedded restart takes ~0.25 s on 2 cores
    engine = create_engine(pg.url, pool_size=2, max_overflow=0, ping_idle_s=window)
    try:
        async with engine.connect() as first, engine.connect() as second:
            before = {
                (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                for conn in (first, second)
            }
        returned = time.monotonic()
        pg.restart()
        assert time.monotonic() - returned > window  # what the window relies on
        for _ in range(4):  # more checkouts than the pool holds connections
            async with engine.connect() as conn:
                pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            assert pid not in before
    finally:
        await engine.dispose()


async def test_the_same_message_delivered_three_times_at_once_indexes_once(
    database_url: str,
    services: Services,
    uow_factory: UnitOfWorkFactory,
    clean_db: AsyncEngine,
    redis_client: object,
    tmp_path: Path,
) -> None:
    workers = [
        start_worker(f"worker-{i}", database_url, services.redis_url, tmp_path) for i in range(3)
    ]
    with running(*workers):
        for w in workers:
            wait_until_ready(w)
        ids = await insert_documents(  # queued without any doorbell
            uow_factory,
            [(f"memorando-{n}.txt", DocumentType.TEXT, text_document(n)) for n in range(24)],
        )
        app = create_celery_app(make_settings(database_url, services.redis_url))
        senders = [
            threading.Thread(
                target=app.send_task,
                args=(PROCESS_BATCH,),
                kwargs={"kwargs": {"batch_size": 8}, "task_id": "the-same-message", "queue": QUEUE},
            )
            for _ in range(3)
        ]
        for t in senders:
            t.start()
        for t in senders:
            t.join()
        state = await wait_for_terminal(clean_db, len(ids), 120, workers)
        deliveries = sum(w.log().count("[the-same-message] received") for w in workers)
    assert deliveries == 3
    assert all(state[i] == ("COMPLETED", 1, None) for i in ids), state
    assert await assert_one_chunk_set_each(clean_db) == len(ids)


async def test_a_doorbell_lost_after_commit_is_rung_again_by_the_sweeper(
    database_url: str,
    services: Services,
    clean_db: AsyncEngine,
    redis_client: aioredis.Redis,
    tmp_path: Path,
) -> None:
    # the API's broker is unreachable: commits succeed, every publish fails
    failures_before = REGISTRY.get_sample_value("cogep_doorbell_failures_total") or 0.0
    dead = f"redis://127.0.0.1:{free_port()}/0"
    container = build_container(make_settings(database_url, dead))
    key = (await container.api_keys().create("k", ["ingest"])).plaintext
    transport = httpx.ASGITransport(app=create_app(container), raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            ids = [await upload(client, key, f"m{i}.txt", text_document(i)) for i in range(12)]
        await container.api_doorbell().flush()
        failures = REGISTRY.get_sample_value("cogep_doorbell_failures_total") or 0.0
        assert failures > failures_before  # the doorbell really was lost
    finally:
        await container.api_doorbell().close()
        await container.engine().dispose()
        container.unwire()
    worker = start_worker("worker", database_url, services.redis_url, tmp_path)
    with running(worker):
        wait_until_ready(worker)
        # nobody rang: no doorbell in the broker, none received, the jobs wait committed
        assert await redis_client.llen(QUEUE) == 0
        assert "received" not in worker.log()
        assert {s for s, _, _ in (await statuses(clean_db)).values()} == {"PENDING"}
        beat = start_beat(database_url, services.redis_url, tmp_path)
        with running(beat):
            state = await wait_for_terminal(clean_db, len(ids), 120, [worker, beat])
    assert all(state[i][0] == "COMPLETED" for i in ids)
    assert await assert_one_chunk_set_each(clean_db) == len(ids)
