"""SQL-injection strings in every field of the API: a clear 4xx where the field has a
format, stored literally where it is free text, and nothing else changed."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from application.ports import UnitOfWorkFactory
from domain.model import Chunk, Document, DocumentType
from tests.integration.conftest import auth

INJECTIONS = [
    "'; DROP TABLE ai.documents; --",
    "x' OR '1'='1",
    "1; DELETE FROM ai.chunks WHERE true; --",
    "$$; TRUNCATE ai.ingestion_queue; $$",
    "\\'; SELECT pg_sleep(10); --",
]


async def table_counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        return {
            t: (await conn.execute(text(f"SELECT count(*) FROM ai.{t}"))).scalar_one()
            for t in ("documents", "document_contents", "ingestion_queue", "chunks", "api_keys")
        }


@pytest.mark.parametrize("payload", INJECTIONS)
async def test_free_text_fields_are_stored_literally(
    client: httpx.AsyncClient, keys: dict[str, str], clean_db: AsyncEngine, payload: str
) -> None:
    response = await client.post(
        "/v1/documents",
        headers={**auth(keys["ingest_read"]), "Idempotency-Key": payload.replace(" ", "_")[:100]},
        files={"file": (f"{payload}.txt", f"conteúdo {payload}".encode(), "text/plain")},
        data={"metadata": json.dumps({"origem": payload, payload: "valor"})},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["metadata"] == {"origem": payload, payload: "valor"}
    fetched = await client.get(f"/v1/documents/{body['id']}", headers=auth(keys["read"]))
    assert fetched.json()["metadata"]["origem"] == payload
    counts = await table_counts(clean_db)
    assert counts["documents"] == counts["ingestion_queue"] == counts["document_contents"] == 1


@pytest.mark.parametrize("payload", INJECTIONS)
async def test_formatted_fields_refuse_injections_with_a_reason(
    client: httpx.AsyncClient, keys: dict[str, str], clean_db: AsyncEngine, payload: str
) -> None:
    before = await table_counts(clean_db)
    key = keys["admin"]
    attempts = [
        client.post(
            "/v1/documents",
            headers=auth(key),
            files={"file": ("a.txt", b"texto", "text/plain")},
            data={"collection": payload},
        ),
        client.post(
            "/v1/documents/text", headers=auth(key), json={"text": "x", "collection": payload}
        ),
        client.get("/v1/documents", headers=auth(key), params={"collection": payload}),
        client.get("/v1/documents", headers=auth(key), params={"status": payload}),
        client.get("/v1/documents", headers=auth(key), params={"cursor": payload}),
        client.get("/v1/jobs", headers=auth(key), params={"status": payload}),
        client.get(f"/v1/documents/{payload}", headers=auth(key)),
        client.delete(f"/v1/documents/{payload}", headers=auth(key)),
        client.post(f"/v1/jobs/{payload}/retry", headers=auth(key)),
        client.post("/v1/search", headers=auth(key), json={"query": "x", "collection": payload}),
        client.post("/v1/search", headers=auth(key), json={"query": "x", "mode": payload}),
        client.post(
            "/v1/search", headers=auth(key), json={"query": "x", "document_ids": [payload]}
        ),
    ]
    for response in [await a for a in attempts]:
        assert response.status_code == 422, (response.request.url, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["detail"]
    assert await table_counts(clean_db) == before


@pytest.mark.parametrize("payload", INJECTIONS)
async def test_search_text_and_metadata_filters_are_only_data(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    uow_factory: UnitOfWorkFactory,
    clean_db: AsyncEngine,
    payload: str,
) -> None:
    now = datetime.now(UTC)
    doc = Document(uuid.uuid4(), "rh", "a.txt", DocumentType.TEXT, 1, "0" * 64, {"orgao": "X"}, now)
    doc.is_current = True  # its chunk set is stored directly below: it answers
    async with uow_factory() as uow:
        await uow.documents.add(doc, b"x")
        vector = [1.0] + [0.0] * 383
        await uow.chunks.replace(
            doc.id, [Chunk(doc.id, 0, payload, 5, None, vector, "multilingual-e5-small-q4", 384)]
        )
        await uow.commit()
    before = await table_counts(clean_db)
    search = {"query": payload, "mode": "vector"}
    found = await client.post("/v1/search", headers=auth(keys["read"]), json=search)
    assert found.status_code == 200 and len(found.json()["results"]) == 1  # the chunk is there
    for mode in ("vector", "keyword", "hybrid"):
        response = await client.post(
            "/v1/search",
            headers=auth(keys["read"]),
            json={"query": payload, "mode": mode, "metadata": {payload: payload}},
        )
        assert response.status_code == 200, response.text
        assert response.json()["results"] == []  # the filter is a JSON value, not SQL
    assert await table_counts(clean_db) == before


@pytest.mark.parametrize("mode", ["vector", "keyword", "hybrid"])
@pytest.mark.parametrize(
    "query", ["servidor\x00público", "\x00", "férias\x00\x00'; --", "a\x00" * 200]
)
async def test_nul_and_control_characters_in_a_query_are_data_not_a_500(
    client: httpx.AsyncClient, keys: dict[str, str], clean_db: AsyncEngine, mode: str, query: str
) -> None:
    r = await client.post(
        "/v1/search", headers=auth(keys["read"]), json={"query": query, "mode": mode}
    )
    if query.replace("\x00", "").strip():
        assert r.status_code == 200, r.text
        assert r.json()["results"] == []
    else:  # nothing left once the NULs go: the same answer as an empty query
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")


async def test_an_api_key_that_is_an_injection_is_just_unknown(
    client: httpx.AsyncClient, clean_db: AsyncEngine
) -> None:
    before = await table_counts(clean_db)
    for payload in INJECTIONS:
        response = await client.get("/v1/documents", headers=auth(payload))
        assert response.status_code == 401
    assert await table_counts(clean_db) == before


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        ('{"processo": 123456789012345678901234567890}', "beyond ±9007199254740991"),
        ('{"valor": NaN}', "NaN or Infinity"),
        ('{"valor": [1, {"x": Infinity}]}', "NaN or Infinity"),
        ('{"valor": -Infinity}', "NaN or Infinity"),
        ('{"orgao": "SEGEP\\u0000"}', "must not contain NUL"),
        ('{"orgao": "\\ud800"}', "not valid JSON"),  # a lone surrogate: not Unicode
        (b'{"orgao": "S\xe3o Lu\xeds"}', "not valid UTF-8"),  # Latin-1 bytes
    ],
)
@pytest.mark.parametrize("route", ["multipart", "json"])
async def test_metadata_json_cannot_hold_is_refused_alike_on_both_routes(
    client: httpx.AsyncClient, keys: dict[str, str], raw: str | bytes, said: str, route: str
) -> None:
    headers = auth(keys["ingest"])
    if route == "multipart":
        r = await client.post(
            "/v1/documents",
            files={"file": ("a.txt", b"Art. 1 Conteudo.", "text/plain")},
            data={"metadata": raw},
            headers=headers,
        )
    else:  # the raw JSON text, as a client that writes NaN would send it
        raw_bytes = raw if isinstance(raw, bytes) else raw.encode()
        body = b'{"text": "Art. 1 Conteudo.", "metadata": ' + raw_bytes + b"}"
        r = await client.post(
            "/v1/documents/text",
            content=body,
            headers=headers | {"content-type": "application/json"},
        )
    assert r.status_code == 422, r.text
    assert said in r.text


@pytest.mark.parametrize("route", ["multipart", "json"])
async def test_metadata_within_json_s_exact_range_is_stored_exactly(
    client: httpx.AsyncClient, keys: dict[str, str], route: str
) -> None:
    metadata = {"processo": 9007199254740991, "negativo": -9007199254740991, "taxa": 0.1}
    headers = auth(keys["ingest"])
    if route == "multipart":
        r = await client.post(
            "/v1/documents",
            files={"file": ("b.txt", b"Art. 2 Conteudo.", "text/plain")},
            data={"metadata": json.dumps(metadata)},
            headers=headers,
        )
    else:
        r = await client.post(
            "/v1/documents/text",
            json={"text": "Art. 3 Conteudo.", "metadata": metadata},
            headers=headers,
        )
    assert r.status_code == 201, r.text
    shown = await client.get(f"/v1/documents/{r.json()['id']}", headers=auth(keys["read"]))
    assert shown.json()["metadata"] == metadata


@pytest.mark.parametrize(
    ("stamp", "status"),
    [
        ("9999-12-31T23:59:59-23:59", 422),  # past year 9999 once in UTC
        ("0001-01-01T00:00:00+23:59", 422),  # before year 1 once in UTC
        ("0001-01-01T00:00:00+00:00", 200),  # the first instant there is: an empty page
    ],
)
@pytest.mark.parametrize(
    ("path", "param"),
    [("/v1/documents", "cursor"), ("/v1/jobs", "cursor"), ("/v1/changes", "after")],
)
async def test_cursors_at_the_edges_of_the_calendar_are_refused_not_500(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    stamp: str,
    status: int,
    path: str,
    param: str,
) -> None:
    import base64

    cursor = base64.urlsafe_b64encode(f"{stamp}|{uuid.uuid4()}".encode()).decode().rstrip("=")
    r = await client.get(path, params={param: cursor}, headers=auth(keys["read"]))
    assert r.status_code == status, r.text
    if status == 422:
        assert "the cursor is not one this API returned" in r.text
