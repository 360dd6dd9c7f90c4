"""A document near the upload limit, end to end with a real worker: ~49 MiB of PDF (290
pages, each a scanned-looking image with its text layer) is uploaded under the default
50 MiB limit, parsed within the extraction deadline, its chunks embedded for many times
its four-second lease, which must be renewed all along, and stored in one bulk
insert within the statement timeout; it completes at its first attempt with exactly the
pipeline's chunks."""

from __future__ import annotations

import io
import random
from pathlib import Path

import httpx
import pytest
from fpdf import FPDF
from PIL import Image
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.services.embedded import free_port
from entrypoints.settings import Settings
from tests.integration.conftest import auth, make_settings
from tests.integration.live import running
from tests.integration.oracle import (
    assert_one_chunk_set_each,
    chunks_expected,
    start_worker,
    wait_for_terminal,
    worker_metrics,
)
from tests.integration.services import Services

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("redis_client")]

LIMIT = 50 * 1024 * 1024  # the default COGEP_MAX_UPLOAD_BYTES
LEASE_S = 4


@pytest.fixture
def settings(database_url: str, services: Services) -> Settings:
    return make_settings(database_url, services.redis_url, max_upload_bytes=LIMIT)


def near_limit_pdf(pages: int = 290) -> bytes:
    rng = random.Random(11)
    pdf = FPDF(format="A4")
    pdf.set_font("helvetica", size=10)
    for n in range(pages):
        noise = Image.frombytes("L", (420, 420), rng.randbytes(420 * 420))  # incompressible
        buf = io.BytesIO()
        noise.save(buf, format="PNG")
        pdf.add_page()
        pdf.image(buf, x=10, y=150, w=120)
        pdf.set_xy(10, 10)
        pdf.multi_cell(
            0,
            5,
            f"Art. {n + 1}. A unidade {n + 1} registrará a frequência do servidor lotado "
            f"no setor {n * 7 + 3}, observada a escala aprovada pela chefia imediata, e "
            "encaminhará o boletim mensal à área de gestão de pessoas até o quinto dia útil "
            "do mês subsequente, sob pena de responsabilização do gestor. " * 6,
        )
    return bytes(pdf.output())


async def test_a_document_near_the_upload_limit_completes_under_a_renewed_lease(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    database_url: str,
    services: Services,
    clean_db: AsyncEngine,
    tmp_path: Path,
) -> None:
    data = near_limit_pdf()
    assert 0.9 * LIMIT < len(data) <= LIMIT, len(data)
    r = await client.post(
        "/v1/documents",
        files={"file": ("boletins.pdf", data, "application/pdf")},
        headers=auth(keys["ingest"]),
    )
    assert r.status_code == 201, r.text
    port = free_port()
    worker = start_worker(
        "worker",
        database_url,
        services.redis_url,
        tmp_path,
        COGEP_LEASE_SECONDS=str(LEASE_S),  # renewed every third; a lapse hands the job back
        COGEP_EXTRACTION_TIMEOUT_S="60",
        COGEP_WORKER_METRICS_PORT=str(port),
    )
    with running(worker):
        state = await wait_for_terminal(clean_db, 1, 600, [worker])
        samples = await worker_metrics(port)
    [(status, attempts, error)] = state.values()
    assert (status, attempts, error) == ("COMPLETED", 1, None), worker.log()[-3000:]
    assert await assert_one_chunk_set_each(clean_db) == chunks_expected([(data, "application/pdf")])
    async with clean_db.connect() as conn:
        worked = (
            await conn.execute(
                text("SELECT extract(epoch FROM finished_at - started_at) FROM ai.ingestion_queue")
            )
        ).scalar_one()
    # it outlived its lease many times over, at its first attempt: the renewals held it
    worked = float(worked)
    assert worked > 4 * LEASE_S, worked
    renewals = samples["cogep_worker_lease_renewals_total"]
    assert renewals >= worked / (LEASE_S / 3) / 2, (renewals, worked)
