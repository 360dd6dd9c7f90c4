"""cogep_client against the real API under uvicorn (PostgreSQL, Redis, the worker's
ProcessBatch): every route through the typed sync and async clients, and the API's
refusals as ApiError with the problem's code."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from cogep_client import ApiError, AsyncClient, Client, Document
from entrypoints.container import Container
from tests.integration.live import running_api
from tests.integration.services import Services

LAW = (
    "LEI Nº 9.999, DE 1º DE JUNHO DE 2026\n\nDispõe sobre o teletrabalho.\n\n"
    "Art. 1º O servidor poderá exercer suas atribuições em teletrabalho, mediante plano "
    "de trabalho aprovado pela chefia imediata.\n\n"
    "Art. 2º O teletrabalho não gera direito a auxílio-transporte.\n"
)


@pytest.fixture(scope="module")
def api(database_url: str, services: Services) -> Iterator[str]:
    with running_api(database_url, services.redis_url) as url:
        yield url


async def test_the_sync_client_walks_the_whole_api(
    api: str, container: Container, process: Any, keys: dict[str, str]
) -> None:
    client = Client(api, keys["admin"])  # blocking: called from a thread here

    def upload() -> tuple[Document, Document]:
        first = client.submit_text(LAW, collection="leis", metadata={"orgao": "SEGEP"})
        assert isinstance(first, Document) and first.created is True
        assert first.status == "PENDING" and first.job is not None
        again = client.submit_text(LAW, collection="leis")
        assert again.created is False and again.id == first.id  # the same content
        uploaded = client.upload(b"Art. 1 Manual de ferias.", "manual.txt", collection="manuais")
        assert uploaded.created is True and uploaded.filename == "manual.txt"
        return first, uploaded

    def read_and_change(first: Document, uploaded: Document) -> None:
        doc = client.document(first.id)
        assert doc.status == "COMPLETED" and doc.chunk_count >= 1
        assert doc.metadata["norm"] == "Lei nº 9.999/2026"
        found = client.search("teletrabalho gera auxílio-transporte?", collection="leis")
        top = found.results[0]
        assert top.norm == "Lei nº 9.999/2026" and "auxílio-transporte" in top.text
        assert top.citation is not None and top.citation.startswith("Lei nº 9.999/2026, art")
        passage = client.chunks(first.id, after=top.position - 1, limit=1, expand="article")
        assert passage.items[0].chunk_id == top.chunk_id
        assert passage.items[0].expanded and "teletrabalho" in passage.items[0].expanded

        assert client.versions(first.id).current == first.id
        patched = client.patch_metadata(first.id, {"orgao": None, "tema": "teletrabalho"})
        assert patched.metadata.get("tema") == "teletrabalho" and "orgao" not in patched.metadata
        assert {c.name: c.documents for c in client.collections()} == {"leis": 1, "manuais": 1}
        assert client.stats().jobs["COMPLETED"] == 2

        names = [d.filename for d in client.iter_documents(limit=1)]  # one per page
        assert sorted(names) == ["manual.txt", "texto.txt"]
        jobs = client.jobs(status="COMPLETED")
        assert {j.document_id for j in jobs.items} == {first.id, uploaded.id}

        with pytest.raises(ApiError) as conflict:
            client.cancel(first.id)
        assert conflict.value.status == 409
        assert client.reprocess(uploaded.id).status == "PENDING"
        client.delete(uploaded.id)
        with pytest.raises(ApiError) as gone:
            client.document(uploaded.id)
        assert gone.value.status == 404 and gone.value.code == "document_not_found"

    with client:
        first, uploaded = await asyncio.to_thread(upload)
        assert (await process()).completed == 2
        await asyncio.to_thread(read_and_change, first, uploaded)


async def test_the_async_client_and_refusals(
    api: str, container: Container, keys: dict[str, str]
) -> None:
    limited = await container.api_keys().create("rh", ["ingest", "read"], collections=["rh"])
    async with AsyncClient(api, limited.plaintext) as client:
        doc = await client.submit_text("Art. 1 Norma interna de férias.")
        assert doc.collection == "rh"  # the key's only collection
        assert [d.id async for d in client.iter_documents()] == [doc.id]
        with pytest.raises(ApiError) as forbidden:
            await client.search("férias", collection="leis")
        assert forbidden.value.status == 403 and forbidden.value.code == "collection_forbidden"
        with pytest.raises(ApiError) as scope:
            await client.delete(doc.id)  # needs an admin key
        assert scope.value.status == 403 and scope.value.code == "insufficient_scope"
        changes = await client.changes(wait_s=0)
        assert all(c.collection == "rh" for c in changes.items)
    async with AsyncClient(api, "cgp_00000000_unknown") as stranger:
        with pytest.raises(ApiError) as unknown:
            await stranger.stats()
        assert unknown.value.status == 401 and unknown.value.code == "invalid_api_key"


async def test_the_langchain_retriever_returns_cited_passages(
    api: str, process: Any, keys: dict[str, str], container: Container
) -> None:
    from langchain_core.retrievers import BaseRetriever

    from cogep_client.langchain import CogepRetriever

    async with AsyncClient(api, keys["ingest"]) as client:
        doc = await client.submit_text(LAW, collection="leis")
    assert (await process()).completed == 1
    retriever = CogepRetriever(base_url=api, api_key=keys["read"], collection="leis", top_k=3)
    assert isinstance(retriever, BaseRetriever)
    question = "o teletrabalho dá direito a auxílio-transporte?"
    found = await asyncio.to_thread(retriever.invoke, question)  # the sync path
    assert 1 <= len(found) <= 3
    top = found[0]
    assert "auxílio-transporte" in top.page_content
    assert top.metadata["norm"] == "Lei nº 9.999/2026"
    assert top.metadata["citation"].startswith("Lei nº 9.999/2026, art")
    assert top.metadata["document_id"] == str(doc.id) and top.metadata["collection"] == "leis"
    again = await retriever.ainvoke(question)  # the async path: the same passages
    assert [d.id for d in again] == [d.id for d in found]
    whole = CogepRetriever(base_url=api, api_key=keys["read"], whole_articles=True, top_k=1)
    (article,) = await whole.ainvoke(question)
    assert "teletrabalho" in article.page_content
    elsewhere = CogepRetriever(base_url=api, api_key=keys["read"], collection="manuais")
    assert await elsewhere.ainvoke(question) == []
