"""Document identity and versions end to end: uploads through the API, the worker's
ProcessBatch with the real sandboxed parsers, chunker and model over real PostgreSQL,
then POST /v1/search. The law in force answers; a revised document supersedes the old
one only once it is stored; a failure never leaves contradicting chunks current."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from application.use_cases.process_batch import BatchReport
from tests.integration.conftest import auth

NOTA_V1 = (
    "NOTA TÉCNICA Nº 7/2026 - COGEP\n\n"
    "Art. 1º O servidor poderá requerer o teletrabalho após 12 (doze) meses de exercício, "
    "com meta de produtividade de 70 % (setenta por cento) superior à presencial."
)
NOTA_V2 = (
    "NOTA TÉCNICA Nº 7/2026 - COGEP\n\n"
    "Art. 1º O servidor poderá requerer o teletrabalho após 18 (dezoito) meses de exercício, "
    "com meta de produtividade de 80 % (oitenta por cento) superior à presencial."
)
QUESTION = "depois de quantos meses de exercício o servidor pode pedir teletrabalho?"

Process = Callable[[], Awaitable[BatchReport]]


async def send(
    client: httpx.AsyncClient,
    key: str,
    body: str,
    *,
    expect: int = 201,
    **fields: Any,
) -> dict[str, Any]:
    r = await client.post("/v1/documents/text", json={"text": body, **fields}, headers=auth(key))
    assert r.status_code == expect, r.text
    return dict(r.json())


async def search(client: httpx.AsyncClient, key: str, **body: Any) -> list[dict[str, Any]]:
    r = await client.post("/v1/search", json={"query": QUESTION, **body}, headers=auth(key))
    assert r.status_code == 200, r.text
    return list(r.json()["results"])


async def get(client: httpx.AsyncClient, key: str, doc_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/documents/{doc_id}", headers=auth(key))
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_a_revision_supersedes_the_old_version_only_once_it_is_stored(
    client: httpx.AsyncClient, keys: dict[str, str], process: Process
) -> None:
    key = keys["ingest_read"]
    v1 = await send(client, key, NOTA_V1, collection="rh", source_key="notas/teletrabalho.txt")
    assert (await process()).completed == 1
    v2 = await send(client, key, NOTA_V2, collection="rh", source_key="notas/teletrabalho.txt")
    assert (v2["version"], v2["current"], v2["key_origin"]) == (2, False, "client")
    # the old version answers while the new one waits
    hits = await search(client, key, collection="rh")
    assert hits and {h["document_id"] for h in hits} == {v1["id"]}
    assert "12 (doze) meses" in hits[0]["text"]
    assert (await process()).completed == 1
    hits = await search(client, key, collection="rh")
    assert {h["document_id"] for h in hits} == {v2["id"]}
    assert "18 (dezoito) meses" in hits[0]["text"]
    assert (hits[0]["version"], hits[0]["current"]) == (2, True)
    assert hits[0]["source_key"] == "notas/teletrabalho.txt"
    both = await search(client, key, collection="rh", include_superseded=True)
    assert {h["document_id"] for h in both} == {v1["id"], v2["id"]}
    assert {h["current"] for h in both} == {True, False}

    r = await client.get(f"/v1/documents/{v1['id']}/versions", headers=auth(key))
    assert r.status_code == 200, r.text
    versions = r.json()
    assert versions["current"] == v2["id"]
    assert [(v["version"], v["current"]) for v in versions["versions"]] == [(2, True), (1, False)]
    assert versions["versions"][1]["superseded_by"] == v2["id"]
    # the same content again is still a no-op: 200, no job
    again = await send(
        client, key, NOTA_V2, expect=200, collection="rh", source_key="notas/teletrabalho.txt"
    )
    assert again["id"] == v2["id"] and not again["metadata_updated"]
    assert (await process()).claimed == 0
    # listings hide superseded versions unless asked
    r = await client.get("/v1/documents", params={"collection": "rh"}, headers=auth(key))
    assert [d["id"] for d in r.json()["items"]] == [v2["id"]]
    r = await client.get(
        "/v1/documents",
        params={"collection": "rh", "include_superseded": "true"},
        headers=auth(key),
    )
    assert {d["id"] for d in r.json()["items"]} == {v1["id"], v2["id"]}


async def test_a_legal_act_uploaded_without_a_key_is_keyed_by_its_norm(
    client: httpx.AsyncClient, keys: dict[str, str], process: Process
) -> None:
    key = keys["ingest_read"]
    first = await send(client, key, NOTA_V1, collection="rh", filename="nt7.txt")
    assert first["key_origin"] == "content" and first["source_key"].startswith("sha256:")
    await process()
    first = await get(client, key, first["id"])
    assert (first["source_key"], first["key_origin"], first["current"]) == (
        "nota-tecnica-7-2026",
        "norm",
        True,
    )
    # another file of the same norm, with new wording: its next version
    second = await send(client, key, NOTA_V2, collection="rh", filename="nt7-revisada.txt")
    await process()
    second = await get(client, key, second["id"])
    assert (second["source_key"], second["version"], second["current"]) == (
        "nota-tecnica-7-2026",
        2,
        True,
    )
    assert not (await get(client, key, first["id"]))["current"]
    hits = await search(client, key, collection="rh")
    assert {h["document_id"] for h in hits} == {second["id"]}


async def test_a_failed_new_version_or_reprocess_leaves_the_current_chunks_answering(
    client: httpx.AsyncClient, keys: dict[str, str], process: Process, clean_db: AsyncEngine
) -> None:
    key = keys["ingest_read"]
    v1 = await send(client, key, NOTA_V1, collection="rh", source_key="nt7")
    await process()
    broken = await send(client, key, "   \n\n   ", collection="rh", source_key="nt7")
    report = await process()
    assert report.failed == 1
    broken = await get(client, key, broken["id"])
    assert broken["status"] == "FAILED" and not broken["current"] and broken["chunk_count"] == 0
    hits = await search(client, key, collection="rh")
    assert {h["document_id"] for h in hits} == {v1["id"]}
    # a cancelled reprocess of the current version: the job says so, the chunks stay
    r = await client.post(f"/v1/documents/{v1['id']}/reprocess", headers=auth(keys["admin"]))
    assert r.status_code == 202, r.text
    r = await client.post(f"/v1/documents/{v1['id']}/cancel", headers=auth(key))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "FAILED" and r.json()["last_error"].startswith("cancelled")
    assert (await process()).claimed == 0
    doc = await get(client, key, v1["id"])
    assert doc["current"] and doc["indexed_at"] and doc["chunk_count"] > 0
    assert {h["document_id"] for h in await search(client, key, collection="rh")} == {v1["id"]}
    r = await client.post(f"/v1/documents/{v1['id']}/cancel", headers=auth(key))
    assert r.status_code == 409, r.text


async def test_deleting_the_current_version_brings_the_previous_one_back(
    client: httpx.AsyncClient, keys: dict[str, str], process: Process, clean_db: AsyncEngine
) -> None:
    key = keys["ingest_read"]
    v1 = await send(client, key, NOTA_V1, collection="rh", source_key="nt7")
    await process()
    v2 = await send(client, key, NOTA_V2, collection="rh", source_key="nt7")
    await process()
    r = await client.delete(f"/v1/documents/{v2['id']}", headers=auth(keys["admin"]))
    assert r.status_code == 204, r.text
    assert (await get(client, key, v1["id"]))["current"]
    hits = await search(client, key, collection="rh")
    assert {h["document_id"] for h in hits} == {v1["id"]}
    r = await client.delete(
        f"/v1/documents/{v1['id']}", params={"all_versions": "true"}, headers=auth(keys["admin"])
    )
    assert r.status_code == 204
    async with clean_db.connect() as conn:
        left = (await conn.execute(text("SELECT count(*) FROM ai.chunks"))).scalar_one()
    assert left == 0


async def test_a_metadata_patch_is_seen_by_search_filters_at_once_without_reprocessing(
    client: httpx.AsyncClient, keys: dict[str, str], process: Process, clean_db: AsyncEngine
) -> None:
    key = keys["ingest_read"]
    doc = await send(client, key, NOTA_V1, collection="rh", metadata={"orgao": "SGP"})
    await process()
    async with clean_db.connect() as conn:
        chunk_ids = (await conn.execute(text("SELECT id FROM ai.chunks ORDER BY id"))).all()
    assert await search(client, key, metadata={"orgao": "SGP"})
    assert not await search(client, key, metadata={"orgao": "COGEP"})
    r = await client.patch(
        f"/v1/documents/{doc['id']}",
        json={"metadata": {"orgao": "COGEP", "tema": "teletrabalho"}},
        headers=auth(key),
    )
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["orgao"] == "COGEP" and r.json()["attempts"] == 1
    assert await search(client, key, metadata={"orgao": "COGEP", "tema": "teletrabalho"})
    assert not await search(client, key, metadata={"orgao": "SGP"})
    r = await client.patch(
        f"/v1/documents/{doc['id']}", json={"metadata": {"tema": None}}, headers=auth(key)
    )
    assert "tema" not in r.json()["metadata"]
    assert (await process()).claimed == 0  # nothing was queued
    async with clean_db.connect() as conn:
        after = (await conn.execute(text("SELECT id FROM ai.chunks ORDER BY id"))).all()
    assert after == chunk_ids
    bad = await client.patch(
        f"/v1/documents/{doc['id']}", json={"metadata": "x"}, headers=auth(key)
    )
    assert bad.status_code == 422
    missing = await client.patch(
        f"/v1/documents/{uuid.uuid4()}", json={"metadata": {}}, headers=auth(key)
    )
    assert missing.status_code == 404
    read_only = await client.patch(
        f"/v1/documents/{doc['id']}", json={"metadata": {}}, headers=auth(keys["read"])
    )
    assert read_only.status_code == 403


async def test_deduplication_is_scoped_by_collection_and_key_and_keeps_metadata(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    key = keys["ingest_read"]
    a = await send(client, key, NOTA_V1, collection="rh", metadata={"orgao": "SGP"})
    # another collection never sees the first one
    other = await send(client, key, NOTA_V1, collection="outra", metadata={"x": 1})
    assert other["id"] != a["id"] and other["metadata"] == {"x": 1}
    # a key of the caller's is its own document, even with the same bytes
    keyed = await send(client, key, NOTA_V1, collection="rh", source_key="minha-copia")
    assert keyed["id"] != a["id"] and keyed["metadata"] == {}
    # the same bytes without a key in the same collection: that document, metadata merged
    again = await send(
        client, key, NOTA_V1, expect=200, collection="rh", metadata={"tema": "teletrabalho"}
    )
    assert again["id"] == a["id"] and again["metadata_updated"]
    assert again["metadata"] == {"orgao": "SGP", "tema": "teletrabalho"}
    r = await client.post(
        "/v1/documents",
        files={"file": ("nt.txt", NOTA_V1.encode())},
        data={"collection": "rh", "source_key": "x" * 1001},
        headers=auth(key),
    )
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")


async def test_the_chunks_of_a_document_are_listed_with_their_citations(
    client: httpx.AsyncClient, keys: dict[str, str], process: Process
) -> None:
    key = keys["ingest_read"]
    doc = await send(client, key, NOTA_V1, collection="rh")
    await process()
    r = await client.get(f"/v1/documents/{doc['id']}/chunks", headers=auth(key))
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert items and items[0]["position"] == 0
    assert items[0]["citation"].startswith("Nota Técnica nº 7/2026, art. 1")
    assert "12 (doze) meses" in " ".join(i["text"] for i in items)
