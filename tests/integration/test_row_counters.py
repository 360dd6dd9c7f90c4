"""Jobs by status and chunks by model come from trigger-kept counters (migration 0011):
exact after every kind of write, folded or not, with a fleet writing at once."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from application.ports import UnitOfWorkFactory
from domain.model import IngestionJob, IngestionStatus
from tests.integration.test_keyword_index import chunks, store
from tests.integration.test_search import document

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def recount(
    engine: AsyncEngine,
) -> tuple[dict[IngestionStatus, int], dict[tuple[str, int], int]]:
    async with engine.connect() as conn:
        jobs = dict.fromkeys(IngestionStatus, 0)
        for status, n in await conn.execute(
            text("SELECT status, count(*) FROM ai.ingestion_queue GROUP BY status")
        ):
            jobs[IngestionStatus(status)] = n
        models = {
            (name, dim): n
            for name, dim, n in await conn.execute(
                text(
                    "SELECT model_name, embedding_dim, count(*) FROM ai.chunks "
                    "GROUP BY model_name, embedding_dim"
                )
            )
        }
    return jobs, models


async def assert_counts_exact(uow_factory: UnitOfWorkFactory, engine: AsyncEngine) -> None:
    async with uow_factory() as uow:
        counted = (await uow.jobs.counts_by_status(), await uow.chunks.models())
    assert counted == await recount(engine)


async def deltas(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(
            (await conn.execute(text("SELECT count(*) FROM ai.row_count_deltas"))).scalar_one()
        )


async def fold(uow_factory: UnitOfWorkFactory) -> int:
    async with uow_factory() as uow:
        n = await uow.jobs.fold_counts()
        await uow.commit()
    return n


async def test_counts_follow_every_write_folded_or_not(
    uow_factory: UnitOfWorkFactory, clean_db: AsyncEngine
) -> None:
    docs = [document(f"d{i}.txt") for i in range(6)]
    for doc in docs:
        await store(uow_factory, doc, ["O servidor fará jus a férias.", "Prazo de recurso."])
        async with uow_factory() as uow:
            await uow.jobs.add(IngestionJob.new(doc.id, NOW, max_attempts=3))
            await uow.commit()
    await assert_counts_exact(uow_factory, clean_db)
    assert await deltas(clean_db) > 0
    assert await fold(uow_factory) > 0
    assert await deltas(clean_db) == 0
    await assert_counts_exact(uow_factory, clean_db)
    # claims (status updates of several rows in one statement), a new chunk set of
    # another model, a deletion that cascades to chunks and job, a raw bulk update
    async with uow_factory() as uow:
        claimed = await uow.jobs.claim(batch_size=4, worker_id="w", lease_seconds=60, now=NOW)
        await uow.commit()
    assert len(claimed) == 4
    other = [
        replace(c, model_name="outro", embedding=list(c.embedding)[:256], embedding_dim=256)
        for c in chunks(docs[0], ["Abono."])
    ]
    async with uow_factory() as uow:
        await uow.chunks.replace(docs[0].id, other)
        assert await uow.documents.delete(docs[1].id)
        await uow.commit()
    async with clean_db.begin() as conn:
        await conn.execute(
            text(
                "UPDATE ai.ingestion_queue SET status = 'FAILED' "
                "WHERE status = CAST('PENDING' AS ai.ingestionstatus)"
            )
        )
    await assert_counts_exact(uow_factory, clean_db)
    async with uow_factory() as uow:
        counts = await uow.jobs.counts_by_status()
        models = await uow.chunks.models()
    assert counts[IngestionStatus.PROCESSING] == len(
        [c for c in claimed if c.document_id != docs[1].id]
    )
    assert counts[IngestionStatus.PENDING] == 0
    assert models[("outro", 256)] == 1
    await fold(uow_factory)
    await assert_counts_exact(uow_factory, clean_db)


async def test_a_fleet_writing_and_folding_at_once_keeps_counts_exact(
    uow_factory: UnitOfWorkFactory, clean_db: AsyncEngine
) -> None:
    async def writer(i: int) -> None:
        for k in range(4):
            doc = document(f"w{i}-{k}.txt")
            await store(uow_factory, doc, [f"Texto {i} {k}.", "Outro."])
            async with uow_factory() as uow:
                await uow.jobs.add(IngestionJob.new(doc.id, NOW, max_attempts=3))
                await uow.commit()
            async with uow_factory() as uow:
                await uow.jobs.claim(batch_size=1, worker_id=f"w{i}", lease_seconds=60, now=NOW)
                await uow.commit()

    async def folder() -> None:
        for _ in range(10):
            await fold(uow_factory)
            await asyncio.sleep(0.01)

    await asyncio.wait_for(asyncio.gather(*(writer(i) for i in range(8)), folder(), folder()), 120)
    await assert_counts_exact(uow_factory, clean_db)
    await fold(uow_factory)
    assert await deltas(clean_db) == 0
    await assert_counts_exact(uow_factory, clean_db)
