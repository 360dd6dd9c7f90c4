"""The optional reranking stage (issue 14) against a small real scorer behind the
`/rerank` API (tests/rerank_scorer.py: the platform's e5 model scoring by cosine), over
real PostgreSQL: the fused candidates come back in the scorer's order with its scores,
in both API shapes; a scorer that is down leaves the fused order and the search
answering."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from adapters.services.embedded import free_port
from application.use_cases.search import SearchChunks
from domain.search import SearchMode
from entrypoints.container import Container
from tests.integration.conftest import auth, make_settings, shared_model_container
from tests.integration.services import Services

TEXTS = [
    "Art. 1º O servidor fará jus a trinta dias de férias por exercício.",
    "Art. 2º As férias podem ser parceladas em até três etapas, a pedido do servidor.",
    "Art. 3º O auxílio-alimentação será pago em pecúnia, mensalmente.",
    "Art. 4º A licença para capacitação é de até três meses a cada quinquênio.",
    "Art. 5º O adicional de férias corresponde a um terço da remuneração.",
]
QUESTION = "posso dividir minhas férias em partes?"


@contextlib.asynccontextmanager
async def searcher(
    database_url: str, services: Services, **overrides: Any
) -> AsyncIterator[Container]:
    container = shared_model_container(make_settings(database_url, services.redis_url, **overrides))
    try:
        yield container
    finally:
        reranker = container.reranker()
        if reranker is not None:
            await reranker.aclose()
        await container.engine().dispose()


async def search(container: Container, top_k: int) -> list[Any]:
    result = await container.search()(
        SearchChunks(QUESTION, top_k=top_k, mode=SearchMode.HYBRID), container.uow_factory()()
    )
    return list(result.hits)


@pytest.fixture
async def indexed(client: httpx.AsyncClient, keys: dict[str, str], process: Any) -> None:
    for i, text in enumerate(TEXTS):
        r = await client.post(
            "/v1/documents/text",
            json={"text": text, "filename": f"norma-{i}.txt"},
            headers=auth(keys["ingest"]),
        )
        assert r.status_code == 201, r.text
    assert (await process()).completed == len(TEXTS)


@pytest.mark.parametrize("style", ["tei", "cohere"])
async def test_the_fused_candidates_come_back_in_the_scorer_s_order(
    database_url: str, services: Services, scorer: str, indexed: None, style: str
) -> None:
    async with searcher(database_url, services) as plain:
        fused = await search(plain, top_k=30)
    assert len(fused) == len(TEXTS) and all(h.rerank_score is None for h in fused)
    async with searcher(
        database_url, services, rerank_url=scorer, rerank_style=style, rerank_candidates=30
    ) as reranked:
        every = await search(reranked, top_k=30)
        top = await search(reranked, top_k=2)
    scores = [h.rerank_score for h in every]
    assert all(s is not None for s in scores)
    assert scores == sorted(scores, reverse=True)  # the scorer's order
    assert {h.chunk_id for h in every} == {h.chunk_id for h in fused}  # the same candidates
    assert [h.chunk_id for h in top] == [h.chunk_id for h in every[:2]]
    assert "parceladas em até três etapas" in top[0].text
    # the scorer is the one behind the API: its scores for these passages, recomputed
    async with httpx.AsyncClient() as c:
        body = {"query": QUESTION, "texts": [every[0].text]}
        direct = (await c.post(f"{scorer}/rerank", json=body)).json()[0]["score"]
    assert abs(direct - (every[0].rerank_score or 0)) < 0.05  # heading joined in: close


async def test_a_scorer_that_is_down_leaves_the_fused_order(
    database_url: str, services: Services, indexed: None
) -> None:
    async with searcher(database_url, services) as plain:
        fused = [h.chunk_id for h in await search(plain, top_k=5)]
    down = f"http://127.0.0.1:{free_port()}"
    async with searcher(database_url, services, rerank_url=down, rerank_timeout_s=1) as rr:
        hits = await search(rr, top_k=5)
    assert [h.chunk_id for h in hits] == fused
    assert all(h.rerank_score is None for h in hits)


async def test_the_api_shows_the_reranker_s_score(
    database_url: str, services: Services, scorer: str, indexed: None, keys: dict[str, str]
) -> None:
    from entrypoints.api.app import create_app

    async with searcher(database_url, services, rerank_url=scorer) as container:
        transport = httpx.ASGITransport(app=create_app(container))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            r = await client.post(
                "/v1/search", json={"query": QUESTION, "top_k": 3}, headers=auth(keys["read"])
            )
        container.unwire()
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [h["rerank_score"] for h in results] == sorted(
        (h["rerank_score"] for h in results), reverse=True
    )
    assert "parceladas" in results[0]["text"]
