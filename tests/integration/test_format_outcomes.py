"""New formats end to end: upload through the API, the worker's ProcessBatch with the
real sandbox (OCR included), chunker and model over real PostgreSQL, then search. A row
of a PDF table answers the question about it; a scan completes with its OCR report; a
document without text fails for good with its reason; a refusal names what it saw."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fpdf import FPDF

from application.use_cases.process_batch import BatchReport
from entrypoints.settings import Settings
from tests.integration.conftest import auth, make_settings
from tests.integration.services import Services
from tests.scans import PORTARIA, image_pdf, scanned_page

Process = Callable[[], Awaitable[BatchReport]]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "office"


@pytest.fixture
def settings(database_url: str, services: Services) -> Settings:
    return make_settings(database_url, services.redis_url, max_upload_bytes=5_000_000)


async def upload(client: httpx.AsyncClient, key: str, name: str, data: bytes) -> dict[str, Any]:
    r = await client.post(
        "/v1/documents", files={"file": (name, data)}, data={"collection": "rh"}, headers=auth(key)
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def valores_pdf() -> bytes:
    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    pdf.add_page()
    for line in (
        "PORTARIA Nº 88, DE 2 DE ABRIL DE 2026",
        "Art. 1º O auxílio-alimentação tem os valores mensais da tabela abaixo.",
    ):
        pdf.multi_cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    states = ["Acre", "Alagoas", "Amapá", "Amazonas", "Bahia", "Ceará", "Goiás", "Pará"]
    with pdf.table() as table:
        for values in [("Unidade da Federação", "Valor mensal (R$)", "Vigência")] + [
            (uf, f"{900 + 15 * i},00", "01/05/2026") for i, uf in enumerate(states)
        ]:
            row = table.row()
            for value in values:
                row.cell(value)
    return bytes(pdf.output())


async def test_a_pdf_table_row_answers_the_question_about_it(
    client: httpx.AsyncClient, keys: dict[str, str], process: Process
) -> None:
    key = keys["ingest_read"]
    await upload(client, key, "valores.pdf", valores_pdf())
    assert (await process()).completed == 1
    r = await client.post(
        "/v1/search",
        json={"query": "qual o valor do auxílio-alimentação no Acre?", "top_k": 3},
        headers=auth(key),
    )
    top = r.json()["results"][0]
    assert "Unidade da Federação: Acre | Valor mensal (R$): 900,00" in top["text"], top


async def test_a_scan_completes_with_its_ocr_report_and_is_searchable(
    client: httpx.AsyncClient, keys: dict[str, str], process: Process
) -> None:
    key = keys["ingest_read"]
    doc = await upload(client, key, "portaria.pdf", image_pdf([scanned_page(PORTARIA)]))
    assert (await process()).completed == 1
    r = await client.get(f"/v1/documents/{doc['id']}", headers=auth(key))
    body = r.json()
    assert body["status"] == "COMPLETED" and body["extraction"]["ocr_pages"] == [1]
    assert body["source_key"] == "portaria-431-2026"
    r = await client.post(
        "/v1/search",
        json={"query": "prazo para compensar horas excedentes", "top_k": 3},
        headers=auth(key),
    )
    assert any("noventa dias" in h["text"] for h in r.json()["results"])


async def test_documents_without_text_fail_for_good_with_their_reason(
    client: httpx.AsyncClient, keys: dict[str, str], process: Process
) -> None:
    key = keys["ingest_read"]
    blank = await upload(client, key, "vazio.txt", b"   \n\t\n   ")
    html = await upload(
        client, key, "so-imagem.html", b'<html><body><img src="a.png"></body></html>'
    )
    report = await process()
    assert report.failed == 2 and report.retried == 0  # permanent: not retried
    for doc, why in ((blank, "holds no text to index"), (html, "no text, only 1 image(s)")):
        r = await client.get(f"/v1/documents/{doc['id']}", headers=auth(key))
        job = r.json()["job"]
        assert job["status"] == "FAILED" and job["attempts"] == 1
        assert job["failure_kind"] == "document" and job["retryable"] is False
        assert why in job["last_error"] and "scanned PDF" not in job["last_error"]


async def test_a_refusal_names_the_detected_format_and_what_is_accepted(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    r = await client.post(
        "/v1/documents",
        files={
            "file": (
                "planilha.xls",
                b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + "Workbook".encode("utf-16-le"),
            )
        },
        headers=auth(keys["ingest"]),
    )
    assert r.status_code == 415, r.text
    detail = r.json()["detail"]
    assert "the content is a legacy Excel (XLS) workbook (save it as XLSX or ODS)" in detail
    assert "accepted: PDF, Word (DOCX, DOC), RTF, OpenDocument (ODT, ODS, ODP)" in detail
    odt = (FIXTURES / "manual.odt").read_bytes()
    odt_as_docx = await client.post(
        "/v1/documents", files={"file": ("nota.docx", odt)}, headers=auth(keys["ingest"])
    )
    assert odt_as_docx.status_code == 415
    assert "OpenDocument text (ODT)" in odt_as_docx.json()["detail"]
