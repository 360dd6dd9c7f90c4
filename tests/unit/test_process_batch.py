"""ProcessBatch: claim, extract, chunk, embed across documents, store fenced by the lease."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence

import pytest

from application.use_cases.enqueue_document import (
    EnqueueDocument,
    EnqueueDocumentHandler,
    UploadLimits,
)
from application.use_cases.process_batch import (
    BatchReport,
    ProcessBatch,
    ProcessBatchHandler,
    ProcessingSettings,
)
from application.use_cases.reembed import ReembedChunks, ReembedChunksHandler
from domain.errors import CorruptDocument, EmbeddingUnavailable
from domain.model import (
    DocumentType,
    ExtractedDocument,
    FailureKind,
    IngestionStatus,
    JobKind,
    RetryPolicy,
)
from tests.unit.fakes import (
    FakeChunker,
    FakeClock,
    FakeEmbedder,
    FakeExtractor,
    FakeQueue,
    FakeUnitOfWork,
    Store,
)

SETTINGS = ProcessingSettings(
    lease_seconds=60, retry_policy=RetryPolicy(base_delay_s=5, jitter=0), embed_batch_size=3
)


async def enqueue(store: Store, clock: FakeClock, *texts: bytes) -> list[uuid.UUID]:
    handler = EnqueueDocumentHandler(FakeQueue(), clock, UploadLimits(10_000), max_attempts=2)
    ids = []
    for t in texts:
        result = await handler(EnqueueDocument(t, "doc.txt"), FakeUnitOfWork(store))
        ids.append(result.document.id)
        clock.advance(1)
    return ids


def make_handler(
    store: Store,
    clock: FakeClock,
    extractor: FakeExtractor | None = None,
    embedder: FakeEmbedder | None = None,
) -> ProcessBatchHandler:
    return ProcessBatchHandler(
        uow_factory=lambda: FakeUnitOfWork(store),
        extractor=extractor or FakeExtractor(),
        chunker=FakeChunker(),
        embedder=embedder or FakeEmbedder(),
        clock=clock,
        settings=SETTINGS,
    )


def status_of(store: Store, document_id: uuid.UUID) -> IngestionStatus:
    return next(j for j in store.jobs.values() if j.document_id == document_id).status


async def test_a_batch_ends_with_every_document_completed_and_its_chunks_stored() -> None:
    store, clock = Store(), FakeClock()
    ids = await enqueue(store, clock, b"um\n\ndois\n\ntres", b"quatro\n\ncinco")
    report = await make_handler(store, clock)(ProcessBatch(batch_size=10, worker_id="w1"))
    assert (report.claimed, report.completed, report.failed) == (2, 2, 0)
    assert [c.text for c in store.chunks[ids[0]]] == ["um", "dois", "tres"]
    assert [c.text for c in store.chunks[ids[1]]] == ["quatro", "cinco"]
    assert all(
        c.model_name == "fake-embedder" and c.embedding_dim == 4 for c in store.chunks[ids[0]]
    )
    assert store.documents[ids[0]].chunk_count == 3
    assert all(status_of(store, i) is IngestionStatus.COMPLETED for i in ids)


async def test_texts_of_several_documents_share_embedding_batches() -> None:
    store, clock = Store(), FakeClock()
    await enqueue(store, clock, b"a\n\nb", b"c\n\nd", b"e")
    embedder = FakeEmbedder()
    await make_handler(store, clock, embedder=embedder)(ProcessBatch(10, "w1"))
    assert embedder.calls == [3, 2]  # batch size 3 across documents, not one call per document


async def test_the_batch_size_limits_the_claim_oldest_first() -> None:
    store, clock = Store(), FakeClock()
    ids = await enqueue(store, clock, b"first", b"second", b"third")
    report = await make_handler(store, clock)(ProcessBatch(batch_size=2, worker_id="w1"))
    assert report.claimed == 2
    assert status_of(store, ids[2]) is IngestionStatus.PENDING
    assert status_of(store, ids[0]) is IngestionStatus.COMPLETED


async def test_a_bad_document_fails_alone_with_its_reason() -> None:
    store, clock = Store(), FakeClock()
    ids = await enqueue(store, clock, b"good one", b"poison", b"good two")
    extractor = FakeExtractor(
        {b"poison": CorruptDocument("the PDF cross-reference table is broken")}
    )
    report = await make_handler(store, clock, extractor=extractor)(ProcessBatch(10, "w1"))
    assert (report.completed, report.failed) == (2, 1)
    job = next(j for j in store.jobs.values() if j.document_id == ids[1])
    assert job.status is IngestionStatus.FAILED
    assert job.last_error == "extracting: the PDF cross-reference table is broken"
    assert ids[1] not in store.chunks


async def test_an_embedding_outage_schedules_retries_then_completes() -> None:
    store, clock = Store(), FakeClock()
    ids = await enqueue(store, clock, b"texto")
    embedder = FakeEmbedder(fail_times=1, error=EmbeddingUnavailable("503 from server"))
    handler = make_handler(store, clock, embedder=embedder)
    report = await handler(ProcessBatch(10, "w1"))
    assert report.retried == 1
    job = next(iter(store.jobs.values()))
    assert job.status is IngestionStatus.PENDING and "503 from server" in (job.last_error or "")
    # not before the backoff has passed
    assert (await handler(ProcessBatch(10, "w1"))).claimed == 0
    clock.advance(5)
    report = await handler(ProcessBatch(10, "w1"))
    assert report.completed == 1
    assert status_of(store, ids[0]) is IngestionStatus.COMPLETED


async def test_a_document_with_no_text_fails_with_a_clear_reason() -> None:
    store, clock = Store(), FakeClock()
    await enqueue(store, clock, b"   \n\n  ")
    await make_handler(store, clock)(ProcessBatch(10, "w1"))
    job = next(iter(store.jobs.values()))
    assert job.status is IngestionStatus.FAILED
    assert "holds no text to index" in (job.last_error or "")
    assert job.failure_kind is FailureKind.DOCUMENT  # permanent: the document's own


async def test_a_worker_that_lost_its_lease_writes_nothing() -> None:
    store, clock = Store(), FakeClock()
    ids = await enqueue(store, clock, b"texto longo")

    class StealingEmbedder(FakeEmbedder):
        """While 'embedding', the lease expires and another worker takes the job."""

        async def embed_passages(self, texts):  # type: ignore[no-untyped-def]
            job = next(iter(store.jobs.values()))
            job.locked_by = "another-worker:xyz"
            return await super().embed_passages(texts)

    report = await make_handler(store, clock, embedder=StealingEmbedder())(ProcessBatch(10, "w1"))
    assert report.lost == 1 and report.completed == 0
    assert ids[0] not in store.chunks


async def test_processing_twice_leaves_exactly_one_chunk_set() -> None:
    store, clock = Store(), FakeClock()
    ids = await enqueue(store, clock, b"a\n\nb")
    handler = make_handler(store, clock)
    await handler(ProcessBatch(10, "w1"))
    job = next(iter(store.jobs.values()))
    job.requeue(clock.now())
    await handler(ProcessBatch(10, "w1"))
    assert [c.position for c in store.chunks[ids[0]]] == [0, 1]


@pytest.mark.parametrize("batch_size", [1, 5])
async def test_an_empty_queue_claims_nothing(batch_size: int) -> None:
    report = await make_handler(Store(), FakeClock())(ProcessBatch(batch_size, "w1"))
    assert report.claimed == 0


async def test_embedding_starts_while_later_documents_are_still_being_extracted() -> None:
    store, clock = Store(), FakeClock()
    await enqueue(store, clock, b"a\n\nb\n\nc", b"d\n\ne\n\nf", b"g\n\nh\n\ni")
    events: list[str] = []

    class SlowExtractor(FakeExtractor):
        async def extract(
            self,
            data: bytes,
            document_type: DocumentType,
            on_progress: Callable[[int, int], None] | None = None,
        ) -> ExtractedDocument:
            await asyncio.sleep(0.01)
            events.append(f"extracted {data[:1].decode()}")
            return await super().extract(data, document_type)

    class SlowEmbedder(FakeEmbedder):
        async def embed_passages(self, texts: Sequence[str]) -> list[Sequence[float]]:
            events.append(f"embedding {texts[0]}")
            await asyncio.sleep(0.02)
            return await super().embed_passages(texts)

    report = await make_handler(store, clock, extractor=SlowExtractor(), embedder=SlowEmbedder())(
        ProcessBatch(10, "w1")
    )
    assert report.completed == 3
    # the first full batch (document a) embeds before document g is even extracted
    assert events.index("embedding a") < events.index("extracted g")


def test_reports_of_a_drained_task_add_up() -> None:
    total, one = BatchReport(), BatchReport(claimed=4, completed=3, failed=1, chunks=20)
    one.add_time("embed", 1.5)
    total.merge(one)
    total.merge(one)
    assert (total.claimed, total.completed, total.failed, total.chunks) == (8, 6, 2, 40)
    assert total.timings == {"embed": 3.0}


async def test_reembed_swaps_the_vectors_without_extracting_again() -> None:
    store, clock = Store(), FakeClock()
    ids = await enqueue(store, clock, b"um\n\ndois", b"tres")
    await make_handler(store, clock)(ProcessBatch(10, "w1"))
    before = {i: list(store.chunks[i]) for i in ids}
    new_model = FakeEmbedder(name="novo")
    queued = await ReembedChunksHandler(new_model, FakeQueue(), clock)(
        ReembedChunks(), FakeUnitOfWork(store)
    )
    assert (queued.model, queued.queued) == ("novo", 2)
    jobs = list(store.jobs.values())
    assert all((j.status, j.kind) == (IngestionStatus.PENDING, JobKind.REEMBED) for j in jobs)
    # the old vectors answer meanwhile: the chunk sets are untouched until the swap
    assert all(before[i] == store.chunks[i] for i in ids)

    extractor = FakeExtractor()
    report = await make_handler(store, clock, extractor=extractor, embedder=new_model)(
        ProcessBatch(10, "w1")
    )
    assert (report.completed, report.chunks) == (2, 3)
    assert extractor.calls == 0  # nothing extracted again
    assert [c.text for c in store.chunks[ids[0]]] == ["um", "dois"]
    assert all(c.model_name == "novo" for i in ids for c in store.chunks[i])
    assert all(status_of(store, i) is IngestionStatus.COMPLETED for i in ids)
    # its progress counts chunks embedded, and no reading of pages that never happened
    progress = next(j for j in store.jobs.values() if j.document_id == ids[0]).progress
    assert progress is not None and progress.extract_started_at is None
    assert (progress.chunks_done, progress.chunks_total) == (2, 2)
    # nothing left to move: a second run queues nothing
    again = await ReembedChunksHandler(new_model, FakeQueue(), clock)(
        ReembedChunks(), FakeUnitOfWork(store)
    )
    assert again.queued == 0


async def test_uploads_are_claimed_before_reembed_jobs() -> None:
    store, clock = Store(), FakeClock()
    old = await enqueue(store, clock, b"antigo")
    await make_handler(store, clock)(ProcessBatch(10, "w1"))
    await ReembedChunksHandler(FakeEmbedder(name="novo"), FakeQueue(), clock)(
        ReembedChunks(), FakeUnitOfWork(store)
    )
    new = await enqueue(store, clock, b"novo documento")
    await make_handler(store, clock)(ProcessBatch(batch_size=1, worker_id="w1"))
    assert status_of(store, new[0]) is IngestionStatus.COMPLETED
    assert status_of(store, old[0]) is IngestionStatus.PENDING


async def test_reprocessing_a_reembed_job_runs_the_whole_pipeline() -> None:
    store, clock = Store(), FakeClock()
    ids = await enqueue(store, clock, b"texto")
    await make_handler(store, clock)(ProcessBatch(10, "w1"))
    await ReembedChunksHandler(FakeEmbedder(name="novo"), FakeQueue(), clock)(
        ReembedChunks(), FakeUnitOfWork(store)
    )
    job = next(j for j in store.jobs.values() if j.document_id == ids[0])
    job.cancel(clock.now())
    job.requeue(clock.now())
    assert job.kind is JobKind.INGEST


async def test_a_reembed_job_with_no_stored_chunks_completes_as_it_is() -> None:
    store, clock = Store(), FakeClock()
    ids = await enqueue(store, clock, b"texto")
    await make_handler(store, clock)(ProcessBatch(10, "w1"))
    await ReembedChunksHandler(FakeEmbedder(name="novo"), FakeQueue(), clock)(
        ReembedChunks(), FakeUnitOfWork(store)
    )
    store.chunks[ids[0]] = []  # as if its chunks were gone by the time it is claimed
    embedder = FakeEmbedder(name="novo")
    report = await make_handler(store, clock, embedder=embedder)(ProcessBatch(10, "w1"))
    assert (report.completed, report.chunks, embedder.calls) == (1, 0, [])
    assert status_of(store, ids[0]) is IngestionStatus.COMPLETED
