"""EnqueueDocument: one transaction for document + bytes + job, then the doorbell."""

from __future__ import annotations

import pytest

from application.use_cases.enqueue_document import (
    EnqueueDocument,
    EnqueueDocumentHandler,
    UploadLimits,
)
from domain.errors import DocumentTooLarge, InvalidInput, UnsupportedDocumentType
from domain.model import DocumentType, IngestionStatus
from tests.unit.fakes import FakeClock, FakeQueue, FakeUnitOfWork, Store


class WitnessQueue(FakeQueue):
    """Records, at each ring, whether the upload's job was already committed: a doorbell
    for a row the worker cannot see yet would be a lost doorbell."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.committed_at_ring: list[bool] = []

    async def ring(self) -> None:
        self.committed_at_ring.append(bool(self.store.jobs) and self.store.commits > 0)
        await super().ring()


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def queue() -> FakeQueue:
    return FakeQueue()


@pytest.fixture
def handler(queue: FakeQueue) -> EnqueueDocumentHandler:
    return EnqueueDocumentHandler(queue, FakeClock(), UploadLimits(max_bytes=1000), max_attempts=3)


async def test_a_new_document_is_stored_with_its_bytes_and_a_pending_job(
    handler: EnqueueDocumentHandler, store: Store, queue: FakeQueue
) -> None:
    result = await handler(
        EnqueueDocument(b"Art. 1 Ferias.", "lei.txt", "text/plain", "rh", {"ano": 2024}),
        FakeUnitOfWork(store),
    )
    assert result.created
    assert store.documents[result.document.id].collection == "rh"
    assert store.documents[result.document.id].metadata == {"ano": 2024}
    assert store.documents[result.document.id].content_type is DocumentType.TEXT
    assert store.contents[result.document.id] == b"Art. 1 Ferias."
    job = store.jobs[result.job.id]
    assert job.status is IngestionStatus.PENDING and job.document_id == result.document.id
    assert store.commits == 1
    assert queue.rings == 1


async def test_an_upload_is_one_autocommitted_statement_unless_it_has_an_idempotency_key(
    handler: EnqueueDocumentHandler, store: Store
) -> None:
    plain = FakeUnitOfWork(store)
    await handler(EnqueueDocument(b"Art. 1 Ferias.", "lei.txt", collection="rh"), plain)
    assert plain.autocommitted
    # with a key, its record and the document are one transaction
    keyed = FakeUnitOfWork(store)
    command = EnqueueDocument(b"Art. 2 Licenca.", "b.txt", collection="rh", idempotency_key="k1")
    assert (await handler(command, keyed)).created
    assert not keyed.autocommitted


async def test_the_same_content_in_the_same_collection_returns_the_existing_document(
    handler: EnqueueDocumentHandler, store: Store, queue: FakeQueue
) -> None:
    first = await handler(EnqueueDocument(b"conteudo", "a.txt"), FakeUnitOfWork(store))
    again = await handler(EnqueueDocument(b"conteudo", "other-name.txt"), FakeUnitOfWork(store))
    assert not again.created
    assert again.document.id == first.document.id
    assert again.job.id == first.job.id
    assert len(store.jobs) == 1
    assert queue.rings == 1  # no second doorbell for a document that is not new


async def test_the_same_content_in_another_collection_is_a_new_document(
    handler: EnqueueDocumentHandler, store: Store
) -> None:
    a = await handler(EnqueueDocument(b"conteudo", "a.txt", collection="a"), FakeUnitOfWork(store))
    b = await handler(EnqueueDocument(b"conteudo", "a.txt", collection="b"), FakeUnitOfWork(store))
    assert a.document.id != b.document.id
    assert len(store.jobs) == 2


@pytest.mark.parametrize(
    ("cmd", "error"),
    [
        (EnqueueDocument(b"x" * 1001, "a.txt"), DocumentTooLarge),
        (EnqueueDocument(b"ok", "a.txt", collection="Não Vale"), InvalidInput),
        (EnqueueDocument(b"ok", "a.txt", metadata={"k": "x" * 20000}), InvalidInput),
        (EnqueueDocument(b"ok", "a.txt", metadata={"k": "a\x00b"}), InvalidInput),
        (EnqueueDocument(b"text", "a.pdf"), UnsupportedDocumentType),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_stored(
    handler: EnqueueDocumentHandler,
    store: Store,
    queue: FakeQueue,
    cmd: EnqueueDocument,
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        await handler(cmd, FakeUnitOfWork(store))
    assert store.documents == {} and store.jobs == {} and store.commits == 0
    assert queue.rings == 0


async def test_the_doorbell_rings_after_the_commit_and_only_for_new_work() -> None:
    store = Store()
    queue = WitnessQueue(store)
    handler = EnqueueDocumentHandler(queue, FakeClock(), UploadLimits(max_bytes=1000), 3)
    first = await handler(EnqueueDocument(b"Art. 1 Ferias.", "lei.txt"), FakeUnitOfWork(store))
    assert first.created
    assert queue.committed_at_ring == [True]
    again = await handler(EnqueueDocument(b"Art. 1 Ferias.", "lei.txt"), FakeUnitOfWork(store))
    assert not again.created
    assert queue.rings == 1  # the same content again: no new job, no doorbell
