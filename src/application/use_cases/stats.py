"""Queue and index statistics for /v1/stats, /metrics and `cogep-ingest status`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from application.ports import Clock, UnitOfWork
from domain.model import IngestionStatus


@dataclass(frozen=True)
class Stats:
    jobs_by_status: Mapping[IngestionStatus, int]
    oldest_pending_age_s: float | None
    ready: int
    chunks_by_model: Mapping[tuple[str, int], int]
    # PROCESSING jobs whose lease has run out: the sweeper hands them back within an
    # interval, so a count that stays above 0 means no sweeper is running
    stalled: int = 0


class GetStats:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def __call__(self, uow: UnitOfWork) -> Stats:
        async with uow:
            now = self.clock.now()
            counts = await uow.jobs.counts_by_status()
            oldest = await uow.jobs.oldest_pending_created_at()
            ready = await uow.jobs.count_ready(now)
            models = await uow.chunks.models()
            stalled = await uow.jobs.count_stalled(now)
        age = max(0.0, (now - oldest).total_seconds()) if oldest else None
        return Stats(counts, age, ready, models, stalled)
