"""The law in force, end to end: upload through the API, the worker's ProcessBatch with
the real sandboxed parsers, chunker and model, then POST /v1/search. Revoked text never
answers; hits carry citations; `expand: article` returns the whole article."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from application.use_cases.process_batch import ProcessBatch
from entrypoints.container import Container
from entrypoints.settings import Settings
from tests.integration.conftest import auth, make_settings
from tests.integration.services import Services
from tests.legal_documents import OLD_FERIAS_WORDING, REVOKED_LICENCA, planalto_html

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "leis-federais"


@pytest.fixture
def settings(database_url: str, services: Services) -> Settings:
    return make_settings(database_url, services.redis_url, max_upload_bytes=5_000_000)


@pytest.fixture
async def process(container: Container) -> AsyncIterator[object]:
    handler = container.process_batch(uow_factory=container.uow_factory())

    async def run() -> None:
        report = await handler(ProcessBatch(batch_size=8, worker_id="test-worker"))
        assert report.failed == 0 and report.completed == report.claimed > 0

    yield run
    container.extractor().close()


async def upload(client: httpx.AsyncClient, key: str, name: str, data: bytes, **form: str) -> str:
    r = await client.post(
        "/v1/documents", files={"file": (name, data)}, data=form, headers=auth(key)
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def search(client: httpx.AsyncClient, key: str, query: str, **body: object) -> list[dict]:  # type: ignore[type-arg]
    r = await client.post("/v1/search", json={"query": query, **body}, headers=auth(key))
    assert r.status_code == 200, r.text
    return list(r.json()["results"])


async def test_a_planalto_page_answers_with_the_law_in_force_and_cites_it(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    process: object,
    clean_db: AsyncEngine,
) -> None:
    key = keys["ingest_read"]
    doc_id = await upload(client, key, "L8112.htm", planalto_html(), collection="leis")
    await process()  # type: ignore[operator]
    doc = (await client.get(f"/v1/documents/{doc_id}", headers=auth(key))).json()
    assert doc["status"] == "COMPLETED"
    assert doc["metadata"]["norm"] == "Lei nº 8.112/1990"
    assert doc["metadata"]["norm_date"] == "1990-12-11"
    assert doc["metadata"]["norm_ementa"].startswith("Dispõe sobre o regime jurídico")
    report = doc["extraction"]
    assert report["revoked_units"] == 2 and report["vetoed_units"] == 1
    assert report["struck_chars"] > 0 and report["boilerplate_lines"] >= 6

    async with clean_db.connect() as conn:
        stored = "\n".join(
            (await conn.execute(text("SELECT heading || ' ' || text FROM ai.chunks"))).scalars()
        )
    for gone in (REVOKED_LICENCA, OLD_FERIAS_WORDING, "Presidência da República", "Revogado"):
        assert gone not in stored

    for mode in ("hybrid", "keyword", "vector"):
        hits = await search(client, key, "licença-prêmio por assiduidade de três meses", mode=mode)
        assert hits, mode  # the law in force answers (art. 87), never the revoked text
        assert all("licença-prêmio" not in h["text"] for h in hits), mode

    hits = await search(client, key, "em quantas etapas posso parcelar minhas férias?")
    top = hits[0]
    assert top["citation"] == "Lei nº 8.112/1990, art. 77"
    assert top["article"] == "77" and top["norm"] == "Lei nº 8.112/1990"
    assert top["amended_by"] == ["Lei nº 9.525/1997"]
    assert "CAPÍTULO III - DAS FÉRIAS" in top["heading"]
    assert "parceladas em até três etapas" in top["text"]


async def test_uploader_metadata_wins_over_the_detected_norm(
    client: httpx.AsyncClient, keys: dict[str, str], process: object, clean_db: AsyncEngine
) -> None:
    key = keys["ingest_read"]
    doc_id = await upload(
        client,
        key,
        "L8112.htm",
        planalto_html(),
        metadata='{"norm": "Estatuto dos Servidores", "orgao": "COGEP"}',
    )
    await process()  # type: ignore[operator]
    meta = (await client.get(f"/v1/documents/{doc_id}", headers=auth(key))).json()["metadata"]
    assert meta["norm"] == "Estatuto dos Servidores"
    assert meta["orgao"] == "COGEP"
    assert meta["norm_number"] == "8.112"  # detected, where the uploader said nothing


async def test_expand_returns_the_whole_article_of_a_hit_within_its_bound(
    client: httpx.AsyncClient, keys: dict[str, str], process: object, clean_db: AsyncEngine
) -> None:
    key = keys["ingest_read"]
    data = (CORPUS / "processo_administrativo_lei_9784.docx").read_bytes()
    await upload(client, key, "processo_administrativo_lei_9784.docx", data)
    await process()  # type: ignore[operator]
    query = (
        "interpretação da norma administrativa vedada aplicação retroativa de nova interpretação"
    )
    hits = await search(client, key, query, expand="article", top_k=3)
    art2 = next(h for h in hits if h["article"] == "2")
    assert art2["citation"].startswith("Lei nº 9.784/1999, art. 2º")
    expanded = art2["expanded"]
    assert expanded.startswith("Art. 2")  # the caput, though the hit may be a later part
    assert "I - atuação conforme a lei e o Direito" in expanded
    assert "XIII - interpretação da norma administrativa" in expanded
    assert len(expanded) <= 12_000
    plain = await search(client, key, query, top_k=3)
    assert all(h["expanded"] is None for h in plain)


@pytest.mark.parametrize("mode", ["hybrid", "keyword", "vector"])
async def test_control_characters_in_a_query_are_not_a_server_error(
    client: httpx.AsyncClient, keys: dict[str, str], clean_db: AsyncEngine, mode: str
) -> None:
    key = keys["read"]
    r = await client.post(
        "/v1/search",
        json={"query": "férias\u0000 do\x07 servidor", "mode": mode},
        headers=auth(key),
    )
    assert r.status_code == 200, r.text
    assert r.json()["query"] == "férias do servidor"
    only = await client.post("/v1/search", json={"query": "\u0000\u0001"}, headers=auth(key))
    assert only.status_code == 422
    assert only.headers["content-type"].startswith("application/problem+json")
