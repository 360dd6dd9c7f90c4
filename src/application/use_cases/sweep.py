"""SweepQueue: the periodic safety net (Celery beat).

1. Jobs whose lease expired (their worker died or hung) go back to PENDING, or to
   FAILED when they have used all their attempts.
2. The row counters' recent changes are folded into their totals (``/v1/stats`` reads
   a few rows however many jobs and chunks there are).
3. When ready PENDING jobs wait and no doorbell message is in the broker, ring it.

Nothing therefore depends on a message surviving: a lost message, a dead worker or
a Redis outage only delays work by one sweep interval.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from application.ports import Clock, JobQueue, UnitOfWorkFactory
from domain.model import IngestionStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepReport:
    requeued: int
    failed: int
    ready: int
    rang: bool


class SweepQueueHandler:
    def __init__(
        self, uow_factory: UnitOfWorkFactory, queue: JobQueue, clock: Clock, limit: int = 500
    ) -> None:
        self.uow_factory = uow_factory
        self.queue = queue
        self.clock = clock
        self.limit = limit

    async def __call__(self) -> SweepReport:
        requeued = failed = 0
        async with self.uow_factory() as uow:
            now = self.clock.now()
            for job in await uow.jobs.expired(now, self.limit):
                job.expire_lease(now)
                await uow.jobs.save(job)
                if job.status is IngestionStatus.FAILED:
                    failed += 1
                else:
                    requeued += 1
            await uow.commit()
        async with self.uow_factory() as uow:
            await uow.jobs.fold_counts()
            await uow.commit()
        if requeued or failed:
            log.warning("sweeper: %d expired leases requeued, %d failed", requeued, failed)
        async with self.uow_factory() as uow:
            ready = await uow.jobs.count_ready(self.clock.now())
        rang = False
        if ready:
            backlog = await self.queue.backlog()
            if not backlog:  # None (unknown) or 0: ring; a spare doorbell costs nothing
                await self.queue.ring()
                rang = True
                log.debug("sweeper: %d ready jobs had no doorbell in the broker; rang", ready)
        return SweepReport(requeued, failed, ready, rang)
