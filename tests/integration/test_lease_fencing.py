"""Lease fencing against real PostgreSQL: a worker whose lease was taken over writes
nothing, whatever its clock says.

Decision (docs/decisions/0014-operations.md): a lease is *fenced by its token*, never by
time. Times only decide when the sweeper may hand a job back; every write of a worker
checks, in its own transaction and under the job's row lock, that the job is still
PROCESSING under the worker's own token. So when clocks disagree (here the sweeper's
machine runs ten minutes ahead: A's lease looks long expired to it) a worker can at
worst lose its work to another; it can never write over the other's result."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import timedelta

import httpx

from application.ports import UnitOfWorkFactory
from application.use_cases.process_batch import (
    ProcessBatch,
    ProcessBatchHandler,
    ProcessingSettings,
)
from application.use_cases.sweep import SweepQueueHandler
from domain.model import IngestionStatus, RetryPolicy
from entrypoints.container import Container
from tests.integration.conftest import auth
from tests.unit.fakes import FakeClock, FakeQueue


async def test_a_worker_whose_lease_was_taken_over_writes_nothing(
    client: httpx.AsyncClient,
    keys: dict[str, str],
    container: Container,
    uow_factory: UnitOfWorkFactory,
) -> None:
    r = await client.post(
        "/v1/documents/text",
        json={"text": "Art. 1º O servidor terá direito a férias anuais.", "collection": "rh"},
        headers=auth(keys["ingest"]),
    )
    assert r.status_code == 201, r.text
    doc_id = r.json()["id"]
    # the sweeper and worker B run on a machine whose clock is ten minutes ahead of A's
    real = container.clock()
    ahead = FakeClock(real.now() + timedelta(minutes=10))
    taken_over: list[str] = []
    model = container.embedder()

    class TakeoverDuringEmbedding:
        """The model; while A embeds, the sweeper (clock ahead) sees A's lease as
        expired and hands the job back, and worker B claims it."""

        model_name = model.model_name
        dimension = model.dimension

        async def embed_passages(self, texts: Sequence[str]) -> list[Sequence[float]]:
            sweep = SweepQueueHandler(uow_factory, FakeQueue(), ahead)
            # the sweep skips a row another transaction holds (SKIP LOCKED: A's own
            # stage write may be in flight); like the real one, it catches it next time
            for _ in range(50):
                if (await sweep()).requeued == 1:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the sweeper never handed the job back")
            async with uow_factory() as uow:
                claims = await uow.jobs.claim(
                    batch_size=1, worker_id="worker-b:1:x", lease_seconds=120, now=ahead.now()
                )
                await uow.commit()
            taken_over.extend(c.lease_token for c in claims)
            return list(await model.embed_passages(texts))

        async def embed_query(self, text: str) -> Sequence[float]:
            return await model.embed_query(text)

    handler = ProcessBatchHandler(
        uow_factory=uow_factory,
        extractor=container.extractor(),
        chunker=container.chunker(),
        embedder=TakeoverDuringEmbedding(),
        clock=real,
        # no lease check between slices: only the store's fence stands in the way
        settings=ProcessingSettings(
            lease_seconds=120,
            retry_policy=RetryPolicy(),
            check_every_s=3600,
            fair_claim_size=0,
        ),
    )
    try:
        report = await handler(ProcessBatch(batch_size=1, worker_id="worker-a"))
    finally:
        container.extractor().close()
    assert taken_over == ["worker-b:1:x"], report
    assert (report.claimed, report.completed, report.lost) == (1, 0, 1)
    async with uow_factory() as uow:
        doc = await uow.documents.get(uuid.UUID(doc_id))
        job = await uow.jobs.get_for_document(doc.id) if doc else None
        chunks = await uow.chunks.count(doc.id) if doc else None
    assert doc is not None and job is not None
    # A wrote nothing: no chunks, no completion; the job is B's, as B left it
    assert chunks == 0 and doc.chunk_count == 0 and doc.indexed_at is None
    assert job.status is IngestionStatus.PROCESSING and job.locked_by == "worker-b:1:x"
