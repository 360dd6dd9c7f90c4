"""A real worker busy embedding a long document still serves a short upload first, and
the scheduler (beat with its own queue) still sweeps on time: real Celery worker and
beat processes, real PostgreSQL and Redis, the real model."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from application.ports import UnitOfWorkFactory
from entrypoints.settings import Settings
from tests.integration.conftest import make_settings
from tests.integration.live import running
from tests.integration.oracle import plant_expired_lease, start_beat, start_worker, upload
from tests.integration.services import Services

pytestmark = pytest.mark.usefixtures("redis_client")


@pytest.fixture
def settings(database_url: str, services: Services) -> Settings:
    return make_settings(database_url, services.redis_url, max_upload_bytes=1_000_000)


async def job_of(engine: AsyncEngine, doc_id: uuid.UUID) -> tuple[str, str]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT status, stage FROM ai.ingestion_queue WHERE document_id = :d"),
                {"d": doc_id},
            )
        ).one()
    return str(row.status), str(row.stage)


async def test_a_short_upload_overtakes_a_long_document_and_the_sweep_keeps_time(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    database_url: str,
    services: Services,
    clean_db: AsyncEngine,
    uow_factory: UnitOfWorkFactory,
    tmp_path: Path,
) -> None:
    long_text = "\n\n".join(
        f"Art. {i}º O servidor lotado na unidade {i} cumprirá jornada de quarenta horas "
        f"semanais, observado o regime de compensação previsto no regulamento {i}, "
        "e poderá requerer a alteração do horário mediante justificativa da chefia."
        for i in range(1, 700)
    ).encode()
    key = keys["ingest"]
    long_id = await upload(client, key, "longa.txt", long_text)
    env = {"COGEP_SWEEP_INTERVAL_S": "1"}
    worker = start_worker("worker", database_url, services.redis_url, tmp_path, **env)
    beat = start_beat(database_url, services.redis_url, tmp_path, **env)
    with running(worker, beat):
        deadline = time.monotonic() + 120
        while await job_of(clean_db, long_id) != ("PROCESSING", "embedding"):
            assert time.monotonic() < deadline, worker.log()[-3000:]
            await asyncio.sleep(0.2)
        # the worker is embedding the long document: a one-paragraph upload and an
        # orphaned job (its worker died) arrive
        short_id = await upload(client, key, "curta.txt", "Aviso: o ponto é digital.".encode())
        orphan_id = await plant_expired_lease(uow_factory, claimed_ago_s=5)
        t0 = time.monotonic()
        swept_after = short_done_after = None
        while short_done_after is None or swept_after is None:
            if swept_after is None and (await job_of(clean_db, orphan_id))[0] != "PROCESSING":
                swept_after = time.monotonic() - t0
            if short_done_after is None and (await job_of(clean_db, short_id))[0] == "COMPLETED":
                short_done_after = time.monotonic() - t0
                long_state = await job_of(clean_db, long_id)
            assert time.monotonic() - t0 < 90, worker.log()[-3000:]
            await asyncio.sleep(0.1)
    # the short one did not wait for the ~700 chunks of the long one
    assert long_state == ("PROCESSING", "embedding"), long_state
    assert short_done_after < 30
    # the sweep ran within a few intervals although the only worker was busy
    assert swept_after < 5, swept_after
    assert re.search(r"took \d+ waiting job\(s\) alongside the work in hand", worker.log())
