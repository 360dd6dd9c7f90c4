"""Status, listings, deletion, reprocessing, jobs and stats."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from application.ports import UnitOfWorkFactory
from domain.model import Chunk, Document, DocumentType
from entrypoints.container import Container
from tests.integration.conftest import auth


async def upload(client: httpx.AsyncClient, key: str, body: bytes, collection: str = "rh") -> dict:  # type: ignore[type-arg]
    r = await client.post(
        "/v1/documents",
        files={"file": ("doc.txt", body, "text/plain")},
        data={"collection": collection},
        headers=auth(key),
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def set_status(
    engine: AsyncEngine, document_id: str, status: str, error: str | None = None
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE ai.ingestion_queue SET status = CAST(:s AS ai.ingestionstatus), "
                "last_error = :e, finished_at = :now WHERE document_id = :d"
            ),
            {"s": status, "e": error, "d": document_id, "now": datetime.now(UTC)},
        )


async def test_a_document_shows_its_job_status(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    doc = await upload(client, keys["ingest"], b"um")
    r = await client.get(f"/v1/documents/{doc['id']}", headers=auth(keys["read"]))
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "PENDING"
    assert body["stage"] == "queued"
    assert body["attempts"] == 0
    assert body["chunk_count"] == 0
    assert body["job"]["max_attempts"] == 3


async def test_an_unknown_document_is_404(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    r = await client.get(
        "/v1/documents/7d1c0c52-9a4f-4a57-8b43-5a1f4a0e9a11", headers=auth(keys["read"])
    )
    assert r.status_code == 404
    assert r.json()["code"] == "document_not_found"


async def test_listing_filters_by_collection_and_status_and_pages_with_cursors(
    client: httpx.AsyncClient, keys: dict[str, str], clean_db: AsyncEngine
) -> None:
    ids = [(await upload(client, keys["ingest"], f"doc {i}".encode(), "a"))["id"] for i in range(5)]
    other = await upload(client, keys["ingest"], b"outro", "b")
    await set_status(clean_db, ids[0], "FAILED", "corrompido")

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"collection": "a", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/documents", params=params, headers=auth(keys["read"]))).json()
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    assert other["id"] not in seen

    failed = (
        await client.get("/v1/documents", params={"status": "FAILED"}, headers=auth(keys["read"]))
    ).json()
    assert [d["id"] for d in failed["items"]] == [ids[0]]
    assert failed["items"][0]["last_error"] == "corrompido"


@pytest.mark.parametrize(
    "params", [{"cursor": "garbage!"}, {"status": "DONE"}, {"limit": 0}, {"limit": 1000}]
)
async def test_bad_listing_parameters_are_422(
    client: httpx.AsyncClient, keys: dict[str, str], params: dict[str, str | int]
) -> None:
    r = await client.get("/v1/documents", params=params, headers=auth(keys["read"]))
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"


async def test_delete_removes_everything_of_the_document(
    client: httpx.AsyncClient, keys: dict[str, str], clean_db: AsyncEngine
) -> None:
    doc = await upload(client, keys["ingest"], b"apagar")
    keep = await upload(client, keys["ingest"], b"manter")
    r = await client.delete(f"/v1/documents/{doc['id']}", headers=auth(keys["admin"]))
    assert r.status_code == 204
    assert (
        await client.get(f"/v1/documents/{doc['id']}", headers=auth(keys["read"]))
    ).status_code == 404
    assert (
        await client.delete(f"/v1/documents/{doc['id']}", headers=auth(keys["admin"]))
    ).status_code == 404
    async with clean_db.connect() as conn:
        for table in ("documents", "document_contents", "ingestion_queue"):
            n = (await conn.execute(text(f"SELECT count(*) FROM ai.{table}"))).scalar_one()
            assert n == 1, table
    assert (
        await client.get(f"/v1/documents/{keep['id']}", headers=auth(keys["read"]))
    ).status_code == 200


async def test_reprocess_requeues_a_finished_document_and_refuses_a_queued_one(
    client: httpx.AsyncClient, keys: dict[str, str], clean_db: AsyncEngine
) -> None:
    doc = await upload(client, keys["ingest"], b"reprocessar")
    r = await client.post(f"/v1/documents/{doc['id']}/reprocess", headers=auth(keys["admin"]))
    assert r.status_code == 409
    await set_status(clean_db, doc["id"], "COMPLETED")
    r = await client.post(f"/v1/documents/{doc['id']}/reprocess", headers=auth(keys["admin"]))
    assert r.status_code == 202
    assert r.json()["status"] == "PENDING"
    assert r.json()["attempts"] == 0


async def test_failed_jobs_can_be_listed_and_retried_once(
    client: httpx.AsyncClient, keys: dict[str, str], clean_db: AsyncEngine
) -> None:
    doc = await upload(client, keys["ingest"], b"falhou")
    await set_status(clean_db, doc["id"], "FAILED", "extracting: corrupt")
    jobs = (
        await client.get("/v1/jobs", params={"status": "FAILED"}, headers=auth(keys["read"]))
    ).json()
    assert len(jobs["items"]) == 1
    job_id = jobs["items"][0]["id"]
    assert jobs["items"][0]["last_error"] == "extracting: corrupt"
    one = await client.get(f"/v1/jobs/{job_id}", headers=auth(keys["read"]))
    assert one.json()["document_id"] == doc["id"]

    r = await client.post(f"/v1/jobs/{job_id}/retry", headers=auth(keys["admin"]))
    assert r.status_code == 202
    assert r.json()["status"] == "PENDING"
    again = await client.post(f"/v1/jobs/{job_id}/retry", headers=auth(keys["admin"]))
    assert again.status_code == 409
    missing = await client.post(
        "/v1/jobs/7d1c0c52-9a4f-4a57-8b43-5a1f4a0e9a11/retry", headers=auth(keys["admin"])
    )
    assert missing.status_code == 404


async def test_stats_count_jobs_by_status(
    client: httpx.AsyncClient, keys: dict[str, str], clean_db: AsyncEngine
) -> None:
    a = await upload(client, keys["ingest"], b"a")
    await upload(client, keys["ingest"], b"b")
    await set_status(clean_db, a["id"], "FAILED", "x")
    stats = (await client.get("/v1/stats", headers=auth(keys["read"]))).json()
    assert stats["jobs"] == {"PENDING": 1, "PROCESSING": 0, "COMPLETED": 0, "FAILED": 1}
    assert stats["ready"] == 1
    assert stats["oldest_pending_age_s"] is not None and stats["oldest_pending_age_s"] >= 0


async def test_stats_name_the_query_model_and_warn_of_chunks_it_cannot_see(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    container: Container,
    uow_factory: UnitOfWorkFactory,
) -> None:
    configured = container.embedder()
    now = datetime.now(UTC)
    docs = [
        Document(uuid.uuid4(), "rh", f"{i}.txt", DocumentType.TEXT, 1, f"{i}" * 64, {}, now)
        for i in range(2)
    ]
    async with uow_factory() as uow:
        for doc, model in zip(docs, ["modelo-antigo", configured.model_name], strict=True):
            doc.is_current = True
            await uow.documents.add(doc, b"x")
            vector = [1.0] + [0.0] * 383
            await uow.chunks.replace(
                doc.id, [Chunk(doc.id, 0, "texto", 1, None, vector, model, 384)]
            )
        await uow.commit()
    stats = (await client.get("/v1/stats", headers=auth(keys["read"]))).json()
    assert stats["embedding_model"] == {
        "model": configured.model_name,
        "dim": configured.dimension,
        "chunks": 1,
    }
    (warning,) = stats["warnings"]
    assert "1 chunks belong to the model modelo-antigo (384 dimensions)" in warning
    assert "do not see them" in warning


async def test_listing_filters_by_metadata(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    for name, meta in (("a.txt", {"orgao": "COGEP", "ano": 2024}), ("b.txt", {"orgao": "SGP"})):
        r = await client.post(
            "/v1/documents/text",
            json={"text": f"Texto de {name}.", "filename": name, "metadata": meta},
            headers=auth(keys["ingest"]),
        )
        assert r.status_code == 201, r.text
    found = await client.get(
        "/v1/documents", params={"metadata": '{"orgao": "COGEP"}'}, headers=auth(keys["read"])
    )
    assert [d["filename"] for d in found.json()["items"]] == ["a.txt"]
    none = await client.get(
        "/v1/documents", params={"metadata": '{"ano": 1999}'}, headers=auth(keys["read"])
    )
    assert none.json()["items"] == []
    bad = await client.get("/v1/documents", params={"metadata": "[1]"}, headers=auth(keys["read"]))
    assert bad.status_code == 422
