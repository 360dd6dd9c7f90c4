"""Job listings and manual retries of FAILED jobs."""

from __future__ import annotations

import uuid
from datetime import datetime

from application.ports import Clock, JobQueue, UnitOfWork
from domain.access import EVERYTHING, Access
from domain.errors import Conflict, JobNotFound
from domain.model import IngestionJob, IngestionStatus


async def _reaches(job: IngestionJob, uow: UnitOfWork, access: Access) -> bool:
    """Whether the caller's key reaches the job's document (else: not found)."""
    if access.everything:
        return True
    doc = await uow.documents.get(job.document_id)
    return doc is not None and access.sees(doc.collection)


class Jobs:
    def __init__(self, queue: JobQueue, clock: Clock) -> None:
        self.queue = queue
        self.clock = clock

    async def list(
        self,
        status: IngestionStatus | None,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
        uow: UnitOfWork,
        access: Access = EVERYTHING,
    ) -> list[IngestionJob]:
        async with uow:
            return await uow.jobs.list(status, limit, after, access.within())

    async def get(
        self, job_id: uuid.UUID, uow: UnitOfWork, access: Access = EVERYTHING
    ) -> IngestionJob:
        async with uow:
            job = await uow.jobs.get(job_id)
            if job is None or not await _reaches(job, uow, access):
                raise JobNotFound(f"no job {job_id}")
        return job

    async def retry(
        self, job_id: uuid.UUID, uow: UnitOfWork, access: Access = EVERYTHING
    ) -> IngestionJob:
        async with uow:
            job = await uow.jobs.lock(job_id)
            if job is None or not await _reaches(job, uow, access):
                raise JobNotFound(f"no job {job_id}")
            if job.status is not IngestionStatus.FAILED:
                raise Conflict(f"only FAILED jobs can be retried; this one is {job.status}")
            job.requeue(self.clock.now())
            await uow.jobs.save(job)
            await uow.commit()
        await self.queue.ring()
        return job
