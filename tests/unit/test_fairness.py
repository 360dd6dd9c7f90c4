"""Fairness and progress in the worker: a short document that arrives while a long one
embeds is taken alongside it and finishes first; the schedule keeps the long one moving;
progress and its ETA are recorded."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from application.processing.schedule import EmbedSchedule, WorkItem
from application.use_cases.process_batch import (
    ProcessBatch,
    ProcessBatchHandler,
    ProcessingSettings,
)
from domain.model import (
    ChunkDraft,
    ClaimedJob,
    Document,
    DocumentType,
    IngestionStatus,
    RetryPolicy,
)
from domain.progress import JobProgress
from tests.unit.fakes import (
    FakeChunker,
    FakeClock,
    FakeEmbedder,
    FakeExtractor,
    FakeUnitOfWork,
    Store,
)
from tests.unit.test_process_batch import enqueue


def _item(chunks: int) -> WorkItem:
    doc = Document(
        id=uuid.uuid4(),
        collection="c",
        filename="f.txt",
        content_type=DocumentType.TEXT,
        size_bytes=1,
        sha256="0" * 64,
        metadata={},
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    claim = ClaimedJob(uuid.uuid4(), doc.id, 1, 3, "w")
    drafts = [ChunkDraft(position=i, text=f"t{i}", token_count=1) for i in range(chunks)]
    return WorkItem(claim, doc, drafts, [None] * chunks)


class TestSchedule:
    def test_the_shortest_document_fills_the_slice_first_and_the_eldest_keeps_a_share(
        self,
    ) -> None:
        schedule = EmbedSchedule()
        long, short = _item(100), _item(3)
        schedule.add(long)
        schedule.add(short)
        first = schedule.take(8)
        assert len(first) == 8
        assert sum(1 for p, _ in first if p is short) == 3  # all of the short one at once
        assert sum(1 for p, _ in first if p is long) == 5  # and the long one still moves
        assert [i for p, i in first if p is long] == [0, 1, 2, 3, 4]  # in order
        assert schedule.pending_chunks == 95

    def test_a_stream_of_short_documents_never_starves_the_eldest(self) -> None:
        schedule = EmbedSchedule()
        long = _item(40)
        schedule.add(long)
        for _ in range(10):
            schedule.add(_item(8))
            slice_ = schedule.take(8)
            assert sum(1 for p, _ in slice_ if p is long) >= 2  # a quarter of every slice

    def test_dropped_documents_leave_the_schedule(self) -> None:
        schedule = EmbedSchedule()
        a, b = _item(5), _item(5)
        schedule.add(a)
        schedule.add(b)
        schedule.drop([a.claim.job_id])
        assert {p.claim.job_id for p, _ in schedule.take(20)} == {b.claim.job_id}
        assert not schedule


class TestProgress:
    NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def test_the_eta_follows_the_rate_of_the_stage_being_measured(self) -> None:
        p = JobProgress().extracting(self.NOW).pages(30, 300)
        assert p.eta_seconds(self.NOW + timedelta(seconds=10)) == 90.0  # 270 pages at 3/s
        p = p.pages(300, 300).embedding(1000, self.NOW + timedelta(seconds=100))
        assert p.eta_seconds(self.NOW + timedelta(seconds=100)) is None  # no rate yet
        p = p.embedded(250)
        assert p.eta_seconds(self.NOW + timedelta(seconds=150)) == 150.0  # 750 at 5/s
        assert p.embedded(1000).eta_seconds(self.NOW + timedelta(seconds=300)) == 0.0

    def test_it_round_trips_through_json(self) -> None:
        p = JobProgress().extracting(self.NOW).pages(3, 9).embedding(40, self.NOW).embedded(7)
        assert JobProgress.from_json(p.as_json()) == p
        assert JobProgress.from_json(None) is None


class _SlowEmbedder(FakeEmbedder):
    """Takes a little time per slice; at the second slice, runs its hooks."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[list[str]] = []
        self.hook: list[Callable[[], Awaitable[None]]] = []

    async def embed_passages(self, texts: Sequence[str]) -> list[Sequence[float]]:
        self.texts.append(list(texts))
        await asyncio.sleep(0.02)
        for hook in list(self.hook):
            if len(self.texts) == 2:
                await hook()
        return await super().embed_passages(texts)


async def test_a_short_upload_during_a_long_document_is_taken_and_finishes_first() -> None:
    store, clock = Store(), FakeClock()
    long_text = "\n\n".join(f"longo {i}" for i in range(60)).encode()
    [long_id] = await enqueue(store, clock, long_text)
    embedder = _SlowEmbedder()
    short_ids: list[uuid.UUID] = []

    async def upload_short() -> None:
        short_ids.extend(await enqueue(store, clock, b"curto"))
        clock.advance(5)  # it has waited longer than fair_wait_s

    embedder.hook.append(upload_short)
    settings = ProcessingSettings(
        lease_seconds=60,
        retry_policy=RetryPolicy(base_delay_s=5, jitter=0),
        embed_batch_size=4,
        check_every_s=0.0,
        fair_wait_s=1.0,
    )
    handler = ProcessBatchHandler(
        uow_factory=lambda: FakeUnitOfWork(store),
        extractor=FakeExtractor(),
        chunker=FakeChunker(),
        embedder=embedder,
        clock=clock,
        settings=settings,
    )
    report = await handler(ProcessBatch(batch_size=1, worker_id="w1"))
    assert report.claimed == 2 and report.completed == 2
    short_call = next(i for i, texts in enumerate(embedder.texts) if "curto" in texts)
    last_long_call = max(i for i, texts in enumerate(embedder.texts) if "longo 59" in texts)
    assert short_call < last_long_call - 5  # embedded long before the long one ended
    jobs = {j.document_id: j for j in store.jobs.values()}
    assert jobs[short_ids[0]].status is IngestionStatus.COMPLETED
    progress = jobs[long_id].progress
    assert progress is not None and progress.chunks_done == progress.chunks_total == 60
