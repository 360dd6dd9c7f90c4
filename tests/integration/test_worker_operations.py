"""Operations of the worker over real PostgreSQL, the real sandbox and model: progress
(pages read, chunks embedded) recorded and shown; a hostile single line fails with its
reason; a worker death is charged only to the documents it had started on; the API
docs load with nothing from a CDN."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fpdf import FPDF

from application.ports import UnitOfWorkFactory
from application.use_cases.process_batch import BatchReport
from application.use_cases.sweep import SweepQueueHandler
from domain.model import IngestionStatus, Stage
from entrypoints.settings import Settings
from tests.integration.conftest import auth, make_settings
from tests.integration.services import Services
from tests.integration.test_repositories import add_documents
from tests.unit.fakes import FakeClock, FakeQueue

Process = Callable[[], Awaitable[BatchReport]]


@pytest.fixture
def settings(database_url: str, services: Services) -> Settings:
    return make_settings(database_url, services.redis_url, max_upload_bytes=12_000_000)


TOPICS = [
    ("férias", "trinta dias de descanso, que podem ser acumuladas até dois períodos"),
    ("licença para capacitação", "três meses a cada quinquênio de efetivo exercício"),
    ("adicional noturno", "o valor-hora acrescido de vinte e cinco por cento"),
    ("auxílio-transporte", "o custeio parcial das despesas de deslocamento"),
    ("teletrabalho", "o plano de trabalho pactuado com a chefia imediata"),
    ("gratificação natalina", "um doze avos da remuneração por mês de exercício"),
]


def pages_pdf(pages: int) -> bytes:
    """A PDF whose pages each hold a different article (no line repeats on every page,
    which extraction would drop as a running header)."""
    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for n in range(pages):
        topic, rule = TOPICS[n % len(TOPICS)]
        pdf.add_page()
        pdf.multi_cell(
            0,
            7,
            f"Art. {n + 1}. Quanto a {topic}, o servidor tem direito a {rule}, "
            f"conforme o regulamento da unidade de lotação número {n * 37 + 11}.",
        )
    return bytes(pdf.output())


async def test_progress_of_a_pdf_counts_its_pages_and_chunks(
    client: httpx.AsyncClient, keys: dict[str, str], process: Process
) -> None:
    r = await client.post(
        "/v1/documents",
        files={"file": ("ferias.pdf", pages_pdf(6))},
        data={"collection": "rh"},
        headers=auth(keys["ingest"]),
    )
    assert r.status_code == 201, r.text
    doc_id = r.json()["id"]
    report = await process()
    assert report.completed == 1
    body = (await client.get(f"/v1/documents/{doc_id}", headers=auth(keys["read"]))).json()
    progress = body["job"]["progress"]
    assert progress["pages_done"] == progress["pages_total"] == 6
    assert progress["chunks_done"] == progress["chunks_total"] == body["chunk_count"] > 0
    assert progress["eta_seconds"] is None  # finished: nothing left to estimate


async def test_a_hostile_single_line_fails_with_its_reason(
    client: httpx.AsyncClient, keys: dict[str, str], process: Process
) -> None:
    line = b"palavra " * 1_320_000  # 10.5 MB, one line, under the upload limit
    r = await client.post(
        "/v1/documents",
        files={"file": ("linha.md", line, "text/markdown")},
        headers=auth(keys["ingest"]),
    )
    assert r.status_code == 201, r.text
    report = await process()
    assert report.failed == 1 and report.retried == 0
    job = (await client.get(f"/v1/documents/{r.json()['id']}", headers=auth(keys["read"]))).json()
    assert job["status"] == "FAILED"
    assert job["job"]["failure_kind"] == "document"
    assert re.search(r"10,560,000 characters of text; the limit is 10,000,000", job["last_error"])


async def test_a_worker_death_is_charged_only_to_the_document_it_was_working_on(
    uow_factory: UnitOfWorkFactory,
) -> None:
    pairs = await add_documents(uow_factory, 3, start=datetime.now(UTC) - timedelta(minutes=1))
    start = datetime.now(UTC)
    async with uow_factory() as uow:
        for _, job in pairs:  # the last attempt: a charged expiry fails the job
            job.max_attempts = 1
            await uow.jobs.save(job)
        claims = await uow.jobs.claim(
            batch_size=3, worker_id="dead:1:x", lease_seconds=5, now=start
        )
        await uow.jobs.set_stage(claims[:1], Stage.EXTRACTING, start)  # it was on this one
        await uow.commit()
    assert len(claims) == 3
    later = FakeClock(start + timedelta(seconds=6))
    report = await SweepQueueHandler(uow_factory, FakeQueue(), later)()
    assert (report.failed, report.requeued) == (1, 2)
    async with uow_factory() as uow:
        after = {c.job_id: await uow.jobs.get(c.job_id) for c in claims}
    culprit = after[claims[0].job_id]
    assert culprit is not None and culprit.status is IngestionStatus.FAILED
    assert "during extracting" in (culprit.last_error or "")
    for c in claims[1:]:
        neighbour = after[c.job_id]
        assert neighbour is not None and neighbour.status is IngestionStatus.PENDING
        assert neighbour.attempts == 0  # its attempt was given back
        assert "not counted" in (neighbour.last_error or "")


async def test_the_api_docs_load_from_the_package_not_a_cdn(client: httpx.AsyncClient) -> None:
    for page in ("/docs", "/redoc"):
        html = (await client.get(page)).text
        assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
        assert assets, page
        assert not [a for a in assets if a.startswith(("http:", "https:", "//"))], assets
        for asset in assets:
            if asset.endswith((".js", ".css")):
                r = await client.get(asset)
                assert r.status_code == 200 and len(r.content) > 10_000, asset
