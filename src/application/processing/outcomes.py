"""What becomes of a document the worker finished with: its chunk set stored and its
versions settled in one fenced transaction, or its failure recorded (retry or FAILED);
either way one log line that names the file, and the observer told.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from application.ports import Clock, Embedder, ProcessingObserver, UnitOfWork, UnitOfWorkFactory
from application.processing.schedule import WorkItem
from domain.errors import DomainError
from domain.model import Chunk, ClaimedJob, Document, JobKind, RetryPolicy, Stage
from domain.progress import JobProgress
from domain.versions import KeyOrigin, Settlement, settle_stored

log = logging.getLogger("application.use_cases.process_batch")


@dataclass
class BatchReport:
    claimed: int = 0
    completed: int = 0
    retried: int = 0
    failed: int = 0
    lost: int = 0  # our lease was taken over; results discarded
    cancelled: int = 0  # cancelled or deleted while we worked; dropped at a check
    superseded: int = 0  # stored, but a newer version of the document is current
    chunks: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    def add_time(self, key: str, seconds: float) -> None:
        self.timings[key] = self.timings.get(key, 0.0) + seconds

    def merge(self, other: BatchReport) -> None:
        """Add another batch's counts and timings (a task drains several batches)."""
        self.claimed += other.claimed
        self.completed += other.completed
        self.retried += other.retried
        self.failed += other.failed
        self.lost += other.lost
        self.cancelled += other.cancelled
        self.superseded += other.superseded
        self.chunks += other.chunks
        for key, seconds in other.timings.items():
            self.add_time(key, seconds)


class Outcomes:
    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        embedder: Embedder,
        clock: Clock,
        retry_policy: RetryPolicy,
        observer: ProcessingObserver,
    ) -> None:
        self.uow_factory = uow_factory
        self.embedder = embedder
        self.clock = clock
        self.retry_policy = retry_policy
        self.observer = observer

    async def store(self, p: WorkItem, report: BatchReport, progress: JobProgress | None) -> None:
        if p.claim.kind is JobKind.REEMBED:
            await self.store_vectors(p, report, progress)
            return
        t0 = time.perf_counter()
        model = self.embedder.model_name
        new_chunks = [
            d.embedded(p.document.id, v, model)
            for d, v in zip(p.drafts, p.vectors, strict=True)
            if v is not None
        ]
        try:
            async with self.uow_factory() as uow:
                stored = await self._store_in(uow, p, new_chunks, progress)
                if stored is None:
                    report.lost += 1
                    log.warning("lease lost for job %s; discarding results", p.claim.job_id)
                    return
                await uow.commit()
        except Exception as exc:
            await self.fail(p.claim, exc, Stage.STORING, report, p.document)
            return
        finally:
            report.add_time("store", time.perf_counter() - t0)
            p.add_time("store", time.perf_counter() - t0)
        if not stored.became_current:
            report.superseded += 1
        report.completed += 1
        report.chunks += len(new_chunks)
        self._indexed(p, len(new_chunks), stored)

    async def store_vectors(
        self, p: WorkItem, report: BatchReport, progress: JobProgress | None
    ) -> None:
        """A re-embedded chunk set: its new vectors replace the old ones in one fenced
        transaction (document, then job: the lock order), so a search sees the document
        wholly in one model or the other."""
        t0 = time.perf_counter()
        model = self.embedder.model_name
        try:
            vectors = [
                (d.position, v) for d, v in zip(p.drafts, p.vectors, strict=True) if v is not None
            ]
            async with self.uow_factory() as uow:
                now = self.clock.now()
                doc = await uow.documents.lock(p.document.id)
                job = await uow.jobs.lock(p.claim.job_id) if doc is not None else None
                if job is None or not job.holds_lease(p.claim.lease_token):
                    report.lost += 1
                    log.warning("lease lost for job %s; discarding vectors", p.claim.job_id)
                    return
                job.advance(Stage.STORING, now)
                if progress is not None:
                    job.progress = progress
                changed = await uow.chunks.set_vectors(p.document.id, vectors, model)
                job.complete(now)
                await uow.jobs.save(job)
                await uow.commit()
        except Exception as exc:
            await self.fail(p.claim, exc, Stage.STORING, report, p.document)
            return
        finally:
            report.add_time("store", time.perf_counter() - t0)
        report.completed += 1
        report.chunks += changed
        log.info(
            "re-embedded %s (%s): %d chunks now in %s",
            p.document.filename,
            p.document.collection,
            changed,
            model,
            extra={"document_id": str(p.document.id), "job_id": str(p.claim.job_id)},
        )

    def _indexed(self, p: WorkItem, chunks: int, stored: Settlement) -> None:
        """One line per finished document, and its metrics."""
        doc = p.document
        since_upload = max(0.0, (self.clock.now() - doc.created_at).total_seconds())
        pages = p.report.get("pages")
        stages = ", ".join(f"{k} {v:.2f}" for k, v in p.timings.items())
        log.info(
            "indexed %s (%s): %s pages, %d chunks, version %d%s; seconds: %s; "
            "searchable %.1f s after upload",
            doc.filename,
            doc.collection,
            pages if pages is not None else "-",
            chunks,
            stored.changed[0].version,
            "" if stored.became_current else " (an older version stays current)",
            stages,
            since_upload,
            extra={"document_id": str(doc.id), "job_id": str(p.claim.job_id)},
        )
        self.observer.document_indexed(
            collection=doc.collection,
            stage_seconds=p.timings,
            chunks=chunks,
            pages=pages if isinstance(pages, int) else None,
            upload_to_searchable_s=since_upload,
        )

    async def _store_in(
        self,
        uow: UnitOfWork,
        p: WorkItem,
        new_chunks: list[Chunk],
        progress: JobProgress | None,
    ) -> Settlement | None:
        """Store the chunk set and settle the versions, in the one lock order: the
        source key(s), the document, the job, then chunks and statistics. None when
        the lease is gone (cancelled, deleted, taken over): nothing is written."""
        now = self.clock.now()
        seen = await uow.documents.get(p.document.id)
        if seen is None:
            return None
        key, origin = seen.source_key, seen.key_origin
        if origin is KeyOrigin.CONTENT and p.norm_key:
            key, origin = p.norm_key, KeyOrigin.NORM  # a legal act's identity is its key
        await uow.documents.lock_keys(seen.collection, [seen.source_key, key])
        doc = await uow.documents.lock(p.document.id)
        if doc is None or doc.source_key != seen.source_key:
            return None
        job = await uow.jobs.lock(p.claim.job_id)
        if job is None or not job.holds_lease(p.claim.lease_token):
            return None
        job.advance(Stage.STORING, now)
        if progress is not None:
            job.progress = progress
        await uow.chunks.replace(doc.id, new_chunks)
        await uow.documents.set_chunk_count(doc.id, len(new_chunks))
        await uow.documents.record_extraction(doc.id, p.report, p.found_metadata)
        if key != doc.source_key:
            latest = await uow.documents.latest_version(doc.collection, key)
            doc.source_key, doc.key_origin = key, origin
            doc.version = latest.version + 1 if latest is not None else 1
        others = [d for d in await uow.documents.versions(doc.collection, key) if d.id != doc.id]
        settlement = settle_stored(doc, others, now)
        await uow.documents.save_versions(settlement.changed)
        job.complete(now)
        await uow.jobs.save(job)
        return settlement

    # -- failures and leases --------------------------------------------------------

    async def fail(
        self,
        claim: ClaimedJob,
        exc: BaseException,
        stage: Stage,
        report: BatchReport,
        doc: Document | None = None,
    ) -> None:
        if isinstance(exc, DomainError):  # its reason is written for the document's readers
            reason, transient, cause = exc.reason, exc.transient, type(exc).__name__
            detail = cause
        else:  # unexpected: worth another attempt; what it was is for the operator only
            reason, transient, cause = "an unexpected error in the worker", True, "unexpected"
            detail = f"{type(exc).__name__}: {exc}"
        try:
            async with self.uow_factory() as uow:
                job = await uow.jobs.lock(claim.job_id)
                if job is None or not job.holds_lease(claim.lease_token):
                    report.lost += 1
                    return
                job.advance(stage, self.clock.now())
                outcome = job.fail(
                    reason,
                    transient=transient,
                    now=self.clock.now(),
                    policy=self.retry_policy,
                    detail=detail,
                )
                await uow.jobs.save(job)
                await uow.commit()
        except Exception:
            # The database itself is gone: the lease will expire and the sweeper
            # hands the job back; nothing is lost.
            log.exception("could not record the failure of job %s", claim.job_id)
            return
        name = f"{doc.filename} ({doc.collection})" if doc else f"document {claim.document_id}"
        log.warning(
            "%s %s at %s (attempt %d/%d): %s",
            name,
            "will be retried" if outcome.will_retry else "FAILED",
            stage,
            claim.attempts,
            claim.max_attempts,
            reason,
            extra={"document_id": str(claim.document_id), "job_id": str(claim.job_id)},
        )
        self.observer.document_failed(stage=stage, cause=cause, will_retry=outcome.will_retry)
        if outcome.will_retry:
            report.retried += 1
        else:
            report.failed += 1
