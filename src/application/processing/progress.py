"""The progress book: each job's pages read and chunks embedded, written to the
database at most once every `every_s` (one short transaction for all the jobs that
moved, fenced by their leases), and a log line per long-running document every
`log_every_s`, with its ETA.

`pages()` is called from the extraction thread; everything else from the event loop.
Each entry is an immutable JobProgress swapped whole, so the two never see half an
update.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from application.ports import Clock, UnitOfWorkFactory
from domain.model import ClaimedJob
from domain.progress import JobProgress

log = logging.getLogger(__name__)


@dataclass
class _Entry:
    claim: ClaimedJob
    label: str  # "filename (collection)" for the log
    progress: JobProgress
    dirty: bool = True
    logged_at: float = 0.0
    started: float = 0.0


class ProgressBook:
    def __init__(self, clock: Clock, every_s: float = 1.0, log_every_s: float = 10.0) -> None:
        self.clock = clock
        self.every_s = every_s
        self.log_every_s = log_every_s
        self._entries: dict[uuid.UUID, _Entry] = {}
        self._flushed = 0.0

    # -- updates ----------------------------------------------------------------------

    def extracting(self, claim: ClaimedJob, label: str) -> None:
        self._start(claim, label, JobProgress().extracting(self.clock.now()))

    def reembedding(self, claim: ClaimedJob, label: str, total_chunks: int) -> None:
        """A job that only embeds its stored chunks again: no pages to read."""
        self._start(claim, label, JobProgress().embedding(total_chunks, self.clock.now()))

    def _start(self, claim: ClaimedJob, label: str, progress: JobProgress) -> None:
        now = time.monotonic()
        self._entries[claim.job_id] = _Entry(claim, label, progress, logged_at=now, started=now)

    def pages(self, claim: ClaimedJob, done: int, total: int) -> None:
        entry = self._entries.get(claim.job_id)
        if entry is not None:
            entry.progress = entry.progress.pages(done, total)
            entry.dirty = True

    def embedding(self, claim: ClaimedJob, total_chunks: int) -> None:
        entry = self._entries.get(claim.job_id)
        if entry is not None:
            entry.progress = entry.progress.embedding(total_chunks, self.clock.now())
            entry.dirty = True

    def embedded(self, claim: ClaimedJob, done: int) -> None:
        entry = self._entries.get(claim.job_id)
        if entry is not None:
            entry.progress = entry.progress.embedded(done)
            entry.dirty = True

    def get(self, claim: ClaimedJob) -> JobProgress | None:
        entry = self._entries.get(claim.job_id)
        return entry.progress if entry else None

    def forget(self, claim: ClaimedJob) -> None:
        self._entries.pop(claim.job_id, None)

    # -- writing it down ----------------------------------------------------------------

    async def flush(self, uow_factory: UnitOfWorkFactory, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._flushed < self.every_s:
            return
        self._flushed = now
        self._log_long_runners(now)
        moved = [e for e in self._entries.values() if e.dirty]
        if not moved:
            return
        for entry in moved:
            entry.dirty = False
        try:
            async with uow_factory() as uow:
                await uow.jobs.record_progress(
                    [(e.claim, e.progress) for e in moved], self.clock.now()
                )
                await uow.commit()
        except Exception:  # informational: the next flush carries the newer numbers
            log.warning("could not record the progress of %d jobs", len(moved), exc_info=True)
            for entry in moved:
                entry.dirty = True

    def _log_long_runners(self, now: float) -> None:
        wall = self.clock.now()
        for entry in self._entries.values():
            if now - entry.logged_at < self.log_every_s:
                continue
            entry.logged_at = now
            p = entry.progress
            eta = p.eta_seconds(wall)
            eta_text = f", ETA {eta:.0f} s" if eta is not None else ""
            if p.chunks_total is not None:
                log.info(
                    "progress: %s embedding %d/%d chunks after %.0f s%s",
                    entry.label,
                    p.chunks_done or 0,
                    p.chunks_total,
                    now - entry.started,
                    eta_text,
                )
            elif p.pages_total:
                log.info(
                    "progress: %s reading page %d/%d after %.0f s%s",
                    entry.label,
                    p.pages_done or 0,
                    p.pages_total,
                    now - entry.started,
                    eta_text,
                )
            else:
                log.info("progress: %s extracting for %.0f s", entry.label, now - entry.started)
