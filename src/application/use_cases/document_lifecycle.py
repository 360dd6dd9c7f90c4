"""Deleting, cancelling and reprocessing documents: the API's side of the job's life.

Each takes its locks in the order every transaction uses (source key, document, job,
chunks, statistics), so none of them can deadlock with a worker storing chunks; a
worker that loses its job this way notices at its next check and writes nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from application.ports import Clock, DocumentView, JobQueue, UnitOfWork
from domain.access import EVERYTHING, Access
from domain.errors import Conflict, DocumentNotFound
from domain.model import Document, IngestionJob, IngestionStatus
from domain.versions import restore_after_delete


@dataclass(frozen=True)
class Deleted:
    deleted: list[uuid.UUID]
    restored: uuid.UUID | None  # the earlier version that answers again, if any


class DocumentLifecycle:
    def __init__(self, queue: JobQueue, clock: Clock) -> None:
        self.queue = queue
        self.clock = clock

    async def delete(
        self,
        document_id: uuid.UUID,
        uow: UnitOfWork,
        *,
        all_versions: bool = False,
        access: Access = EVERYTHING,
    ) -> Deleted:
        """Remove one version (or every version of its key) with its bytes, job, chunks
        and vectors, in one transaction. Deleting the current version makes the newest
        earlier version with a chunk set current again."""
        for _ in range(3):
            async with uow:
                doc = await self._lock_with_key(document_id, uow, access)
                if doc is None:  # moved to its norm's key meanwhile: roll back, again
                    continue
                versions = await uow.documents.versions(doc.collection, doc.source_key)
                doomed = versions if all_versions else [v for v in versions if v.id == doc.id]
                gone = {d.id for d in doomed}
                remaining = [v for v in versions if v.id not in gone]
                changed = restore_after_delete(doomed, remaining)
                for victim in sorted(doomed, key=lambda d: d.id):
                    await uow.documents.delete(victim.id)
                await uow.documents.save_versions(changed)
                await uow.commit()
            restored = next((d.id for d in changed if d.is_current), None)
            return Deleted(sorted(gone), restored)
        raise Conflict("the document's key changed while deleting it; try again")

    async def cancel(
        self, document_id: uuid.UUID, uow: UnitOfWork, access: Access = EVERYTHING
    ) -> DocumentView:
        """Stop a PENDING or PROCESSING job for good (FAILED: cancelled). The worker that
        holds it drops it at its next check; a current chunk set stays current."""
        async with uow:
            doc, job = await self._lock(document_id, uow, access)
            if job.status not in (IngestionStatus.PENDING, IngestionStatus.PROCESSING):
                raise Conflict(f"the document is {job.status}; there is nothing to cancel")
            job.cancel(self.clock.now())
            await uow.jobs.save(job)
            await uow.commit()
        return DocumentView(doc, job)

    async def reprocess(
        self, document_id: uuid.UUID, uow: UnitOfWork, access: Access = EVERYTHING
    ) -> IngestionJob:
        async with uow:
            _, job = await self._lock(document_id, uow, access)
            if job.status in (IngestionStatus.PENDING, IngestionStatus.PROCESSING):
                raise Conflict(f"the document is already {job.status}; nothing to reprocess")
            job.requeue(self.clock.now())
            await uow.jobs.save(job)
            await uow.commit()
        await self.queue.ring()
        return job

    @staticmethod
    async def _lock(
        document_id: uuid.UUID, uow: UnitOfWork, access: Access
    ) -> tuple[Document, IngestionJob]:
        doc = await uow.documents.lock(document_id)
        job = await uow.jobs.lock_for_document(document_id) if doc else None
        if doc is None or job is None:
            raise DocumentNotFound(f"no document {document_id}")
        access.check_document(doc.collection, document_id)
        return doc, job

    @staticmethod
    async def _lock_with_key(
        document_id: uuid.UUID, uow: UnitOfWork, access: Access
    ) -> Document | None:
        """The document locked after its key's lock; None when a store moved it to its
        norm's key in between (locking that key now would break the lock order)."""
        seen = await uow.documents.get(document_id)
        if seen is None:
            raise DocumentNotFound(f"no document {document_id}")
        access.check_document(seen.collection, document_id)
        await uow.documents.lock_keys(seen.collection, [seen.source_key])
        doc = await uow.documents.lock(document_id)
        if doc is None:
            raise DocumentNotFound(f"no document {document_id}")
        return doc if doc.source_key == seen.source_key else None
