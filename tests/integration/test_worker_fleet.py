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
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.services.embedded import free_port
from tests.documents import (
    docx_with_entity,
    docx_zip_bomb,
    guia_markdown,
    lei_ferias_pdf,
    make_pdf,
    make_pdf_pages,
    manual_html,
    pdf_bomb,
    portaria_docx,
)
from tests.integration.conftest import auth
from tests.integration.live import running, running_api, wait_until_ready
from tests.integration.oracle import (
    assert_one_chunk_set_each,
    chunks_expected,
    start_beat,
    start_worker,
    upload,
    wait_for_terminal,
    worker_metrics,
)
from tests.integration.services import Services

pytestmark = pytest.mark.usefixtures("redis_client")


async def worker_connections(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE application_name = 'cogep-worker' AND datname = current_database()"
                    )
                )
            ).scalar_one()
        )  # a flushed broker per test


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
        await upload(client, key, "bomba.pdf", pdf_bomb(inflated_mb=40)): "decompression bomb",
    }
    # the bomb must fit the test API's 200 KB upload limit: inflation limit 32 MB here
    metrics_port = free_port()
    worker = start_worker(
        "worker",
        database_url,
        services.redis_url,
        tmp_path,
        COGEP_MAX_UNZIPPED_BYTES="33554432",
        COGEP_WORKER_METRICS_PORT=str(metrics_port),
    )
    with running(worker):
        state = await wait_for_terminal(clean_db, len(good) + len(poison), 120, [worker])
        # the worker's own metrics say what it did
        samples = await worker_metrics(metrics_port)
        # the seed's rule, checked while the worker is alive and idle between tasks:
        # every task disposed its engine, so no connection of the worker lingers
        lingering = await worker_connections(clean_db)
        deadline = time.monotonic() + 15
        while lingering and time.monotonic() < deadline:  # its last drain may be closing
            await asyncio.sleep(0.2)
            lingering = await worker_connections(clean_db)
        assert worker.proc.poll() is None  # alive
        idle_for = 2.0
        await asyncio.sleep(idle_for)  # and it stays at none while idle
        assert (lingering, await worker_connections(clean_db)) == (0, 0)
    assert samples["cogep_worker_documents_total{outcome=indexed}"] == len(good)
    assert samples["cogep_worker_documents_total{outcome=failed}"] == len(poison)
    assert samples["cogep_worker_upload_to_searchable_seconds_count"] == len(good)
    assert samples["cogep_worker_chunks_embedded_total"] >= len(good)
    assert samples["cogep_worker_embedding_seconds_total"] > 0
    failures = {k: v for k, v in samples.items() if k.startswith("cogep_worker_failures_total{")}
    assert sum(failures.values()) == len(poison)
    assert all("stage=extracting" in k or "stage=chunking" in k for k in failures), failures
    for doc_id, kind in good.items():
        assert state[doc_id][0] == "COMPLETED", (kind, state[doc_id])
        assert state[doc_id][1] == 1
    for doc_id, reason in poison.items():
        status, _, error = state[doc_id]
        assert status == "FAILED", (reason, state[doc_id])
        assert error and reason in error, (reason, error)
    assert await assert_one_chunk_set_each(clean_db) >= len(good)
    async with clean_db.connect() as conn:
        pages = (
            await conn.execute(
                text(
                    "SELECT max(page_end) FROM ai.chunks c JOIN ai.documents d "
                    "ON d.id = c.document_id WHERE d.filename = 'longo.pdf'"
                )
            )
        ).scalar_one()
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
    workers = [
        start_worker(f"worker-{i}", database_url, services.redis_url, tmp_path) for i in range(4)
    ]
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
    pdfs = [make_pdf_pages([*pages, f"{i}"]) for i in range(6)]
    ids = [
        await upload(client, keys["ingest"], f"norma-{i}.pdf", pdf) for i, pdf in enumerate(pdfs)
    ]
    doomed = start_worker("doomed", database_url, services.redis_url, tmp_path, **lease)
    held: dict[uuid.UUID, str] = {}  # its claims, and the stage each was at
    deadline = time.monotonic() + 60
    while not held:
        assert time.monotonic() < deadline, doomed.log()[-3000:]
        async with clean_db.connect() as conn:
            held = {
                r.document_id: r.stage
                for r in await conn.execute(
                    text(
                        "SELECT document_id, stage FROM ai.ingestion_queue "
                        "WHERE status = CAST('PROCESSING' AS ai.ingestionstatus) "
                        "AND locked_by LIKE :me"
                    ),
                    {"me": f"%:{doomed.pid}:%"},
                )
            }
        await asyncio.sleep(0.02)
    doomed.kill()  # kill -9, mid-batch: its claims stay PROCESSING until their lease ends
    # (the stages were read just before the kill: a job may have moved on in between,
    # never back, so a job seen started was started)
    survivor = start_worker("survivor", database_url, services.redis_url, tmp_path, **lease)
    beat = start_beat(database_url, services.redis_url, tmp_path, **lease)
    with running(survivor, beat):
        state = await wait_for_terminal(clean_db, len(ids), 180, [survivor, beat])
    assert all(state[i][0] == "COMPLETED" for i in ids), state
    # a job the dead worker had started on used an attempt; one still waiting in its
    # batch got the attempt back (decision 0014): the survivor's is then its only one
    started = {i for i, stage in held.items() if stage != "claimed"}
    waiting = set(held) - started
    assert all(state[i][1] == 2 for i in started), {i: state[i] for i in started}
    # (a job read as waiting may have started in the milliseconds before the kill)
    assert all(state[i][1] in (1, 2) for i in waiting)
    assert not waiting or any(state[i][1] == 1 for i in waiting), {i: state[i] for i in waiting}
    # exactly the pipeline's chunks of the six PDFs: the killed worker's half-done work
    # was neither lost nor stored twice
    expected = chunks_expected([(pdf, "application/pdf") for pdf in pdfs])
    assert await assert_one_chunk_set_each(clean_db) == expected >= len(ids)


async def test_the_production_shape_prefork_pool_and_two_api_processes(
    keys: dict[str, str],
    database_url: str,
    services: Services,
    clean_db: AsyncEngine,
    tmp_path: Path,
) -> None:
    """What production runs: uvicorn with two processes, a prefork worker with two pool
    processes (each its own model and parser), metrics added up across the pool."""
    metrics_port = free_port()
    worker = start_worker(
        "prefork",
        database_url,
        services.redis_url,
        tmp_path,
        COGEP_CELERY_POOL="prefork",
        COGEP_WORKER_CONCURRENCY="2",
        COGEP_BATCH_SIZE="2",
        COGEP_WORKER_METRICS_PORT=str(metrics_port),
    )
    with running_api(database_url, services.redis_url, workers=2) as url, running(worker):
        wait_until_ready(worker, timeout=120)
        async with httpx.AsyncClient(base_url=url, headers=auth(keys["ingest"])) as api:
            answers = await asyncio.gather(
                *(
                    api.post(
                        "/v1/documents",
                        files={"file": (f"oficio-{i}.txt", memo_text(i).encode(), "text/plain")},
                    )
                    for i in range(12)
                )
            )
            assert [r.status_code for r in answers] == [201] * 12
            state = await wait_for_terminal(clean_db, 12, 180, [worker])
            samples = await worker_metrics(metrics_port)
        pool = psutil.Process(worker.pid).children()
    assert all(s == ("COMPLETED", 1, None) for s in state.values()), state
    assert await assert_one_chunk_set_each(clean_db) == chunks_expected(
        [(memo_text(i).encode(), "text/plain") for i in range(12)]
    )
    assert len(pool) >= 2  # the pool's processes did the work
    # the pool's processes, added up in one answer
    assert samples["cogep_worker_documents_total{outcome=indexed}"] == 12.0


def memo_text(i: int) -> str:
    return f"Ofício nº {i}/2026: a unidade {i} solicita a redistribuição do servidor {i}."
