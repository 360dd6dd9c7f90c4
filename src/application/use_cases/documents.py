"""Document status, listings, deletion and reprocessing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from application.ports import Clock, DocumentFilter, DocumentView, JobQueue, UnitOfWork
from domain.errors import Conflict, DocumentNotFound
from domain.model import IngestionJob, IngestionStatus


@dataclass(frozen=True)
class DocumentStatus:
    view: DocumentView
    chunk_count: int


class Documents:
    def __init__(self, queue: JobQueue, clock: Clock) -> None:
        self.queue = queue
        self.clock = clock

    async def get(self, document_id: uuid.UUID, uow: UnitOfWork) -> DocumentView:
        async with uow:
            doc = await uow.documents.get(document_id)
            if doc is None:
                raise DocumentNotFound(f"no document {document_id}")
            return DocumentView(doc, await uow.jobs.get_for_document(document_id))

    async def list(self, flt: DocumentFilter, uow: UnitOfWork) -> list[DocumentView]:
        async with uow:
            return await uow.documents.list(flt)

    async def delete(self, document_id: uuid.UUID, uow: UnitOfWork) -> None:
        """Document, raw bytes, job, chunks and vectors go in one transaction.

        A worker holding the job finds it gone when it tries to store (its fenced
        write sees no job) and discards its results.
        """
        async with uow:
            if not await uow.documents.delete(document_id):
                raise DocumentNotFound(f"no document {document_id}")
            await uow.commit()

    async def reprocess(self, document_id: uuid.UUID, uow: UnitOfWork) -> IngestionJob:
        async with uow:
            doc = await uow.documents.get(document_id)
            job = await uow.jobs.lock_for_document(document_id) if doc else None
            if doc is None or job is None:
                raise DocumentNotFound(f"no document {document_id}")
            if job.status in (IngestionStatus.PENDING, IngestionStatus.PROCESSING):
                raise Conflict(f"the document is already {job.status}; nothing to reprocess")
            job.requeue(self.clock.now())
            await uow.jobs.save(job)
            await uow.commit()
        await self.queue.ring()
        return job
