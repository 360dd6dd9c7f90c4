"""ProcessBatch: claim up to N jobs, turn each document into embedded chunks.

Transactions stay short: one to claim (SKIP LOCKED + PROCESSING + lease), none
while extracting or embedding, one per finished document (fenced by the lease:
a worker that lost its lease writes nothing). Leases are renewed while working.
Embedding runs in large batches across the batch's documents; a document is
stored as soon as all of its chunks have vectors.

A cancel or a deletion takes the lease away: before extracting a document and between
embedding slices the worker asks which leases it still holds and drops the others, so
their work stops within a slice (a few seconds) and nothing of theirs is written.

Every transaction takes its locks in one order: the source key, the document, the
job, the chunks, the BM25 statistics (the API's DELETE, cancel and reprocess too), so
the store and the API never deadlock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from application.ports import (
    Chunker,
    Clock,
    Embedder,
    TextExtractor,
    UnitOfWork,
    UnitOfWorkFactory,
)
from domain.errors import DomainError, NoTextFound, TransientError
from domain.model import Chunk, ChunkDraft, ClaimedJob, Document, RetryPolicy, Stage
from domain.versions import KeyOrigin, Settlement, settle_stored

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessBatch:
    batch_size: int
    worker_id: str  # host:pid; a per-claim suffix makes the lease token


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


@dataclass
class _Prepared:
    claim: ClaimedJob
    document: Document
    drafts: list[ChunkDraft]
    vectors: list[Sequence[float] | None]
    report: dict[str, Any] = field(default_factory=dict)
    found_metadata: dict[str, Any] = field(default_factory=dict)  # the norm's identity
    norm_key: str | None = None  # "lei-8112-1990": the default source key of a legal act

    @property
    def done(self) -> bool:
        return all(v is not None for v in self.vectors)


@dataclass(frozen=True)
class ProcessingSettings:
    lease_seconds: float
    retry_policy: RetryPolicy
    embed_batch_size: int = 64
    check_every_s: float = 1.0  # how often to ask whether our leases still stand

    @property
    def renew_every(self) -> float:
        return max(0.5, self.lease_seconds / 3)


class ProcessBatchHandler:
    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        extractor: TextExtractor,
        chunker: Chunker,
        embedder: Embedder,
        clock: Clock,
        settings: ProcessingSettings,
    ) -> None:
        self.uow_factory = uow_factory
        self.extractor = extractor
        self.chunker = chunker
        self.embedder = embedder
        self.clock = clock
        self.settings = settings

    async def __call__(self, cmd: ProcessBatch) -> BatchReport:
        report = BatchReport()
        token = f"{cmd.worker_id}:{uuid.uuid4().hex[:12]}"
        t0 = time.perf_counter()
        async with self.uow_factory() as uow:
            claims = await uow.jobs.claim(
                batch_size=cmd.batch_size,
                worker_id=token,
                lease_seconds=self.settings.lease_seconds,
                now=self.clock.now(),
            )
            await uow.commit()
        report.claimed = len(claims)
        report.add_time("claim", time.perf_counter() - t0)
        if not claims:
            return report
        renewer = asyncio.create_task(self._renew_leases(claims))
        try:
            await self._pipeline(claims, report)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        return report

    # -- stages ------------------------------------------------------------------
    #
    # A producer extracts and chunks the documents one after another into a queue;
    # the consumer embeds full batches (across documents) as soon as they are ready,
    # so extraction of the next documents overlaps embedding of the previous ones;
    # a document whose chunks all have vectors is stored by a background task while
    # the next batch embeds. The model therefore rarely waits.

    async def _pipeline(self, claims: list[ClaimedJob], report: BatchReport) -> None:
        t0 = time.perf_counter()
        ids = [c.document_id for c in claims]
        async with self.uow_factory() as uow:
            docs = await uow.documents.get_many(ids)
            contents = await uow.documents.contents(ids)
            await uow.jobs.set_stage(claims, Stage.EXTRACTING, self.clock.now())
            await uow.commit()
        report.add_time("load", time.perf_counter() - t0)
        queue: asyncio.Queue[_Prepared | None] = asyncio.Queue()
        producer = asyncio.create_task(self._produce(claims, docs, contents, queue, report))
        background: set[asyncio.Task[None]] = set()
        try:
            await self._consume(queue, report, background)
        finally:
            if not producer.done():
                producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer
            if background:
                await asyncio.gather(*background)

    async def _produce(
        self,
        claims: list[ClaimedJob],
        docs: dict[uuid.UUID, Document],
        contents: dict[uuid.UUID, bytes],
        queue: asyncio.Queue[_Prepared | None],
        report: BatchReport,
    ) -> None:
        try:
            for claim in claims:
                doc = docs.get(claim.document_id)
                data = contents.get(claim.document_id)
                if doc is None or data is None:  # deleted while queued: the cascade took the job
                    report.lost += 1
                    continue
                if not await self._still_held([claim]):
                    report.cancelled += 1
                    log.info("job %s was cancelled or deleted; not extracting", claim.job_id)
                    continue
                try:
                    t1 = time.perf_counter()
                    extracted = await self.extractor.extract(data, doc.content_type)
                    t2 = time.perf_counter()
                    drafts = await asyncio.to_thread(self.chunker.chunk, extracted)
                    report.add_time("extract", t2 - t1)
                    report.add_time("chunk", time.perf_counter() - t2)
                    if not drafts:
                        raise NoTextFound(
                            "the document holds no text to index (it is empty or only whitespace)"
                        )
                except Exception as exc:  # one bad document never fails the batch
                    await self._fail(claim, exc, Stage.EXTRACTING, report)
                    continue
                report_ = {**extracted.report, "pages": extracted.pages, "chunks": len(drafts)}
                found = extracted.norm.as_metadata() if extracted.norm else {}
                norm_key = extracted.norm.key if extracted.norm else None
                await queue.put(
                    _Prepared(
                        claim, doc, drafts, [None] * len(drafts), report_, dict(found), norm_key
                    )
                )
        finally:
            await queue.put(None)

    async def _consume(
        self,
        queue: asyncio.Queue[_Prepared | None],
        report: BatchReport,
        background: set[asyncio.Task[None]],
    ) -> None:
        size = self.settings.embed_batch_size
        pending: list[tuple[_Prepared, int]] = []  # (document, chunk index) without a vector
        handled: set[uuid.UUID] = set()  # failed, or handed to their store task
        finished = False
        checked = time.monotonic()
        while not finished or pending:
            # take what is ready; wait for more only while a batch is not yet full
            while not finished and (len(pending) < size or not queue.empty()):
                item = await queue.get()
                if item is None:
                    finished = True
                    break
                pending.extend((item, i) for i in range(len(item.drafts)))
                self._spawn(background, self._set_stage(item.claim, Stage.EMBEDDING))
            if pending and time.monotonic() - checked >= self.settings.check_every_s:
                pending = await self._drop_cancelled(pending, handled, report)
                checked = time.monotonic()
            batch, pending = pending[:size], pending[size:]
            batch = [(p, i) for p, i in batch if p.claim.job_id not in handled]
            if not batch:
                continue
            t0 = time.perf_counter()
            try:
                vectors = await self.embedder.embed_passages(
                    [p.drafts[i].embedding_text for p, i in batch]
                )
                if len(vectors) != len(batch):
                    raise TransientError(
                        f"the embedder returned {len(vectors)} vectors for {len(batch)} texts"
                    )
            except Exception as exc:
                report.add_time("embed", time.perf_counter() - t0)
                for p in {id(p): p for p, _ in batch}.values():
                    handled.add(p.claim.job_id)
                    self._spawn(background, self._fail(p.claim, exc, Stage.EMBEDDING, report))
                continue
            report.add_time("embed", time.perf_counter() - t0)
            for (p, i), vector in zip(batch, vectors, strict=True):
                p.vectors[i] = vector
            for p in {id(p): p for p, _ in batch}.values():
                if p.done and p.claim.job_id not in handled:
                    handled.add(p.claim.job_id)
                    self._spawn(background, self._store(p, report))

    @staticmethod
    def _spawn(background: set[asyncio.Task[None]], work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        background.add(task)
        task.add_done_callback(background.discard)

    async def _still_held(self, claims: Sequence[ClaimedJob]) -> set[uuid.UUID]:
        """The jobs among `claims` whose lease we still hold. When the database cannot
        say, all of them: the fenced store decides in the end."""
        try:
            async with self.uow_factory() as uow:
                return await uow.jobs.held(claims)
        except Exception:
            log.warning("could not check the leases of %d jobs", len(claims), exc_info=True)
            return {c.job_id for c in claims}

    async def _drop_cancelled(
        self,
        pending: list[tuple[_Prepared, int]],
        handled: set[uuid.UUID],
        report: BatchReport,
    ) -> list[tuple[_Prepared, int]]:
        claims = {p.claim.job_id: p.claim for p, _ in pending if p.claim.job_id not in handled}
        held = await self._still_held(list(claims.values()))
        gone = set(claims) - held
        for job_id in gone:
            handled.add(job_id)
            report.cancelled += 1
            log.info("job %s was cancelled or deleted; its embedding stops", job_id)
        return [(p, i) for p, i in pending if p.claim.job_id not in gone]

    async def _set_stage(self, claim: ClaimedJob, stage: Stage) -> None:
        try:
            async with self.uow_factory() as uow:
                await uow.jobs.set_stage([claim], stage, self.clock.now())
                await uow.commit()
        except Exception:  # informational only; the store or failure write is what counts
            log.warning("could not record stage %s of job %s", stage, claim.job_id)

    async def _store(self, p: _Prepared, report: BatchReport) -> None:
        t0 = time.perf_counter()
        model = self.embedder.model_name
        new_chunks = [
            d.embedded(p.document.id, v, model)
            for d, v in zip(p.drafts, p.vectors, strict=True)
            if v is not None
        ]
        try:
            async with self.uow_factory() as uow:
                stored = await self._store_in(uow, p, new_chunks)
                if stored is None:
                    report.lost += 1
                    log.warning("lease lost for job %s; discarding results", p.claim.job_id)
                    return
                await uow.commit()
        except Exception as exc:
            await self._fail(p.claim, exc, Stage.STORING, report)
            return
        finally:
            report.add_time("store", time.perf_counter() - t0)
        if not stored.became_current:
            report.superseded += 1
        report.completed += 1
        report.chunks += len(new_chunks)

    async def _store_in(
        self, uow: UnitOfWork, p: _Prepared, new_chunks: list[Chunk]
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

    async def _fail(
        self, claim: ClaimedJob, exc: BaseException, stage: Stage, report: BatchReport
    ) -> None:
        if isinstance(exc, DomainError):
            reason, transient = exc.reason, exc.transient
        else:  # unexpected: worth another attempt, and say what it was
            reason, transient = f"{type(exc).__name__}: {exc}", True
        log.warning("job %s failed at %s: %s", claim.job_id, stage, reason)
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
                    policy=self.settings.retry_policy,
                )
                await uow.jobs.save(job)
                await uow.commit()
        except Exception:
            # The database itself is gone: the lease will expire and the sweeper
            # hands the job back; nothing is lost.
            log.exception("could not record the failure of job %s", claim.job_id)
            return
        if outcome.will_retry:
            report.retried += 1
        else:
            report.failed += 1

    async def _renew_leases(self, claims: list[ClaimedJob]) -> None:
        while True:
            await asyncio.sleep(self.settings.renew_every)
            try:
                async with self.uow_factory() as uow:
                    await uow.jobs.renew_leases(
                        claims, self.settings.lease_seconds, self.clock.now()
                    )
                    await uow.commit()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("lease renewal failed; will try again", exc_info=True)
