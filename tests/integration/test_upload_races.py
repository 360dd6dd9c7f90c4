"""Uploads racing each other and deletes, through the API on real PostgreSQL (every
request has its own session and connection; the races are the database's)."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.conftest import auth


async def counts(engine: AsyncEngine) -> tuple[int, int, int]:
    """(documents, jobs, documents without exactly one job)."""
    async with engine.connect() as conn:
        docs = (await conn.execute(text("SELECT count(*) FROM ai.documents"))).scalar_one()
        jobs = (await conn.execute(text("SELECT count(*) FROM ai.ingestion_queue"))).scalar_one()
        orphans = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM ai.documents d WHERE "
                    "(SELECT count(*) FROM ai.ingestion_queue q WHERE q.document_id = d.id) <> 1"
                )
            )
        ).scalar_one()
    return int(docs), int(jobs), int(orphans)


async def test_twenty_identical_uploads_at_once_make_one_document_and_one_job(
    client: httpx.AsyncClient, keys: dict[str, str], clean_db: AsyncEngine
) -> None:
    body = "Art. 1º O auxílio-natalidade é devido à servidora por motivo de nascimento.".encode()

    async def send() -> httpx.Response:
        return await client.post(
            "/v1/documents",
            files={"file": ("natalidade.txt", body, "text/plain")},
            data={"collection": "rh"},
            headers=auth(keys["ingest"]),
        )

    answers = await asyncio.gather(*(send() for _ in range(20)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] * 19 + [201], [r.text for r in answers if r.status_code >= 300]
    assert len({r.json()["id"] for r in answers}) == 1  # all name the same document
    assert await counts(clean_db) == (1, 1, 0)


async def test_an_upload_racing_a_delete_of_the_same_content_leaves_no_orphan(
    client: httpx.AsyncClient, keys: dict[str, str], clean_db: AsyncEngine
) -> None:
    for round_ in range(8):
        body = f"Art. {round_}º A remoção a pedido depende do interesse da administração.".encode()
        files = {"file": (f"remocao-{round_}.txt", body, "text/plain")}
        first = await client.post("/v1/documents", files=files, headers=auth(keys["ingest"]))
        assert first.status_code == 201
        doc_id = first.json()["id"]
        delete, again = await asyncio.gather(
            client.delete(f"/v1/documents/{doc_id}", headers=auth(keys["admin"])),
            client.post("/v1/documents", files=files, headers=auth(keys["ingest"])),
        )
        assert delete.status_code == 204, delete.text
        assert again.status_code in (200, 201), again.text
        if again.status_code == 201:  # the delete went first: a new document, kept
            assert again.json()["id"] != doc_id
            shown = await client.get(
                f"/v1/documents/{again.json()['id']}", headers=auth(keys["read"])
            )
            assert shown.status_code == 200 and shown.json()["status"] == "PENDING"
        else:  # the upload saw the document, then the delete removed it
            assert again.json()["id"] == doc_id
        gone = await client.get(f"/v1/documents/{doc_id}", headers=auth(keys["read"]))
        assert gone.status_code == 404
        docs, jobs, orphans = await counts(clean_db)
        assert orphans == 0 and docs == jobs
