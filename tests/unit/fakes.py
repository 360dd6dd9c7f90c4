"""Hand-written in-memory fakes of the ports, for unit tests of the use cases.

They follow the ports' contracts (transactions roll back unless committed, claims
skip jobs that are not ready, leases fence writes) so the use cases can be tested
without a database. The real adapters are tested against real PostgreSQL.
"""

from __future__ import annotations

import builtins
import copy
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

from application.ports import (
    ApiKeyRepository,
    BatchSummary,
    Change,
    ChunkRepository,
    CollectionCount,
    DocumentFilter,
    DocumentRepository,
    DocumentView,
    IdempotencyRecord,
    IdempotencyRepository,
    JobRepository,
    Submission,
    SubmitOutcome,
)
from domain.api_keys import ApiKey
from domain.errors import DomainError
from domain.model import (
    Chunk,
    ChunkDraft,
    ClaimedJob,
    Document,
    DocumentType,
    ExtractedDocument,
    IngestionJob,
    IngestionStatus,
    JobKind,
    Stage,
)
from domain.progress import JobProgress
from domain.search import SearchFilter, SearchHit
from domain.versions import KeyOrigin


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@dataclass
class Store:
    """The 'database' the fake unit of work commits into."""

    documents: dict[uuid.UUID, Document] = field(default_factory=dict)
    contents: dict[uuid.UUID, bytes] = field(default_factory=dict)
    jobs: dict[uuid.UUID, IngestionJob] = field(default_factory=dict)
    chunks: dict[uuid.UUID, list[Chunk]] = field(default_factory=dict)
    extraction: dict[uuid.UUID, dict[str, Any]] = field(default_factory=dict)
    locked_keys: list[tuple[str, str]] = field(default_factory=list)
    api_keys: dict[uuid.UUID, ApiKey] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], tuple[IdempotencyRecord, datetime]] = field(
        default_factory=dict
    )
    commits: int = 0


class FakeDocuments:
    def __init__(self, state: Store) -> None:
        self.s = state

    async def add(self, document: Document, content: bytes) -> bool:
        if any(
            (d.collection, d.source_key, d.version)
            == (document.collection, document.source_key, document.version)
            for d in self.s.documents.values()
        ):
            return False
        self.s.documents[document.id] = document
        self.s.contents[document.id] = content
        return True

    async def get(self, document_id: uuid.UUID) -> Document | None:
        return self.s.documents.get(document_id)

    async def lock(self, document_id: uuid.UUID) -> Document | None:
        return self.s.documents.get(document_id)

    async def lock_keys(self, collection: str, keys: Sequence[str]) -> None:
        self.s.locked_keys.extend((collection, k) for k in sorted(set(keys)))

    async def versions(self, collection: str, source_key: str) -> list[Document]:
        found = [
            d
            for d in self.s.documents.values()
            if d.collection == collection and d.source_key == source_key
        ]
        return sorted(found, key=lambda d: (d.created_at, str(d.id)), reverse=True)

    async def latest_version(self, collection: str, source_key: str) -> Document | None:
        found = await self.versions(collection, source_key)
        return max(found, key=lambda d: d.version, default=None)

    def _unkeyed_twin(self, collection: str, sha256: str) -> Document | None:
        found = [
            d
            for d in self.s.documents.values()
            if d.collection == collection
            and d.sha256 == sha256
            and d.key_origin is not KeyOrigin.CLIENT
            and d.superseded_at is None
        ]
        return max(found, key=lambda d: (d.created_at, str(d.id)), default=None)

    async def submit(
        self,
        document: Document,
        content: bytes,
        job: IngestionJob,
        inherit_except: frozenset[str] | None,
    ) -> Submission:
        """The contract of ai.submit_document (migration 0012), in memory."""
        await self.lock_keys(document.collection, [document.source_key])
        latest = await self.latest_version(document.collection, document.source_key)
        if document.key_origin is KeyOrigin.CLIENT:
            twin = latest
        else:
            twin = self._unkeyed_twin(document.collection, document.sha256)
        if twin is not None and twin.sha256 == document.sha256:
            return Submission(SubmitOutcome.EXISTING, twin.id, twin.version, twin.metadata)
        metadata = dict(document.metadata)
        if latest is not None and inherit_except is not None:
            metadata = {k: v for k, v in latest.metadata.items() if k not in inherit_except}
        version = latest.version + 1 if latest is not None else 1
        stored = replace(document, version=version, metadata=metadata)
        if not await self.add(stored, content):
            return Submission(SubmitOutcome.TAKEN, None, version, None)
        self.s.jobs[job.id] = job
        return Submission(SubmitOutcome.CREATED, document.id, version, dict(metadata))

    async def save_versions(self, docs: Sequence[Document]) -> None:
        for doc in docs:
            self.s.documents[doc.id] = doc
        current: dict[tuple[str, str], int] = {}
        for d in self.s.documents.values():
            if d.is_current:
                key = (d.collection, d.source_key)
                current[key] = current.get(key, 0) + 1
        # the database's unique index: one current version per key
        assert all(n == 1 for n in current.values()), current

    async def set_metadata(self, document_id: uuid.UUID, metadata: Mapping[str, Any]) -> None:
        self.s.documents[document_id].metadata = dict(metadata)

    async def merge_metadata(
        self, document_id: uuid.UUID, metadata: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        doc = self.s.documents.get(document_id)
        if doc is None:
            return None
        doc.metadata = {**doc.metadata, **metadata}
        return dict(doc.metadata)

    async def get_many(self, document_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Document]:
        return {i: self.s.documents[i] for i in document_ids if i in self.s.documents}

    async def content(self, document_id: uuid.UUID) -> bytes | None:
        return self.s.contents.get(document_id)

    async def contents(self, document_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, bytes]:
        return {i: self.s.contents[i] for i in document_ids if i in self.s.contents}

    async def set_chunk_count(self, document_id: uuid.UUID, count: int) -> None:
        self.s.documents[document_id].chunk_count = count

    async def record_extraction(
        self, document_id: uuid.UUID, report: Mapping[str, Any], found: Mapping[str, Any]
    ) -> None:
        doc = self.s.documents[document_id]
        doc.metadata = {**found, **doc.metadata}
        self.s.extraction[document_id] = dict(report)

    async def delete(self, document_id: uuid.UUID) -> bool:
        if document_id not in self.s.documents:
            return False
        del self.s.documents[document_id]
        self.s.contents.pop(document_id, None)
        self.s.chunks.pop(document_id, None)
        for job_id in [j.id for j in self.s.jobs.values() if j.document_id == document_id]:
            del self.s.jobs[job_id]
        return True

    async def list(self, flt: DocumentFilter) -> list[DocumentView]:
        views = []
        for d in sorted(
            self.s.documents.values(), key=lambda d: (d.created_at, d.id), reverse=True
        ):
            job = next((j for j in self.s.jobs.values() if j.document_id == d.id), None)
            if flt.collection and d.collection != flt.collection:
                continue
            if flt.within is not None and d.collection not in flt.within:
                continue
            if flt.status and (job is None or job.status != flt.status):
                continue
            if flt.source_key is not None and d.source_key != flt.source_key:
                continue
            if not flt.include_superseded and d.superseded_at is not None:
                continue
            if flt.ids and d.id not in flt.ids:
                continue
            if flt.after and (d.created_at, d.id) >= flt.after:
                continue
            views.append(DocumentView(d, job))
        return views[: flt.limit]

    async def collections(self, within: tuple[str, ...] | None) -> builtins.list[CollectionCount]:
        names = sorted({d.collection for d in self.s.documents.values()})
        return [
            CollectionCount(
                name,
                sum(
                    1
                    for d in self.s.documents.values()
                    if d.collection == name and d.superseded_at is None
                ),
                sum(
                    d.chunk_count
                    for d in self.s.documents.values()
                    if d.collection == name and d.is_current
                ),
            )
            for name in names
            if within is None or name in within
        ]

    async def changes(
        self,
        after: tuple[datetime, uuid.UUID] | None,
        *,
        batch: str | None,
        collection: str | None,
        settle_s: float,
        limit: int,
        within: tuple[str, ...] | None = None,
    ) -> builtins.list[Change]:
        raise NotImplementedError(
            "the change feed reads the database's clock: tested on PostgreSQL"
        )

    async def batch_summary(
        self, batch: str, within: tuple[str, ...] | None = None
    ) -> BatchSummary:
        raise NotImplementedError(
            "the change feed reads the database's clock: tested on PostgreSQL"
        )


class FakeApiKeys:
    def __init__(self, state: Store) -> None:
        self.s = state

    async def add(self, key: ApiKey) -> None:
        self.s.api_keys[key.id] = key

    async def get_by_prefix(self, prefix: str) -> ApiKey | None:
        return next((k for k in self.s.api_keys.values() if k.prefix == prefix), None)

    async def list(self) -> list[ApiKey]:
        return sorted(self.s.api_keys.values(), key=lambda k: k.created_at)

    async def revoke(self, key_id: uuid.UUID, now: datetime) -> bool:
        key = self.s.api_keys.get(key_id)
        if key is None or key.revoked_at is not None:
            return False
        self.s.api_keys[key_id] = replace(key, revoked_at=now)
        return True

    async def touch(self, key_id: uuid.UUID, now: datetime) -> None:
        key = self.s.api_keys.get(key_id)
        if key is not None:
            self.s.api_keys[key_id] = replace(key, last_used_at=now)


class FakeIdempotency:
    def __init__(self, state: Store) -> None:
        self.s = state

    async def get(self, client_id: str, key: str) -> IdempotencyRecord | None:
        found = self.s.idempotency.get((client_id, key))
        return found[0] if found else None

    async def add(self, record: IdempotencyRecord) -> bool:
        if (record.client_id, record.key) in self.s.idempotency:
            return False
        self.s.idempotency[(record.client_id, record.key)] = (record, datetime.now(UTC))
        return True

    async def purge_older_than(self, when: datetime) -> int:
        old = [k for k, (_, added) in self.s.idempotency.items() if added < when]
        for k in old:
            del self.s.idempotency[k]
        return len(old)


class FakeJobs:
    def __init__(self, state: Store) -> None:
        self.s = state

    async def add(self, job: IngestionJob) -> None:
        self.s.jobs[job.id] = job

    async def get(self, job_id: uuid.UUID) -> IngestionJob | None:
        return self.s.jobs.get(job_id)

    async def get_for_document(self, document_id: uuid.UUID) -> IngestionJob | None:
        return next((j for j in self.s.jobs.values() if j.document_id == document_id), None)

    async def lock(self, job_id: uuid.UUID) -> IngestionJob | None:
        return self.s.jobs.get(job_id)

    async def lock_for_document(self, document_id: uuid.UUID) -> IngestionJob | None:
        return await self.get_for_document(document_id)

    async def save(self, job: IngestionJob) -> None:
        self.s.jobs[job.id] = job

    async def claim(
        self,
        *,
        batch_size: int,
        worker_id: str,
        lease_seconds: float,
        now: datetime,
        ready_by: datetime | None = None,
    ) -> list[ClaimedJob]:
        ready = sorted(
            (j for j in self.s.jobs.values() if j.is_claimable(ready_by or now)),
            key=lambda j: (j.kind.value, j.created_at),
        )[:batch_size]
        claims = []
        for job in ready:
            job.claim(worker_id, now, timedelta(seconds=lease_seconds))
            claims.append(
                ClaimedJob(
                    job.id, job.document_id, job.attempts, job.max_attempts, worker_id, job.kind
                )
            )
        return claims

    async def finished_since(
        self, since: datetime, within: tuple[str, ...] | None = None
    ) -> Mapping[IngestionStatus, int]:
        counts = {IngestionStatus.COMPLETED: 0, IngestionStatus.FAILED: 0}
        for job in self.s.jobs.values():
            doc = self.s.documents.get(job.document_id)
            if within is not None and (doc is None or doc.collection not in within):
                continue
            if job.status in counts and job.finished_at is not None and job.finished_at >= since:
                counts[job.status] += 1
        return counts

    async def queue_reembed(
        self,
        model_name: str,
        now: datetime,
        collection: str | None = None,
        within: tuple[str, ...] | None = None,
    ) -> int:
        n = 0
        for job in self.s.jobs.values():
            doc = self.s.documents.get(job.document_id)
            if job.status is not IngestionStatus.COMPLETED or doc is None or not doc.is_current:
                continue
            if (collection and doc.collection != collection) or (
                within is not None and doc.collection not in within
            ):
                continue
            if all(c.model_name == model_name for c in self.s.chunks.get(doc.id, [])):
                continue
            job.requeue(now)
            job.kind = JobKind.REEMBED
            n += 1
        return n

    async def renew_leases(
        self, claims: Sequence[ClaimedJob], lease_seconds: float, now: datetime
    ) -> int:
        n = 0
        for c in claims:
            job = self.s.jobs.get(c.job_id)
            if job is not None and job.holds_lease(c.lease_token):
                job.locked_until = now + timedelta(seconds=lease_seconds)
                n += 1
        return n

    async def held(self, claims: Sequence[ClaimedJob]) -> set[uuid.UUID]:
        return {
            c.job_id
            for c in claims
            if (job := self.s.jobs.get(c.job_id)) is not None and job.holds_lease(c.lease_token)
        }

    async def set_stage(self, claims: Sequence[ClaimedJob], stage: Stage, now: datetime) -> None:
        for c in claims:
            job = self.s.jobs.get(c.job_id)
            if job is not None and job.holds_lease(c.lease_token):
                job.advance(stage, now)

    async def record_progress(
        self, updates: Sequence[tuple[ClaimedJob, JobProgress]], now: datetime
    ) -> None:
        for c, progress in updates:
            job = self.s.jobs.get(c.job_id)
            if job is not None and job.holds_lease(c.lease_token):
                job.progress = progress
                job.updated_at = now

    async def expired(self, now: datetime, limit: int) -> list[IngestionJob]:
        return [
            j
            for j in self.s.jobs.values()
            if j.status is IngestionStatus.PROCESSING
            and j.locked_until is not None
            and j.locked_until < now
        ][:limit]

    async def count_ready(self, now: datetime) -> int:
        return sum(1 for j in self.s.jobs.values() if j.is_claimable(now))

    async def count_stalled(self, now: datetime) -> int:
        return sum(
            1
            for j in self.s.jobs.values()
            if j.status is IngestionStatus.PROCESSING
            and j.locked_until is not None
            and j.locked_until < now
        )

    async def counts_by_status(self) -> Mapping[IngestionStatus, int]:
        counts = dict.fromkeys(IngestionStatus, 0)
        for j in self.s.jobs.values():
            counts[j.status] += 1
        return counts

    async def fold_counts(self) -> int:
        return 0  # counts_by_status counts the jobs themselves

    async def oldest_pending_created_at(self) -> datetime | None:
        pending = [
            j.created_at for j in self.s.jobs.values() if j.status is IngestionStatus.PENDING
        ]
        return min(pending) if pending else None

    async def list(
        self,
        status: IngestionStatus | None,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
        within: tuple[str, ...] | None = None,
    ) -> list[IngestionJob]:
        rows = sorted(self.s.jobs.values(), key=lambda j: (j.created_at, j.id), reverse=True)
        if within is not None:
            rows = [j for j in rows if self.s.documents[j.document_id].collection in within]
        rows = [j for j in rows if status is None or j.status is status]
        rows = [j for j in rows if after is None or (j.created_at, j.id) < after]
        return rows[:limit]


class FakeChunks:
    def __init__(self, state: Store) -> None:
        self.s = state

    async def replace(self, document_id: uuid.UUID, chunks: Sequence[Chunk]) -> None:
        self.s.chunks[document_id] = list(chunks)

    async def count(self, document_id: uuid.UUID) -> int:
        return len(self.s.chunks.get(document_id, []))

    def _hits(self, model_name: str | None, flt: SearchFilter) -> list[tuple[int, Chunk, Document]]:
        out = []
        for doc_id, chunks in self.s.chunks.items():
            doc = self.s.documents[doc_id]
            if flt.collection and doc.collection != flt.collection:
                continue
            if flt.within is not None and doc.collection not in flt.within:
                continue
            if flt.document_ids and doc_id not in flt.document_ids:
                continue
            if any(doc.metadata.get(k) != v for k, v in flt.metadata.items()):
                continue
            if not flt.include_superseded and not doc.is_current:
                continue
            for c in chunks:
                if model_name is None or c.model_name == model_name:
                    out.append((hash((doc_id, c.position)) & 0x7FFFFFFF, c, doc))
        return out

    @staticmethod
    def _hit(cid: int, c: Chunk, doc: Document, score: float) -> SearchHit:
        return SearchHit(
            cid,
            doc.id,
            doc.filename,
            doc.collection,
            c.position,
            c.heading,
            c.text,
            c.page_start,
            c.page_end,
            score,
            context=c.context,
            legal=c.legal,
            norm=doc.metadata.get("norm"),
            source_key=doc.source_key,
            version=doc.version,
            current=doc.is_current,
        )

    async def of_document(
        self, document_id: uuid.UUID, after_position: int, limit: int
    ) -> list[SearchHit]:
        doc = self.s.documents[document_id]
        chunks = [c for c in self.s.chunks.get(document_id, []) if c.position > after_position]
        return [self._hit(c.position, c, doc, 0.0) for c in chunks[:limit]]

    async def article_texts(
        self, keys: Sequence[tuple[uuid.UUID, str]], max_chars: int
    ) -> dict[tuple[uuid.UUID, str], str]:
        out: dict[tuple[uuid.UUID, str], str] = {}
        for doc_id, article in keys:
            parts = [c.text for c in self.s.chunks.get(doc_id, []) if c.legal.article == article]
            if parts:
                out[(doc_id, article)] = "\n".join(parts)[:max_chars]
        return out

    async def search_by_vector(
        self,
        vector: Sequence[float],
        model_name: str,
        flt: SearchFilter,
        limit: int,
        enough: int | None = None,
    ) -> list[SearchHit]:
        def cosine(a: Sequence[float], b: Sequence[float]) -> float:
            dot = sum(x * y for x, y in zip(a, b, strict=True))
            na = sum(x * x for x in a) ** 0.5 or 1.0
            nb = sum(y * y for y in b) ** 0.5 or 1.0
            return dot / (na * nb)

        scored = [
            self._hit(cid, c, d, cosine(vector, c.embedding))
            for cid, c, d in self._hits(model_name, flt)
        ]
        return sorted(scored, key=lambda h: -h.score)[:limit]

    async def search_by_keywords(
        self, text: str, model_name: str | None, flt: SearchFilter, limit: int
    ) -> list[SearchHit]:
        words = {w.lower() for w in text.split()}
        scored = []
        for cid, c, d in self._hits(model_name, flt):
            found = len(words & {w.lower() for w in c.text.split()})
            hit = self._hit(cid, c, d, float(found))
            scored.append(replace(hit, coverage=found / len(words)))
        return sorted((h for h in scored if h.score > 0), key=lambda h: -h.score)[:limit]

    async def present_models(self) -> list[tuple[str, int]]:
        return sorted(await self.models())

    async def drafts(self, document_id: uuid.UUID) -> list[ChunkDraft]:
        return [
            ChunkDraft(
                position=c.position,
                text=c.text,
                token_count=c.token_count,
                heading=c.heading,
                page_start=c.page_start,
                page_end=c.page_end,
                context=c.context,
                legal=c.legal,
            )
            for c in sorted(self.s.chunks.get(document_id, []), key=lambda c: c.position)
        ]

    async def set_vectors(
        self,
        document_id: uuid.UUID,
        vectors: Sequence[tuple[int, Sequence[float]]],
        model_name: str,
    ) -> int:
        by_position = dict(vectors)
        chunks = self.s.chunks.get(document_id, [])
        self.s.chunks[document_id] = [
            replace(
                c,
                embedding=by_position[c.position],
                model_name=model_name,
                embedding_dim=len(by_position[c.position]),
            )
            if c.position in by_position
            else c
            for c in chunks
        ]
        return sum(1 for c in chunks if c.position in by_position)

    async def models(self) -> Mapping[tuple[str, int], int]:
        out: dict[tuple[str, int], int] = {}
        for chunks in self.s.chunks.values():
            for c in chunks:
                out[(c.model_name, c.embedding_dim)] = (
                    out.get((c.model_name, c.embedding_dim), 0) + 1
                )
        return out


class FakeUnitOfWork:
    """Works on a deep copy of the store; commit publishes it, anything else discards it."""

    # typed as the ports, so mypy checks that every fake repository still fits its port
    documents: DocumentRepository
    jobs: JobRepository
    chunks: ChunkRepository
    api_keys: ApiKeyRepository
    idempotency: IdempotencyRepository

    def __init__(self, store: Store) -> None:
        self.store = store
        self.committed = False
        self.autocommitted = False  # the unit asked for no BEGIN / COMMIT

    async def __aenter__(self) -> Self:
        self._work = copy.deepcopy(self.store)
        self.documents = FakeDocuments(self._work)
        self.jobs = FakeJobs(self._work)
        self.chunks = FakeChunks(self._work)
        self.api_keys = FakeApiKeys(self._work)
        self.idempotency = FakeIdempotency(self._work)
        self.committed = False
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._work = Store()

    async def commit(self) -> None:
        commits = self.store.commits + 1
        self.store.__dict__.update(copy.deepcopy(self._work).__dict__)
        self.store.commits = commits
        self.committed = True

    async def rollback(self) -> None:
        self._work = copy.deepcopy(self.store)

    async def autocommit(self) -> None:
        # the use cases call it for a unit of one statement, which then commits anyway
        self.autocommitted = True


class FakeQueue:
    def __init__(self, backlog: int | None = 0) -> None:
        self.rings = 0
        self._backlog = backlog

    async def ring(self) -> None:
        self.rings += 1

    async def backlog(self) -> int | None:
        return self._backlog


class FakeExtractor:
    """Decodes bytes as UTF-8 paragraphs; raises what it is told to for chosen payloads."""

    def __init__(self, failures: Mapping[bytes, DomainError] | None = None) -> None:
        self.failures = dict(failures or {})
        self.calls = 0

    async def extract(
        self,
        data: bytes,
        document_type: DocumentType,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> ExtractedDocument:
        from domain.model import Block, BlockKind

        self.calls += 1
        if data in self.failures:
            raise self.failures[data]
        text = data.decode("utf-8")
        return ExtractedDocument(
            blocks=[Block(BlockKind.PARAGRAPH, p) for p in text.split("\n\n") if p.strip()]
        )


class FakeChunker:
    """One chunk per block; 'tokens' are words."""

    def chunk(self, document: ExtractedDocument) -> list[ChunkDraft]:
        return [
            ChunkDraft(position=i, text=b.text, token_count=len(b.text.split()))
            for i, b in enumerate(document.blocks)
        ]


class FakeEmbedder:
    """Deterministic 4-dimensional vectors; can be told to fail a number of times."""

    def __init__(
        self, fail_times: int = 0, error: Exception | None = None, name: str = "fake-embedder"
    ) -> None:
        self.calls: list[int] = []
        self.fail_times = fail_times
        self.error = error
        self.name = name

    @property
    def model_name(self) -> str:
        return self.name

    @property
    def dimension(self) -> int:
        return 4

    def _vector(self, text: str) -> list[float]:
        return [float(len(text)), float(text.count(" ")), 1.0, 0.0]

    async def embed_passages(self, texts: Sequence[str]) -> list[Sequence[float]]:
        self.calls.append(len(texts))
        if self.fail_times > 0:
            self.fail_times -= 1
            raise self.error or RuntimeError("embedding server unavailable")
        return [self._vector(t) for t in texts]

    async def embed_query(self, text: str) -> Sequence[float]:
        return self._vector(text)
