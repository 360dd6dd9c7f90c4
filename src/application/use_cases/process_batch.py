"""ProcessBatch: claim up to N jobs, turn each document into embedded chunks.

Transactions stay short: one to claim (SKIP LOCKED + PROCESSING + lease), none
while extracting or embedding, one per finished document (fenced by the lease:
a worker that lost its lease writes nothing). Leases are renewed while working.
Embedding runs in large batches across the batch's documents; a document is
stored as soon as all of its chunks have vectors.

A cancel or a deletion takes the lease away: before extracting a document and between
embedding slices the worker asks which leases it still holds and drops the others, so
their work stops within a slice (a few seconds) and nothing of theirs is written.

Fairness: about once a second, while this run still has work in hand, it takes jobs
that have waited `fair_wait_s` (a worker of the fleet that was idle would have taken
them by then) through a second extraction lane; the embedding schedule puts the
shortest remaining documents first, so a one-page upload is searchable within seconds
while a 300-page PDF embeds. Progress (pages read, chunks embedded) is written down
about once a second and logged every `progress_log_every_s` for long documents.

A REEMBED job (cogep-ingest reembed) skips extraction and chunking: its stored chunk
set is loaded as drafts and goes through the same embedding slices; its store swaps the
vectors in one fenced transaction (the old ones answer until then).

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
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from application.ports import (
    Chunker,
    Clock,
    Embedder,
    ProcessingObserver,
    TextExtractor,
    UnitOfWorkFactory,
)
from application.processing.observer import NullObserver
from application.processing.outcomes import BatchReport, Outcomes
from application.processing.progress import ProgressBook
from application.processing.schedule import EmbedSchedule, WorkItem
from domain.errors import NoTextFound, TransientError
from domain.model import ClaimedJob, Document, JobKind, RetryPolicy, Stage

log = logging.getLogger(__name__)

__all__ = ["BatchReport", "ProcessBatch", "ProcessBatchHandler", "ProcessingSettings"]


@dataclass(frozen=True)
class ProcessBatch:
    batch_size: int
    worker_id: str  # host:pid; a per-claim suffix makes the lease token


@dataclass(frozen=True)
class ProcessingSettings:
    lease_seconds: float
    retry_policy: RetryPolicy
    embed_batch_size: int = 64
    check_every_s: float = 1.0  # how often to ask whether our leases still stand
    # fairness: while this run has work in hand, take jobs that have waited this long
    # (an idle worker of the fleet would have taken them by then), a few at a time
    fair_wait_s: float = 1.0
    fair_claim_size: int = 4
    fair_claim_limit: int = 64  # at most this many extra jobs per run
    progress_every_s: float = 1.0
    progress_log_every_s: float = 10.0

    @property
    def renew_every(self) -> float:
        return max(0.5, self.lease_seconds / 3)


@dataclass
class _Run:
    """One call's state: the claims it holds (the renewer reads the list as it grows)."""

    token: str
    claims: list[ClaimedJob]
    producers: int = 0  # extraction lanes started
    finished: int = 0  # extraction lanes done
    fast_lane_busy: bool = False
    extra: int = 0  # jobs claimed while working (fairness)


class ProcessBatchHandler:
    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        extractor: TextExtractor,
        chunker: Chunker,
        embedder: Embedder,
        clock: Clock,
        settings: ProcessingSettings,
        fast_extractor: TextExtractor | None = None,
        observer: ProcessingObserver | None = None,
    ) -> None:
        self.uow_factory = uow_factory
        self.extractor = extractor
        # a second parser for the jobs taken while a long extraction runs
        self.fast_extractor = fast_extractor or extractor
        self.chunker = chunker
        self.embedder = embedder
        self.clock = clock
        self.settings = settings
        self.observer: ProcessingObserver = observer or NullObserver()
        self.outcomes = Outcomes(uow_factory, embedder, clock, settings.retry_policy, self.observer)

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
        run = _Run(token, list(claims))
        renewer = asyncio.create_task(self._renew_leases(run.claims))
        try:
            await self._pipeline(run, report)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        return report

    # -- stages ------------------------------------------------------------------
    #
    # Producers (extraction lanes) extract and chunk documents one after another into a
    # queue; the consumer embeds slices across documents (EmbedSchedule: shortest
    # remaining first) as soon as chunks are ready, so extraction overlaps embedding; a
    # document whose chunks all have vectors is stored by a background task while the
    # next slice embeds. About once a second the consumer checks the leases, writes the
    # progress down and, while it has work in hand, takes jobs that have waited: they go
    # through a second extraction lane and, being short, into the next slice.

    async def _pipeline(self, run: _Run, report: BatchReport) -> None:
        queue: asyncio.Queue[WorkItem | None] = asyncio.Queue()
        book = ProgressBook(
            self.clock, self.settings.progress_every_s, self.settings.progress_log_every_s
        )
        lanes: set[asyncio.Task[None]] = set()
        background: set[asyncio.Task[None]] = set()
        self._start_lane(run, list(run.claims), self.extractor, queue, report, book, lanes)
        try:
            await self._consume(run, queue, report, book, lanes, background)
        finally:
            for lane in lanes:
                if not lane.done():
                    lane.cancel()
            for lane in list(lanes):
                with contextlib.suppress(asyncio.CancelledError):
                    await lane
            if background:
                await asyncio.gather(*background)
            await book.flush(self.uow_factory, force=True)

    def _start_lane(
        self,
        run: _Run,
        claims: list[ClaimedJob],
        extractor: TextExtractor,
        queue: asyncio.Queue[WorkItem | None],
        report: BatchReport,
        book: ProgressBook,
        lanes: set[asyncio.Task[None]],
    ) -> asyncio.Task[None]:
        run.producers += 1
        task = asyncio.create_task(self._produce(claims, extractor, queue, report, book))
        lanes.add(task)
        task.add_done_callback(lanes.discard)
        return task

    async def _produce(
        self,
        claims: list[ClaimedJob],
        extractor: TextExtractor,
        queue: asyncio.Queue[WorkItem | None],
        report: BatchReport,
        book: ProgressBook,
    ) -> None:
        try:
            t0 = time.perf_counter()
            ids = [c.document_id for c in claims]
            ingest = [c.document_id for c in claims if c.kind is JobKind.INGEST]
            async with self.uow_factory() as uow:
                docs = await uow.documents.get_many(ids)
                contents = await uow.documents.contents(ingest) if ingest else {}
            report.add_time("load", time.perf_counter() - t0)
            for claim in claims:
                doc = docs.get(claim.document_id)
                if doc is None:  # deleted while queued: the cascade took the job
                    report.lost += 1
                    continue
                if claim.kind is JobKind.REEMBED:
                    item = await self._prepare_reembed(claim, doc, report, book)
                elif (data := contents.pop(claim.document_id, None)) is not None:
                    item = await self._prepare(claim, doc, data, extractor, report, book)
                else:
                    report.lost += 1
                    continue
                if item is not None:
                    await queue.put(item)
        finally:
            await queue.put(None)

    async def _prepare(
        self,
        claim: ClaimedJob,
        doc: Document,
        data: bytes,
        extractor: TextExtractor,
        report: BatchReport,
        book: ProgressBook,
    ) -> WorkItem | None:
        if not await self._still_held([claim]):
            report.cancelled += 1
            log.info("job %s was cancelled or deleted; not extracting", claim.job_id)
            return None
        # the stage says which documents this worker had started on, should it die
        await self._set_stage(claim, Stage.EXTRACTING)
        book.extracting(claim, f"{doc.filename} ({doc.collection})")
        stage = Stage.EXTRACTING
        try:
            t1 = time.perf_counter()
            extracted = await extractor.extract(
                data,
                doc.content_type,
                on_progress=lambda done, total: book.pages(claim, done, total),
            )
            t2 = time.perf_counter()
            stage = Stage.CHUNKING
            drafts = await asyncio.to_thread(self.chunker.chunk, extracted)
            t3 = time.perf_counter()
            if not drafts:
                raise NoTextFound(
                    "the document holds no text to index (it is empty or only whitespace)"
                )
        except Exception as exc:  # one bad document never fails the batch
            book.forget(claim)
            await self.outcomes.fail(claim, exc, stage, report, doc)
            return None
        report.add_time("extract", t2 - t1)
        report.add_time("chunk", t3 - t2)
        found = extracted.norm.as_metadata() if extracted.norm else {}
        item = WorkItem(
            claim,
            doc,
            drafts,
            [None] * len(drafts),
            {**extracted.report, "pages": extracted.pages, "chunks": len(drafts)},
            dict(found),
            extracted.norm.key if extracted.norm else None,
        )
        item.add_time("extract", t2 - t1)
        item.add_time("chunk", t3 - t2)
        book.embedding(claim, len(drafts))
        return item

    async def _prepare_reembed(
        self, claim: ClaimedJob, doc: Document, report: BatchReport, book: ProgressBook
    ) -> WorkItem | None:
        """The stored chunk set as drafts, for a job that only embeds again."""
        if not await self._still_held([claim]):
            report.cancelled += 1
            return None
        try:
            t0 = time.perf_counter()
            async with self.uow_factory() as uow:
                drafts = await uow.chunks.drafts(doc.id)
            report.add_time("load", time.perf_counter() - t0)
        except Exception as exc:
            await self.outcomes.fail(claim, exc, Stage.EMBEDDING, report, doc)
            return None
        item = WorkItem(claim, doc, drafts, [None] * len(drafts))
        if not drafts:  # nothing stored to embed again: done as it is
            await self.outcomes.store_vectors(item, report, None)
            return None
        book.reembedding(claim, f"{doc.filename} ({doc.collection}, re-embedding)", len(drafts))
        return item

    async def _consume(
        self,
        run: _Run,
        queue: asyncio.Queue[WorkItem | None],
        report: BatchReport,
        book: ProgressBook,
        lanes: set[asyncio.Task[None]],
        background: set[asyncio.Task[None]],
    ) -> None:
        size = self.settings.embed_batch_size
        schedule = EmbedSchedule()
        handled: set[uuid.UUID] = set()  # failed, cancelled, or handed to their store task
        checked = time.monotonic()
        while run.finished < run.producers or schedule:
            # take what is ready; wait for more while a slice is not full, but no longer
            # than a check interval: then embed what there is
            while run.finished < run.producers and (
                schedule.pending_chunks < size or not queue.empty()
            ):
                until_check = self.settings.check_every_s - (time.monotonic() - checked)
                try:
                    item = await asyncio.wait_for(queue.get(), max(0.05, until_check))
                except TimeoutError:
                    break
                if item is None:
                    run.finished += 1
                    continue
                schedule.add(item)
                self._spawn(background, self._set_stage(item.claim, Stage.EMBEDDING))
            if time.monotonic() - checked >= self.settings.check_every_s:
                checked = time.monotonic()
                await self._drop_cancelled(schedule, handled, report, book)
                await self._take_waiting(run, schedule, queue, report, book, lanes)
                await book.flush(self.uow_factory)
            batch = [(p, i) for p, i in schedule.take(size) if p.claim.job_id not in handled]
            if not batch:
                continue
            await self._embed(batch, handled, report, book, background)

    async def _embed(
        self,
        batch: list[tuple[WorkItem, int]],
        handled: set[uuid.UUID],
        report: BatchReport,
        book: ProgressBook,
        background: set[asyncio.Task[None]],
    ) -> None:
        items = list({id(p): p for p, _ in batch}.values())
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
            for p in items:
                handled.add(p.claim.job_id)
                book.forget(p.claim)
                self._spawn(
                    background,
                    self.outcomes.fail(p.claim, exc, Stage.EMBEDDING, report, p.document),
                )
            return
        seconds = time.perf_counter() - t0
        report.add_time("embed", seconds)
        self.observer.chunks_embedded(len(batch), seconds)
        for (p, i), vector in zip(batch, vectors, strict=True):
            p.vectors[i] = vector
            p.embedded += 1
            p.add_time("embed", seconds / len(batch))
        for p in items:
            book.embedded(p.claim, p.embedded)
            if p.done and p.claim.job_id not in handled:
                handled.add(p.claim.job_id)
                progress = book.get(p.claim)
                book.forget(p.claim)
                self._spawn(background, self.outcomes.store(p, report, progress))

    async def _take_waiting(
        self,
        run: _Run,
        schedule: EmbedSchedule,
        queue: asyncio.Queue[WorkItem | None],
        report: BatchReport,
        book: ProgressBook,
        lanes: set[asyncio.Task[None]],
    ) -> None:
        """Fairness: jobs that have waited `fair_wait_s` while we still have work in hand
        join this run through the second extraction lane."""
        s = self.settings
        if run.fast_lane_busy or s.fair_claim_size <= 0 or run.extra >= s.fair_claim_limit:
            return
        if not schedule and run.finished >= run.producers:
            return  # nothing in hand: the drain loop claims the next batch anyway
        now = self.clock.now()
        try:
            async with self.uow_factory() as uow:
                claims = await uow.jobs.claim(
                    batch_size=min(s.fair_claim_size, s.fair_claim_limit - run.extra),
                    worker_id=run.token,
                    lease_seconds=s.lease_seconds,
                    now=now,
                    ready_by=now - timedelta(seconds=s.fair_wait_s),
                )
                await uow.commit()
        except Exception:
            log.warning("could not take waiting jobs; will try again", exc_info=True)
            return
        if not claims:
            return
        run.extra += len(claims)
        report.claimed += len(claims)
        run.claims.extend(claims)
        run.fast_lane_busy = True
        log.info("took %d waiting job(s) alongside the work in hand", len(claims))

        def free(_: object) -> None:
            run.fast_lane_busy = False

        lane = self._start_lane(run, claims, self.fast_extractor, queue, report, book, lanes)
        lane.add_done_callback(free)

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
        schedule: EmbedSchedule,
        handled: set[uuid.UUID],
        report: BatchReport,
        book: ProgressBook,
    ) -> None:
        waiting = [i.claim for i in schedule.active() if i.claim.job_id not in handled]
        if not waiting:
            return
        gone = {c.job_id for c in waiting} - await self._still_held(waiting)
        for claim in waiting:
            if claim.job_id in gone:
                handled.add(claim.job_id)
                book.forget(claim)
                report.cancelled += 1
                log.info("job %s was cancelled or deleted; its embedding stops", claim.job_id)
        schedule.drop(gone)

    async def _set_stage(self, claim: ClaimedJob, stage: Stage) -> None:
        try:
            async with self.uow_factory() as uow:
                await uow.jobs.set_stage([claim], stage, self.clock.now())
                await uow.commit()
        except Exception:  # informational only; the store or failure write is what counts
            log.warning("could not record stage %s of job %s", stage, claim.job_id)

    async def _renew_leases(self, claims: list[ClaimedJob]) -> None:
        while True:
            await asyncio.sleep(self.settings.renew_every)
            try:
                async with self.uow_factory() as uow:
                    renewed = await uow.jobs.renew_leases(
                        claims, self.settings.lease_seconds, self.clock.now()
                    )
                    await uow.commit()
                self.observer.leases_renewed(renewed)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("lease renewal failed; will try again", exc_info=True)
