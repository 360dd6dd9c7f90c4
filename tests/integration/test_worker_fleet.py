"""worker_service end to end: real Celery worker processes, real Redis, real
PostgreSQL + pgvector, the real embedding model.

The oracle for every test: each accepted document ends COMPLETED (with exactly one
chunk set: chunk_count rows at positions 0..n-1, each with a vector of the model)
or FAILED with a reason.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.documents import (
    docx_with_entity,
    docx_zip_bomb,
    guia_markdown,
    lei_ferias_pdf,
    make_pdf,
    make_pdf_pages,
    manual_html,
    portaria_docx,
)
from tests.integration.conftest import auth
from tests.integration.live import Process, running, start_process, wait_until_ready
from tests.integration.services import Services

MODEL = "multilingual-e5-small-q4"

pytestmark = pytest.mark.usefixtures("redis_client")  # a flushed broker per test


async def upload(
    client: httpx.AsyncClient, key: str, name: str, data: bytes, collection: str = "default"
) -> uuid.UUID:
    response = await client.post(
        "/v1/documents",
        headers=auth(key),
        files={"file": (name, data)},
        data={"collection": collection},
    )
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["id"])


async def statuses(engine: AsyncEngine) -> dict[uuid.UUID, tuple[str, int, str | None]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT document_id, status, attempts, last_error FROM ai.ingestion_queue")
        )
        return {r.document_id: (r.status, r.attempts, r.last_error) for r in rows}


async def wait_for_terminal(
    engine: AsyncEngine, expected: int, within_s: float, processes: Sequence[Process] = ()
) -> dict[uuid.UUID, tuple[str, int, str | None]]:
    deadline = time.monotonic() + within_s
    while True:
        state = await statuses(engine)
        done = [s for s in state.values() if s[0] in ("COMPLETED", "FAILED")]
        if len(state) == expected and len(done) == expected:
            return state
        for p in processes:
            assert p.proc.poll() is None, f"{p.name} died:\n{p.log()[-3000:]}"
        if time.monotonic() > deadline:
            counts: dict[str, int] = {}
            for s in state.values():
                counts[s[0]] = counts.get(s[0], 0) + 1
            logs = "\n".join(f"--- {p.name}\n{p.log()[-2000:]}" for p in processes)
            raise AssertionError(f"not finished after {within_s:.0f}s: {counts}\n{logs}")
        await asyncio.sleep(0.2)


async def assert_one_chunk_set_each(engine: AsyncEngine) -> int:
    """Every COMPLETED document has exactly one chunk set with vectors of the model."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    """
                    SELECT d.id, d.chunk_count, q.status,
                           count(c.id) AS n,
                           coalesce(min(c.position), 0) AS lo,
                           coalesce(max(c.position), -1) AS hi,
                           count(DISTINCT c.position) AS distinct_positions,
                           bool_and(c.model_name = :model AND c.embedding_dim = 384
                                    AND vector_dims(c.embedding) = 384) AS model_ok
                    FROM ai.documents d
                    JOIN ai.ingestion_queue q ON q.document_id = d.id
                    LEFT JOIN ai.chunks c ON c.document_id = d.id
                    GROUP BY d.id, d.chunk_count, q.status
                    """
                ),
                {"model": MODEL},
            )
        ).all()
    total = 0
    for r in rows:
        if r.status == "COMPLETED":
            assert r.n > 0 and r.n == r.chunk_count == r.distinct_positions, r
            assert (r.lo, r.hi) == (0, r.n - 1), r
            assert r.model_ok, r
            total += r.n
        else:
            assert r.n == 0, r  # a failed document leaves no chunks behind
    return total


def worker_env(**overrides: str) -> dict[str, str]:
    env = {
        "COGEP_EMBEDDING_THREADS": "1",
        "COGEP_BATCH_SIZE": "8",
        "COGEP_LEASE_SECONDS": "30",
        "COGEP_EXTRACTION_TIMEOUT_S": "20",
        "COGEP_SWEEP_INTERVAL_S": "0.5",
    }
    env.update(overrides)
    return env


def start_worker(name: str, url: str, services: Services, tmp_path: Path, **env: str) -> Process:
    return start_process(name, "worker", url, services.redis_url, tmp_path, **worker_env(**env))


async def test_a_mixed_batch_completes_and_poison_documents_fail_with_reasons(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    database_url: str,
    services: Services,
    clean_db: AsyncEngine,
    tmp_path: Path,
) -> None:
    key = keys["ingest"]
    good = {
        await upload(client, key, "lei-8112.pdf", lei_ferias_pdf()): "pdf",
        await upload(client, key, "portaria.docx", portaria_docx()): "docx",
        await upload(client, key, "manual.html", manual_html()): "html",
        await upload(client, key, "guia.md", guia_markdown()): "md",
        await upload(
            client, key, "nota.txt", "Nota técnica: o ponto eletrônico é obrigatório.".encode()
        ): "txt",
        await upload(
            client,
            key,
            "longo.pdf",
            make_pdf_pages(
                [
                    f"Art. {i}º O servidor em exercício na unidade {i} observará a jornada "
                    "de quarenta horas semanais, ressalvados os casos previstos em lei. " * 6
                    for i in range(1, 9)
                ]
            ),
        ): "pdf-8-pages",
    }
    poison = {
        await upload(client, key, "bomba.docx", docx_zip_bomb()): "zip bomb",
        await upload(client, key, "entidade.docx", docx_with_entity()): "DTD or XML entities",
        await upload(client, key, "quebrado.pdf", lei_ferias_pdf()[:300]): "PDF cannot be read",
        await upload(client, key, "vazio.pdf", make_pdf([], title="")): "no text",
    }
    worker = start_worker("worker", database_url, services, tmp_path)
    with running(worker):
        state = await wait_for_terminal(clean_db, len(good) + len(poison), 120, [worker])
    for doc_id, kind in good.items():
        assert state[doc_id][0] == "COMPLETED", (kind, state[doc_id])
        assert state[doc_id][1] == 1
    for doc_id, reason in poison.items():
        status, _, error = state[doc_id]
        assert status == "FAILED", (reason, state[doc_id])
        assert error and reason in error, (reason, error)
    assert await assert_one_chunk_set_each(clean_db) >= len(good)
    async with clean_db.connect() as conn:
        # the seed's rule held: every task disposed its engine, no connection lingers
        lingering = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = 'cogep-worker' AND datname = current_database()"
                )
            )
        ).scalar_one()
        pages = (
            await conn.execute(
                text(
                    "SELECT max(page_end) FROM ai.chunks c JOIN ai.documents d "
                    "ON d.id = c.document_id WHERE d.filename = 'longo.pdf'"
                )
            )
        ).scalar_one()
    assert lingering == 0
    assert pages == 8


@pytest.mark.slow
async def test_four_workers_share_200_jobs_and_process_each_exactly_once(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    database_url: str,
    services: Services,
    clean_db: AsyncEngine,
    tmp_path: Path,
) -> None:
    workers = [start_worker(f"worker-{i}", database_url, services, tmp_path) for i in range(4)]
    with running(*workers):
        for w in workers:
            wait_until_ready(w)
        for i in range(200):
            body = f"Ofício nº {i}/2026: o servidor {i} solicita averbação de tempo de serviço."
            await upload(client, keys["ingest"], f"oficio-{i}.txt", body.encode())
        state = await wait_for_terminal(clean_db, 200, 240, workers)
        logs = [w.log() for w in workers]
    assert all(s == ("COMPLETED", 1, None) for s in state.values()), {
        s for s in state.values() if s != ("COMPLETED", 1, None)
    }
    assert await assert_one_chunk_set_each(clean_db) == 200
    # the doorbell fan-out woke the fleet: more than one worker did the work
    assert sum("batch done" in log for log in logs) >= 2


@pytest.mark.slow
async def test_a_killed_worker_holding_jobs_loses_nothing(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    database_url: str,
    services: Services,
    clean_db: AsyncEngine,
    tmp_path: Path,
) -> None:
    lease = {"COGEP_LEASE_SECONDS": "3", "COGEP_BATCH_SIZE": "4"}
    pages = [
        "Art. 1º O adicional noturno é devido pelo trabalho entre 22 horas e 5 horas. " * 20
    ] * 3
    ids = [
        await upload(client, keys["ingest"], f"norma-{i}.pdf", make_pdf_pages([*pages, f"{i}"]))
        for i in range(6)
    ]
    doomed = start_worker("doomed", database_url, services, tmp_path, **lease)
    held: set[uuid.UUID] = set()
    deadline = time.monotonic() + 60
    while not held:
        assert time.monotonic() < deadline, doomed.log()[-3000:]
        async with clean_db.connect() as conn:
            held = set(
                (
                    await conn.execute(
                        text(
                            "SELECT document_id FROM ai.ingestion_queue "
                            "WHERE status = CAST('PROCESSING' AS ai.ingestionstatus) "
                            "AND locked_by LIKE :me"
                        ),
                        {"me": f"%:{doomed.pid}:%"},
                    )
                ).scalars()
            )
        await asyncio.sleep(0.02)
    doomed.kill()  # kill -9, mid-batch: its claims stay PROCESSING until their lease ends
    survivor = start_worker("survivor", database_url, services, tmp_path, **lease)
    beat = start_process(
        "beat", "beat", database_url, services.redis_url, tmp_path, **worker_env(**lease)
    )
    with running(survivor, beat):
        state = await wait_for_terminal(clean_db, len(ids), 180, [survivor, beat])
    assert all(state[i][0] == "COMPLETED" for i in ids), state
    assert all(state[i][1] == 2 for i in held)  # claimed by the dead worker, then once more
    assert await assert_one_chunk_set_each(clean_db) > 0
