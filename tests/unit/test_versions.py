"""Document identity and versions: enqueue under keys, settling at store, cancel,
delete with restore, metadata patches (use cases over the in-memory fakes)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from application.use_cases.document_lifecycle import DocumentLifecycle
from application.use_cases.documents import Documents, merge_patch
from application.use_cases.enqueue_document import (
    EnqueueDocument,
    EnqueueDocumentHandler,
    UploadLimits,
)
from application.use_cases.process_batch import (
    ProcessBatch,
    ProcessBatchHandler,
    ProcessingSettings,
)
from domain.errors import Conflict, InvalidInput, InvalidTransition
from domain.model import Document, DocumentType, IngestionStatus, RetryPolicy
from domain.versions import KeyOrigin, restore_after_delete, settle_stored
from tests.unit.fakes import (
    FakeChunker,
    FakeClock,
    FakeEmbedder,
    FakeExtractor,
    FakeQueue,
    FakeUnitOfWork,
    Store,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def version(key: str, minutes: int, *, current: bool = False, indexed: bool = True) -> Document:
    return Document(
        id=uuid.uuid4(),
        collection="rh",
        filename=f"{key}.txt",
        content_type=DocumentType.TEXT,
        size_bytes=1,
        sha256=uuid.uuid4().hex,
        metadata={},
        created_at=T0 + timedelta(minutes=minutes),
        source_key=key,
        key_origin=KeyOrigin.CLIENT,
        is_current=current,
        indexed_at=T0 if indexed else None,
    )


class TestSettling:
    def test_a_newer_version_becomes_current_and_supersedes_the_old_one(self) -> None:
        old = version("nota", 0, current=True)
        new = version("nota", 5)
        settled = settle_stored(new, [old], T0 + timedelta(hours=1))
        assert settled.became_current
        assert new.is_current and not old.is_current
        assert old.superseded_by == new.id and old.superseded_at is not None
        assert new.indexed_at == T0 + timedelta(hours=1)

    def test_an_older_upload_that_finishes_late_never_takes_over(self) -> None:
        newest = version("nota", 10, current=True)
        late = version("nota", 5)
        settled = settle_stored(late, [newest], T0 + timedelta(hours=1))
        assert not settled.became_current
        assert newest.is_current and not late.is_current
        assert late.superseded_by == newest.id

    def test_a_reprocessed_superseded_version_stays_superseded(self) -> None:
        old = version("nota", 0)
        old.superseded_at, old.superseded_by = T0, uuid.uuid4()
        current = version("nota", 5, current=True)
        settled = settle_stored(old, [current], T0 + timedelta(hours=1))
        assert not settled.became_current and current.is_current and not old.is_current

    def test_deleting_the_current_version_restores_the_newest_indexed_one(self) -> None:
        v1, v2, v3 = version("k", 0), version("k", 1), version("k", 2, current=True)
        v4 = version("k", 3, indexed=False)  # pending, no chunk set: cannot answer
        v1.superseded_by = v2.superseded_by = v3.id
        changed = restore_after_delete([v3], [v1, v2, v4])
        assert v2.is_current and v2.superseded_by is None
        assert not v1.is_current and v1.superseded_by == v2.id
        assert not v4.is_current
        assert {d.id for d in changed} == {v1.id, v2.id}

    def test_deleting_a_version_that_is_not_current_changes_nothing_else(self) -> None:
        v1, v2 = version("k", 0), version("k", 1, current=True)
        assert restore_after_delete([v1], [v2]) == []
        assert v2.is_current


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def enqueue(clock: FakeClock) -> EnqueueDocumentHandler:
    return EnqueueDocumentHandler(
        FakeQueue(), clock, UploadLimits(max_bytes=10_000), max_attempts=3
    )


def worker(
    store: Store, clock: FakeClock, embedder: FakeEmbedder | None = None, batch: int = 64
) -> ProcessBatchHandler:
    return ProcessBatchHandler(
        lambda: FakeUnitOfWork(store),
        FakeExtractor(),
        FakeChunker(),
        embedder or FakeEmbedder(),
        clock,
        ProcessingSettings(
            lease_seconds=60, retry_policy=RetryPolicy(), embed_batch_size=batch, check_every_s=0
        ),
    )


class CancellingEmbedder(FakeEmbedder):
    """Cancels a document's job (as the API would) after the first embedding slice."""

    def __init__(self, store: Store, clock: FakeClock, victim: uuid.UUID) -> None:
        super().__init__()
        self.store, self.clock, self.victim = store, clock, victim

    async def embed_passages(self, texts: Sequence[str]) -> list[Sequence[float]]:
        vectors = await super().embed_passages(texts)
        if len(self.calls) == 1:
            job = next(j for j in self.store.jobs.values() if j.document_id == self.victim)
            job.cancel(self.clock.now())
        return vectors


async def upload(
    handler: EnqueueDocumentHandler,
    store: Store,
    data: bytes,
    key: str | None = "notas/ferias.txt",
    **kw: object,
) -> uuid.UUID:
    result = await handler(
        EnqueueDocument(data, "ferias.txt", collection="rh", source_key=key, **kw),  # type: ignore[arg-type]
        FakeUnitOfWork(store),
    )
    return result.document.id


class TestEnqueueUnderKeys:
    async def test_new_content_under_a_key_is_its_next_version(
        self, enqueue: EnqueueDocumentHandler, store: Store, clock: FakeClock
    ) -> None:
        v1 = await upload(enqueue, store, b"12 meses, 70 %")
        clock.advance(1)
        v2 = await upload(enqueue, store, b"18 meses, 80 %")
        assert v1 != v2
        assert store.documents[v1].version == 1 and store.documents[v2].version == 2
        assert store.documents[v2].source_key == "notas/ferias.txt"
        assert store.documents[v2].key_origin is KeyOrigin.CLIENT
        assert len(store.jobs) == 2
        assert store.locked_keys.count(("rh", "notas/ferias.txt")) == 2

    async def test_the_same_content_as_the_latest_version_is_a_no_op(
        self, enqueue: EnqueueDocumentHandler, store: Store
    ) -> None:
        first = await upload(enqueue, store, b"texto")
        again = await enqueue(
            EnqueueDocument(b"texto", "x.txt", collection="rh", source_key="notas/ferias.txt"),
            FakeUnitOfWork(store),
        )
        assert not again.created and again.document.id == first and len(store.jobs) == 1

    async def test_reverting_to_an_earlier_content_is_a_new_version(
        self, enqueue: EnqueueDocumentHandler, store: Store, clock: FakeClock
    ) -> None:
        await upload(enqueue, store, b"A")
        clock.advance(1)
        await upload(enqueue, store, b"B")
        clock.advance(1)
        back = await upload(enqueue, store, b"A")
        assert store.documents[back].version == 3 and len(store.jobs) == 3

    async def test_the_same_bytes_under_another_key_are_another_document(
        self, enqueue: EnqueueDocumentHandler, store: Store
    ) -> None:
        a = await upload(enqueue, store, b"texto", key="a.txt")
        b = await upload(enqueue, store, b"texto", key="b.txt")
        unkeyed = await upload(enqueue, store, b"texto", key=None)
        assert len({a, b, unkeyed}) == 3

    async def test_an_upload_without_a_key_is_keyed_by_its_content(
        self, enqueue: EnqueueDocumentHandler, store: Store
    ) -> None:
        doc_id = await upload(enqueue, store, b"texto", key=None)
        doc = store.documents[doc_id]
        assert doc.key_origin is KeyOrigin.CONTENT
        assert doc.source_key == f"sha256:{doc.sha256}"

    async def test_deduplication_merges_the_callers_metadata_and_says_so(
        self, enqueue: EnqueueDocumentHandler, store: Store
    ) -> None:
        first = await upload(enqueue, store, b"texto", metadata={"orgao": "COGEP", "ano": 1})
        again = await enqueue(
            EnqueueDocument(
                b"texto",
                "x.txt",
                collection="rh",
                source_key="notas/ferias.txt",
                metadata={"ano": 2},
            ),
            FakeUnitOfWork(store),
        )
        assert again.metadata_updated and not again.created
        assert store.documents[first].metadata == {"orgao": "COGEP", "ano": 2}
        same = await enqueue(
            EnqueueDocument(
                b"texto", "x.txt", collection="rh", source_key="notas/ferias.txt", metadata={}
            ),
            FakeUnitOfWork(store),
        )
        assert not same.metadata_updated

    async def test_a_new_version_without_metadata_keeps_what_people_said_not_the_norm(
        self, enqueue: EnqueueDocumentHandler, store: Store, clock: FakeClock
    ) -> None:
        v1 = await upload(enqueue, store, b"A", metadata={"orgao": "COGEP"})
        store.documents[v1].metadata["norm"] = "Lei nº 1/2000"  # found by the worker
        clock.advance(1)
        v2 = await upload(enqueue, store, b"B")
        assert store.documents[v2].metadata == {"orgao": "COGEP"}

    @pytest.mark.parametrize("key", ["x" * 1001, "a\x00b", "sha256:abc"])
    async def test_bad_keys_are_refused(
        self, enqueue: EnqueueDocumentHandler, store: Store, key: str
    ) -> None:
        with pytest.raises(InvalidInput):
            await upload(enqueue, store, b"texto", key=key)
        assert store.documents == {}


class TestWorkerSettles:
    async def test_the_old_version_answers_until_the_new_one_is_stored(
        self, enqueue: EnqueueDocumentHandler, store: Store, clock: FakeClock
    ) -> None:
        v1 = await upload(enqueue, store, b"12 meses")
        await worker(store, clock)(ProcessBatch(8, "w"))
        assert store.documents[v1].is_current
        clock.advance(1)
        v2 = await upload(enqueue, store, b"18 meses")
        assert store.documents[v1].is_current and not store.documents[v2].is_current
        report = await worker(store, clock)(ProcessBatch(8, "w"))
        assert report.completed == 1
        assert store.documents[v2].is_current and not store.documents[v1].is_current
        assert store.documents[v1].superseded_by == v2

    async def test_a_failed_new_version_leaves_the_old_one_current(
        self, enqueue: EnqueueDocumentHandler, store: Store, clock: FakeClock
    ) -> None:
        v1 = await upload(enqueue, store, b"12 meses")
        await worker(store, clock)(ProcessBatch(8, "w"))
        clock.advance(1)
        v2 = await upload(enqueue, store, b"   ")  # no text: fails for good
        await worker(store, clock)(ProcessBatch(8, "w"))
        job2 = next(j for j in store.jobs.values() if j.document_id == v2)
        assert job2.status is IngestionStatus.FAILED
        assert store.documents[v1].is_current and not store.documents[v2].is_current

    async def test_a_cancelled_job_is_dropped_and_its_neighbours_complete(
        self, enqueue: EnqueueDocumentHandler, store: Store, clock: FakeClock
    ) -> None:
        doomed = await upload(enqueue, store, b"um\n\ndois\n\ntres", key="a")
        kept = await upload(enqueue, store, b"outro", key="b")
        job = next(j for j in store.jobs.values() if j.document_id == doomed)
        job.cancel(clock.now())
        report = await worker(store, clock)(ProcessBatch(8, "w"))
        assert report.completed == 1 and store.chunks.get(doomed) is None
        assert store.chunks[kept] and store.documents[kept].is_current
        assert store.jobs[job.id].cancelled

    async def test_a_job_cancelled_mid_embedding_stops_at_the_next_slice(
        self, enqueue: EnqueueDocumentHandler, store: Store, clock: FakeClock
    ) -> None:
        big = await upload(enqueue, store, b"\n\n".join(b"p%d" % i for i in range(40)), key="a")
        small = await upload(enqueue, store, b"pequeno", key="b")
        embedder = CancellingEmbedder(store, clock, big)
        report = await worker(store, clock, embedder, batch=4)(ProcessBatch(8, "w"))
        # 40 + 1 chunks in slices of 4: the slice in flight when the job was cancelled,
        # then only the small one (which may already have shared that first slice,
        # depending on when its extraction finished): 5 chunks embedded at most, not 41
        assert embedder.calls[0] == 4 and len(embedder.calls) <= 2
        assert sum(embedder.calls) <= 4 + 1
        assert report.cancelled == 1 and report.completed == 1
        assert store.chunks.get(big) is None and store.chunks[small]


class TestLifecycle:
    async def test_cancel_fails_the_job_for_good_and_refuses_a_finished_one(
        self, enqueue: EnqueueDocumentHandler, store: Store, clock: FakeClock
    ) -> None:
        doc = await upload(enqueue, store, b"texto")
        lifecycle = DocumentLifecycle(FakeQueue(), clock)
        view = await lifecycle.cancel(doc, FakeUnitOfWork(store))
        assert view.job is not None and view.job.status is IngestionStatus.FAILED
        assert view.job.last_error == "cancelled at queued on request"
        with pytest.raises(Conflict):
            await lifecycle.cancel(doc, FakeUnitOfWork(store))

    async def test_deleting_the_current_version_brings_back_the_previous_one(
        self, enqueue: EnqueueDocumentHandler, store: Store, clock: FakeClock
    ) -> None:
        v1 = await upload(enqueue, store, b"A")
        await worker(store, clock)(ProcessBatch(8, "w"))
        clock.advance(1)
        v2 = await upload(enqueue, store, b"B")
        await worker(store, clock)(ProcessBatch(8, "w"))
        deleted = await DocumentLifecycle(FakeQueue(), clock).delete(v2, FakeUnitOfWork(store))
        assert deleted.restored == v1 and store.documents[v1].is_current
        assert v2 not in store.documents

    async def test_deleting_all_versions_removes_the_key(
        self, enqueue: EnqueueDocumentHandler, store: Store, clock: FakeClock
    ) -> None:
        v1 = await upload(enqueue, store, b"A")
        clock.advance(1)
        await upload(enqueue, store, b"B")
        await upload(enqueue, store, b"C", key="other")
        deleted = await DocumentLifecycle(FakeQueue(), clock).delete(
            v1, FakeUnitOfWork(store), all_versions=True
        )
        assert len(deleted.deleted) == 2
        assert [d.source_key for d in store.documents.values()] == ["other"]

    async def test_a_metadata_patch_merges_and_removes_keys(
        self, enqueue: EnqueueDocumentHandler, store: Store
    ) -> None:
        doc = await upload(enqueue, store, b"A", metadata={"orgao": "X", "rascunho": True})
        view = await Documents().update_metadata(
            doc, {"orgao": "COGEP", "rascunho": None, "tema": {"a": 1}}, FakeUnitOfWork(store)
        )
        assert view.document.metadata == {"orgao": "COGEP", "tema": {"a": 1}}
        with pytest.raises(InvalidInput):
            await Documents(max_metadata_bytes=50).update_metadata(
                doc, {"big": "x" * 100}, FakeUnitOfWork(store)
            )
        assert store.documents[doc].metadata == {"orgao": "COGEP", "tema": {"a": 1}}

    def test_merge_patch_follows_rfc_7396(self) -> None:
        assert merge_patch({"a": {"b": 1, "c": 2}}, {"a": {"c": None, "d": 3}}) == {
            "a": {"b": 1, "d": 3}
        }
        assert merge_patch({"a": 1}, {"a": [1, 2]}) == {"a": [1, 2]}


def test_a_finished_job_cannot_be_cancelled(clock: FakeClock) -> None:
    from domain.model import IngestionJob

    job = IngestionJob.new(uuid.uuid4(), clock.now(), 3)
    job.cancel(clock.now())
    assert job.cancelled
    with pytest.raises(InvalidTransition):
        job.cancel(clock.now())
