"""Embedding model lifecycle (issue 14) over real PostgreSQL + pgvector, the real
models and the real API: `POST /v1/reembed` sends every current chunk set back through
the queue, the old vectors keep answering (the previous model embeds the question too)
until each document's vectors are swapped in one transaction, uploads go first, and a
model of another dimension lives beside the old one in its own partial HNSW index.

The models: the shipped multilingual-e5-small (384 dimensions), its shipped
Portuguese-pruned sibling (another model of the same dimension), and the same e5 cut
to 256 dimensions behind an OpenAI-compatible server (tests/rerank_scorer.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from dependency_injector import providers
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from application.use_cases.process_batch import BatchReport, ProcessBatch
from entrypoints.api.app import create_app
from entrypoints.container import Container
from tests.integration.conftest import auth, make_settings, shared_model_container
from tests.integration.services import Services
from tests.integration.test_rerank import QUESTION, TEXTS

ANSWER = "parceladas em até três etapas"


@contextlib.asynccontextmanager
async def platform(
    database_url: str, services: Services, current: Container, **overrides: Any
) -> AsyncIterator[tuple[Container, httpx.AsyncClient]]:
    """The platform configured with another model, the current one as the previous
    model (its query embedder is the one already loaded: no second copy in memory)."""
    old = current.embedder()
    settings = make_settings(
        database_url,
        services.redis_url,
        previous_embedding="local:original",
        fair_wait_s=3600,  # one batch takes exactly the jobs it claims
        **overrides,
    )
    container = shared_model_container(settings)
    container.previous_embedders.override(providers.Object({old.model_name: old}))
    transport = httpx.ASGITransport(app=create_app(container), raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield container, c
    finally:
        container.extractor().close()
        container.fast_extractor().close()
        await container.api_doorbell().close()
        await container.engine().dispose()
        container.unwire()


def worker(container: Container, batch_size: int = 8) -> Callable[[], Awaitable[BatchReport]]:
    handler = container.process_batch(uow_factory=container.uow_factory())
    return lambda: handler(ProcessBatch(batch_size=batch_size, worker_id="reembed-worker"))


async def index(client: httpx.AsyncClient, keys: dict[str, str], process: Any) -> None:
    for i, body in enumerate(TEXTS):
        r = await client.post(
            "/v1/documents/text",
            json={"text": body, "filename": f"norma-{i}.txt", "collection": "rh"},
            headers=auth(keys["ingest"]),
        )
        assert r.status_code == 201, r.text
    assert (await process()).completed == len(TEXTS)


async def chunk_models(engine: AsyncEngine) -> dict[tuple[str, int], int]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT model_name, embedding_dim, count(*) FROM ai.chunks GROUP BY 1, 2")
        )
        return {(m, d): n for m, d, n in rows}


async def chunk_rows(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT id, document_id, position, text FROM ai.chunks ORDER BY id")
        )
        return [tuple(r) for r in rows]


async def ordered_plan(engine: AsyncEngine, sql: str, params: dict[str, Any] | None = None) -> str:
    """The plan of `sql` as a large table gets it: with a handful of rows the planner
    would scan and sort them, so sequential scans and sorts are ruled out."""
    async with engine.begin() as conn:
        await conn.execute(text("SET LOCAL enable_seqscan = off"))
        await conn.execute(text("SET LOCAL enable_sort = off"))
        rows = await conn.execute(text("EXPLAIN " + sql), params or {})
        return "\n".join(r[0] for r in rows)


async def search(c: httpx.AsyncClient, key: str, mode: str, top_k: int = 3) -> list[dict[str, Any]]:
    r = await c.post(
        "/v1/search", json={"query": QUESTION, "mode": mode, "top_k": top_k}, headers=auth(key)
    )
    assert r.status_code == 200, r.text
    hits: list[dict[str, Any]] = r.json()["results"]
    return hits


async def test_reembed_moves_every_chunk_set_while_the_old_vectors_answer(
    database_url: str,
    services: Services,
    container: Container,
    client: httpx.AsyncClient,
    keys: dict[str, str],
    process: Any,
    clean_db: AsyncEngine,
) -> None:
    await index(client, keys, process)
    old = container.embedder().model_name
    before = await chunk_rows(clean_db)
    async with platform(database_url, services, container, embedding_variant="enpt") as (
        target,
        api,
    ):
        new = target.embedder().model_name
        assert new != old and target.embedder().dimension == 384
        r = await api.post("/v1/reembed", json={}, headers=auth(keys["read"]))
        assert r.status_code == 403  # an operator's action: admin keys only
        r = await api.post("/v1/reembed", json={}, headers=auth(keys["admin"]))
        assert r.status_code == 202, r.text
        assert r.json() == {"model": new, "dim": 384, "queued": len(TEXTS)}
        jobs = (await api.get("/v1/jobs", headers=auth(keys["read"]))).json()["items"]
        assert {(j["status"], j["kind"]) for j in jobs} == {("PENDING", "reembed")}
        stats = (await api.get("/v1/stats", headers=auth(keys["admin"]))).json()
        assert stats["embedding_model"] == {"model": new, "dim": 384, "chunks": 0}
        assert "answer through the previous model" in stats["warnings"][0]

        # nothing re-embedded yet: the old vectors answer, through the previous model
        hits = await search(api, keys["read"], "vector")
        assert ANSWER in hits[0]["text"]

        report = await worker(target)()
        assert (report.completed, report.failed) == (len(TEXTS), 0)
        assert await chunk_models(clean_db) == {(new, 384): len(TEXTS)}
        # the same chunks (ids, positions, text): only their vectors changed
        assert await chunk_rows(clean_db) == before
        jobs = (await api.get("/v1/jobs", headers=auth(keys["read"]))).json()["items"]
        assert {(j["status"], j["kind"]) for j in jobs} == {("COMPLETED", "reembed")}
        assert all(j["progress"]["chunks_done"] == j["progress"]["chunks_total"] for j in jobs)
        hits = await search(api, keys["read"], "vector")
        assert ANSWER in hits[0]["text"]
        stats = (await api.get("/v1/stats", headers=auth(keys["admin"]))).json()
        assert stats["warnings"] == []
        # everything is in the configured model: nothing to queue
        r = await api.post("/v1/reembed", json={}, headers=auth(keys["admin"]))
        assert r.json()["queued"] == 0


async def test_uploads_are_claimed_before_reembed_jobs(
    database_url: str,
    services: Services,
    container: Container,
    client: httpx.AsyncClient,
    keys: dict[str, str],
    process: Any,
) -> None:
    await index(client, keys, process)
    async with platform(database_url, services, container, embedding_variant="enpt") as (
        target,
        api,
    ):
        r = await api.post("/v1/reembed", json={"collection": "rh"}, headers=auth(keys["admin"]))
        assert r.json()["queued"] == len(TEXTS)
        r = await api.post(
            "/v1/documents/text",
            json={"text": "Art. 9º Norma nova.", "filename": "nova.txt", "collection": "rh"},
            headers=auth(keys["ingest"]),
        )
        upload = r.json()["id"]
        async with target.uow_factory()() as uow:
            claims = await uow.jobs.claim(
                batch_size=1, worker_id="w", lease_seconds=60, now=target.clock().now()
            )
            await uow.commit()
        assert [str(c.document_id) for c in claims] == [upload]
        assert claims[0].kind.value == "ingest"


async def test_a_model_of_another_dimension_lives_beside_the_old_one(
    database_url: str,
    services: Services,
    container: Container,
    client: httpx.AsyncClient,
    keys: dict[str, str],
    process: Any,
    clean_db: AsyncEngine,
    scorer: str,
) -> None:
    await index(client, keys, process)
    old = container.embedder().model_name
    async with platform(
        database_url,
        services,
        container,
        embedding_backend="openai",
        embedding_model="e5-small-256",
        embedding_base_url=f"{scorer}/v1",
        embedding_dimensions=256,
        embedding_query_prefix="",
        embedding_passage_prefix="",
        embedding_send_input_type=True,
    ) as (target, api):
        r = await api.post("/v1/reembed", json={}, headers=auth(keys["admin"]))
        assert r.json() == {"model": "e5-small-256", "dim": 256, "queued": len(TEXTS)}

        # half-way: some documents in 256 dimensions, the rest still in 384
        assert (await worker(target, batch_size=2)()).completed == 2
        assert await chunk_models(clean_db) == {
            ("e5-small-256", 256): 2,
            (old, 384): len(TEXTS) - 2,
        }
        hits = await search(api, keys["read"], "vector", top_k=10)
        assert len(hits) == len(TEXTS)  # every document answers, whichever its model
        assert ANSWER in (await search(api, keys["read"], "hybrid"))[0]["text"]

        assert (await worker(target)()).completed == len(TEXTS) - 2
        assert await chunk_models(clean_db) == {("e5-small-256", 256): len(TEXTS)}
        hits = await search(api, keys["read"], "vector")
        assert ANSWER in hits[0]["text"]

    # the query a 256-dimensional model makes is served by that dimension's own index
    query = "[" + ",".join(["0.0625"] * 256) + "]"
    plan = await ordered_plan(
        clean_db,
        "SELECT c.id FROM ai.chunks c WHERE c.embedding_dim = 256 "
        "AND c.model_name = 'e5-small-256' "
        "ORDER BY (c.embedding::vector(256)) <=> CAST(:q AS vector(256)) LIMIT 5",
        {"q": query},
    )
    assert "ix_chunks_embedding_256_hnsw" in plan, plan


async def test_a_claim_uses_the_pending_index(clean_db: AsyncEngine) -> None:
    plan = await ordered_plan(
        clean_db,
        "SELECT id FROM ai.ingestion_queue "
        "WHERE status = CAST('PENDING' AS ai.ingestionstatus) "
        "ORDER BY kind, created_at LIMIT 8 FOR UPDATE SKIP LOCKED",
    )
    assert "ix_ingestion_queue_pending_kind_created_at" in plan, plan


@pytest.mark.parametrize("body", [{"collection": "Não Vale"}, {"modelo": "x"}])
async def test_bad_reembed_requests_are_refused_with_a_reason(
    client: httpx.AsyncClient, keys: dict[str, str], body: dict[str, Any]
) -> None:
    r = await client.post("/v1/reembed", json=body, headers=auth(keys["admin"]))
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
