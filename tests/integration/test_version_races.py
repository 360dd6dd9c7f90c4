"""Cancel, delete, reprocess and new versions against a real Celery worker at work.

- A cancel or a DELETE of a document the worker is embedding stops that work within a
  slice: the rest of its batch completes seconds later, and the cancelled document
  leaves no chunk, posting or statistic behind.
- The store window: a test transaction takes an EXCLUSIVE lock on ai.keyword_stats, so
  the worker's store blocks at its last step while it holds the key, the document, the
  job and the new chunks. DELETE, reprocess and a new version arrive in that window:
  none deadlocks or answers 500, and the outcome is the documented one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from entrypoints.settings import Settings
from tests.integration.conftest import auth, make_settings
from tests.integration.live import Process, running, wait_until_ready
from tests.integration.oracle import start_worker
from tests.integration.services import Services
from tests.integration.test_keyword_index import assert_statistics_exact

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("redis_client")]


@pytest.fixture
def settings(database_url: str, services: Services) -> Settings:
    return make_settings(database_url, services.redis_url, max_upload_bytes=3_000_000)


def long_text(tag: str, paragraphs: int = 3000) -> str:
    """A long regulation: 3,000 distinct articles, about a thousand chunks on one
    embedding thread, so a cancel that did not stop the work would be plain to see."""
    return "\n\n".join(
        f"Art. {i}º O servidor lotado na unidade {tag}-{i} observará o regime de plantão "
        f"número {i * 7 % 1000}, com escala de {i % 24} horas e compensação em {i % 30} "
        "dias, conforme a tabela de frequência aprovada pela chefia imediata."
        for i in range(1, paragraphs + 1)
    )


async def send(client: httpx.AsyncClient, key: str, body: str, **fields: Any) -> str:
    r = await client.post("/v1/documents/text", json={"text": body, **fields}, headers=auth(key))
    assert r.status_code in (200, 201), r.text
    return str(r.json()["id"])


async def job_of(engine: AsyncEngine, doc_id: str) -> tuple[str, str, str | None] | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT status, stage, last_error FROM ai.ingestion_queue "
                    "WHERE document_id = :d"
                ),
                {"d": uuid.UUID(doc_id)},
            )
        ).first()
    return (row.status, row.stage, row.last_error) if row else None


async def wait_for(
    engine: AsyncEngine, doc_id: str, accept: set[str], within_s: float, worker: Process
) -> tuple[str, str, str | None]:
    deadline = time.monotonic() + within_s
    while True:
        state = await job_of(engine, doc_id)
        if state is not None and (state[0] in accept or state[1] in accept):
            return state
        assert worker.proc.poll() is None, worker.log()[-3000:]
        assert time.monotonic() < deadline, (state, worker.log()[-3000:])
        await asyncio.sleep(0.1)


async def chunks_of(engine: AsyncEngine, doc_id: str) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text("SELECT count(*) FROM ai.chunks WHERE document_id = :d"),
                    {"d": uuid.UUID(doc_id)},
                )
            ).scalar_one()
        )


@pytest.fixture
async def worker(
    database_url: str, services: Services, clean_db: AsyncEngine, tmp_path: Path
) -> AsyncIterator[Process]:
    proc = start_worker(
        "worker",
        database_url,
        services.redis_url,
        tmp_path,
        COGEP_EMBEDDING_BATCH_SIZE="16",
        COGEP_LEASE_SECONDS="60",
    )
    with running(proc):
        wait_until_ready(proc)
        yield proc


async def test_cancel_and_delete_stop_the_work_within_seconds_and_write_nothing(
    client: httpx.AsyncClient, keys: dict[str, str], clean_db: AsyncEngine, worker: Process
) -> None:
    key = keys["ingest_read"]
    for stop in ("cancel", "delete"):
        big = await send(client, key, long_text(stop), collection="rh", filename=f"{stop}.txt")
        small = await send(
            client, key, f"Art. 1º Aviso {stop}: o ponto é eletrônico.", collection="rh"
        )
        await wait_for(clean_db, big, {"embedding"}, 120, worker)
        await asyncio.sleep(1.0)  # well into the first slices of the big one
        t0 = time.monotonic()
        if stop == "cancel":
            r = await client.post(f"/v1/documents/{big}/cancel", headers=auth(key))
            assert r.status_code == 200, r.text
            assert r.json()["last_error"] == "cancelled at embedding on request"
        else:
            r = await client.delete(f"/v1/documents/{big}", headers=auth(keys["admin"]))
            assert r.status_code == 204, r.text
        answered = time.monotonic() - t0
        # the rest of the batch goes on and completes within a few slices
        await wait_for(clean_db, small, {"COMPLETED"}, 60, worker)
        took = time.monotonic() - t0
        assert answered < 2.0, answered  # the API never waits for the worker
        assert took < 20.0, (stop, took, worker.log()[-2000:])
        assert await chunks_of(clean_db, big) == 0
        if stop == "cancel":
            state = await job_of(clean_db, big)
            assert state is not None and state[0] == "FAILED"
        else:
            assert await job_of(clean_db, big) is None
    assert "its embedding stops" in worker.log()
    await assert_statistics_exact(clean_db)


@contextlib.asynccontextmanager
async def store_window(engine: AsyncEngine) -> AsyncIterator[None]:
    """Hold the worker inside its store: a transaction locks ai.keyword_stats, the
    store's last write, so the store waits there while it holds the key, document and
    job locks and its new chunks. The window closes (rollback) when the block ends."""
    async with engine.connect() as conn:
        await conn.begin()
        await conn.execute(text("LOCK TABLE ai.keyword_stats IN EXCLUSIVE MODE"))
        try:
            yield
        finally:
            await conn.rollback()


async def wait_until_blocked(engine: AsyncEngine, query_part: str, within_s: float = 60) -> None:
    """Until a backend of this database waits on a lock in a statement with query_part."""
    deadline = time.monotonic() + within_s
    while True:
        async with engine.connect() as conn:
            n = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock' AND query LIKE :q"
                    ),
                    {"q": f"%{query_part}%"},
                )
            ).scalar_one()
        if n:
            return
        assert time.monotonic() < deadline, f"nothing blocked on {query_part!r}"
        await asyncio.sleep(0.05)


async def test_delete_reprocess_and_a_new_version_in_the_store_window(
    client: httpx.AsyncClient, keys: dict[str, str], clean_db: AsyncEngine, worker: Process
) -> None:
    key, admin = keys["ingest_read"], keys["admin"]
    body = "Art. 1º O adicional noturno é devido das 22 horas às 5 horas. Versão {}."

    # DELETE while the worker stores: it waits for the store, then deletes; 204
    async with store_window(clean_db):
        doomed = await send(client, key, body.format(1), collection="rh", source_key="delete-me")
        await wait_until_blocked(clean_db, "keyword_stats")
        deleting = asyncio.create_task(
            client.delete(f"/v1/documents/{doomed}", headers=auth(admin))
        )
        await asyncio.sleep(1.0)
        assert not deleting.done()  # it waits for the store's key lock, it does not fail
    response = await asyncio.wait_for(deleting, 30)
    assert response.status_code == 204, response.text
    assert await job_of(clean_db, doomed) is None and await chunks_of(clean_db, doomed) == 0

    # reprocess while the worker stores: 409 would be wrong only if it had finished;
    # it waits for the store, finds the job COMPLETED and queues it again
    async with store_window(clean_db):
        again = await send(client, key, body.format(2), collection="rh", source_key="again")
        await wait_until_blocked(clean_db, "keyword_stats")
        reprocessing = asyncio.create_task(
            client.post(f"/v1/documents/{again}/reprocess", headers=auth(admin))
        )
        await asyncio.sleep(1.0)
        assert not reprocessing.done()
    response = await asyncio.wait_for(reprocessing, 30)
    assert response.status_code == 202, response.text
    await wait_for(clean_db, again, {"COMPLETED"}, 60, worker)
    assert await chunks_of(clean_db, again) > 0

    # a new version while the old one stores: accepted at once as version 2; the old
    # one becomes current first, then the new one supersedes it
    async with store_window(clean_db):
        v1 = await send(client, key, body.format(3), collection="rh", source_key="nota")
        await wait_until_blocked(clean_db, "keyword_stats")
        new_version = asyncio.create_task(
            client.post(
                "/v1/documents/text",
                json={"text": body.format(4), "collection": "rh", "source_key": "nota"},
                headers=auth(key),
            )
        )
        await asyncio.sleep(1.0)
        assert not new_version.done()  # it waits for the key the store holds
    response = await asyncio.wait_for(new_version, 30)
    assert response.status_code == 201, response.text
    v2 = response.json()
    assert v2["version"] == 2
    await wait_for(clean_db, v2["id"], {"COMPLETED"}, 60, worker)
    r = await client.get(f"/v1/documents/{v1}/versions", headers=auth(key))
    assert [(v["version"], v["current"]) for v in r.json()["versions"]] == [(2, True), (1, False)]
    assert "deadlock" not in worker.log().lower()
    async with clean_db.connect() as conn:
        orphans = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM ai.chunks c LEFT JOIN ai.documents d "
                    "ON d.id = c.document_id WHERE d.id IS NULL"
                )
            )
        ).scalar_one()
    assert orphans == 0
    await assert_statistics_exact(clean_db)
