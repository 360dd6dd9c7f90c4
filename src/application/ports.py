"""Ports: what the use cases need from the outside world, as typing.Protocols.

Adapters implement them (SQLAlchemy/pgvector, Celery, parsers, embedding models);
unit tests implement them with in-memory fakes.
"""

from __future__ import annotations

import builtins
import enum
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self

from domain.api_keys import ApiKey
from domain.model import (
    Chunk,
    ChunkDraft,
    ClaimedJob,
    Document,
    DocumentType,
    ExtractedDocument,
    IngestionJob,
    IngestionStatus,
    Stage,
)
from domain.progress import JobProgress
from domain.search import SearchFilter, SearchHit


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC now."""
        ...


@dataclass(frozen=True)
class DocumentFilter:
    collection: str | None = None
    status: IngestionStatus | None = None
    source_key: str | None = None
    include_superseded: bool = False  # listings show current and pending versions
    ids: Sequence[uuid.UUID] = ()
    batch: str | None = None
    limit: int = 50
    # keyset cursor: (created_at, id) of the last row of the previous page
    after: tuple[datetime, uuid.UUID] | None = None
    within: tuple[str, ...] | None = None  # the caller's collections (None: every one)
    metadata: Mapping[str, Any] | None = None  # documents whose metadata holds these values


@dataclass(frozen=True)
class CollectionCount:
    name: str
    documents: int  # current and in-flight versions
    chunks: int  # of the versions that answer searches


@dataclass(frozen=True)
class DocumentView:
    """A document with its job, for listings and status pages."""

    document: Document
    job: IngestionJob | None


@dataclass(frozen=True)
class Change:
    """A document whose job changed, with the feed position of that change."""

    view: DocumentView
    changed_at: datetime


@dataclass(frozen=True)
class BatchSummary:
    total: int
    by_status: Mapping[IngestionStatus, int]
    chunks: int  # chunks of the batch's COMPLETED documents

    @property
    def finished(self) -> int:
        return self.by_status.get(IngestionStatus.COMPLETED, 0) + self.by_status.get(
            IngestionStatus.FAILED, 0
        )


class SubmitOutcome(enum.StrEnum):
    CREATED = "created"  # stored as the key's next version, with its PENDING job
    EXISTING = "existing"  # these bytes are already a version: nothing stored
    TAKEN = "taken"  # the version number was taken (the key's lock prevents it)


@dataclass(frozen=True)
class Submission:
    outcome: SubmitOutcome
    document_id: uuid.UUID | None  # the created or existing version; None when TAKEN
    version: int
    metadata: dict[str, Any] | None  # as stored (inherited or not); None when TAKEN


class DocumentRepository(Protocol):
    async def add(self, document: Document, content: bytes) -> bool:
        """Store the document and its raw bytes. False when its (collection, source_key,
        version) is taken (a concurrent upload under the key won)."""
        ...

    async def get(self, document_id: uuid.UUID) -> Document | None: ...

    async def lock(self, document_id: uuid.UUID) -> Document | None:
        """Load the document holding its row lock until the unit of work ends. The lock
        order of every transaction: key, documents, jobs, chunks, statistics."""
        ...

    async def lock_keys(self, collection: str, keys: Sequence[str]) -> None:
        """Serialise work on these source keys (version numbers, the current version)
        until the unit of work ends. Taken before any row lock."""
        ...

    async def versions(self, collection: str, source_key: str) -> list[Document]:
        """Every version under the key, newest first."""
        ...

    async def latest_version(self, collection: str, source_key: str) -> Document | None: ...

    async def submit(
        self,
        document: Document,
        content: bytes,
        job: IngestionJob,
        inherit_except: frozenset[str] | None,
    ) -> Submission:
        """An upload, atomically under its key's lock (``lock_keys``, held until the
        unit of work ends):
        - the version that already holds these bytes, if any: with a client key
          (``KeyOrigin.CLIENT``) the key's latest version; without one, the newest
          version not superseded uploaded without a key with these bytes;
        - else ``document`` stored with its bytes and ``job`` as the key's next version
          (its ``version`` is ignored); sent without metadata under a client key
          (``inherit_except`` not None), it keeps its predecessor's metadata less
          those keys.
        One statement: in a unit of work in ``autocommit`` it is the whole unit."""
        ...

    async def save_versions(self, docs: Sequence[Document]) -> None:
        """Persist key, origin, version number, currency and indexed_at."""
        ...

    async def set_metadata(self, document_id: uuid.UUID, metadata: Mapping[str, Any]) -> None: ...

    async def merge_metadata(
        self, document_id: uuid.UUID, metadata: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Merge these keys into the document's metadata in one statement (no read
        before it to lose a concurrent change): what it holds now, None when gone."""
        ...

    async def changes(
        self,
        after: tuple[datetime, uuid.UUID] | None,
        *,
        batch: str | None,
        collection: str | None,
        settle_s: float,
        limit: int,
        within: tuple[str, ...] | None = None,
    ) -> list[Change]:
        """Documents whose job changed after the cursor, oldest change first, up to
        `settle_s` seconds ago by the database's clock (a change is listed once its
        transaction has surely committed, so a cursor never skips one)."""
        ...

    async def batch_summary(
        self, batch: str, within: tuple[str, ...] | None = None
    ) -> BatchSummary: ...

    async def get_many(self, document_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Document]: ...

    async def content(self, document_id: uuid.UUID) -> bytes | None: ...

    async def contents(self, document_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, bytes]: ...

    async def set_chunk_count(self, document_id: uuid.UUID, count: int) -> None: ...

    async def record_extraction(
        self, document_id: uuid.UUID, report: Mapping[str, Any], found: Mapping[str, Any]
    ) -> None:
        """Store the extraction report; add the `found` metadata (a norm's identity)
        under the keys the uploader did not set (the uploader's values win)."""
        ...

    async def delete(self, document_id: uuid.UUID) -> bool:
        """Remove the document, its bytes, its job and its chunks. False if absent."""
        ...

    async def list(self, flt: DocumentFilter) -> list[DocumentView]: ...

    async def collections(
        self, within: tuple[str, ...] | None
    ) -> builtins.list[CollectionCount]: ...


class JobRepository(Protocol):
    async def add(self, job: IngestionJob) -> None: ...

    async def get(self, job_id: uuid.UUID) -> IngestionJob | None: ...

    async def get_for_document(self, document_id: uuid.UUID) -> IngestionJob | None: ...

    async def lock(self, job_id: uuid.UUID) -> IngestionJob | None:
        """Load the job holding its row lock until the unit of work ends."""
        ...

    async def lock_for_document(self, document_id: uuid.UUID) -> IngestionJob | None: ...

    async def held(self, claims: Sequence[ClaimedJob]) -> set[uuid.UUID]:
        """The jobs of these claims whose lease the claimant still holds (a cancel, a
        deletion or an expired lease takes it away)."""
        ...

    async def save(self, job: IngestionJob) -> None: ...

    async def claim(
        self,
        *,
        batch_size: int,
        worker_id: str,
        lease_seconds: float,
        now: datetime,
        ready_by: datetime | None = None,
    ) -> list[ClaimedJob]:
        """Atomically take up to batch_size PENDING jobs (SKIP LOCKED), oldest first, that
        were ready by `ready_by` (default: now)."""
        ...

    async def queue_reembed(
        self,
        model_name: str,
        now: datetime,
        collection: str | None = None,
        within: tuple[str, ...] | None = None,
    ) -> int:
        """Send the COMPLETED jobs of current documents holding chunks of another model
        than `model_name` back to the queue as REEMBED jobs (in `collection`, within
        `within`); returns how many."""
        ...

    async def renew_leases(
        self, claims: Sequence[ClaimedJob], lease_seconds: float, now: datetime
    ) -> int:
        """Extend the leases still held by these claims; returns how many were extended."""
        ...

    async def set_stage(
        self, claims: Sequence[ClaimedJob], stage: Stage, now: datetime
    ) -> None: ...

    async def record_progress(
        self, updates: Sequence[tuple[ClaimedJob, JobProgress]], now: datetime
    ) -> None:
        """Store each job's progress where its lease is still held (else nothing)."""
        ...

    async def expired(self, now: datetime, limit: int) -> list[IngestionJob]:
        """PROCESSING jobs whose lease ended, locked (SKIP LOCKED) for this unit of work."""
        ...

    async def count_ready(self, now: datetime) -> int: ...

    async def count_stalled(self, now: datetime) -> int:
        """PROCESSING jobs whose lease ran out (what the sweeper has yet to hand back)."""
        ...

    async def counts_by_status(self) -> Mapping[IngestionStatus, int]: ...

    async def fold_counts(self) -> int:
        """Fold recent changes of the stored row counters (jobs by status, chunks by
        model) into their totals, so counting stays a few rows; how many were folded.
        Counts are exact with or without it."""
        ...

    async def oldest_pending_created_at(self) -> datetime | None: ...

    async def finished_since(
        self, since: datetime, within: tuple[str, ...] | None = None
    ) -> Mapping[IngestionStatus, int]:
        """Jobs that ended (COMPLETED, FAILED) since then, by status: the throughput."""
        ...

    async def list(
        self,
        status: IngestionStatus | None,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
        within: tuple[str, ...] | None = None,
    ) -> list[IngestionJob]: ...


class ChunkRepository(Protocol):
    async def replace(self, document_id: uuid.UUID, chunks: Sequence[Chunk]) -> None:
        """Make `chunks` the document's only chunk set."""
        ...

    async def count(self, document_id: uuid.UUID) -> int: ...

    async def of_document(
        self, document_id: uuid.UUID, after_position: int, limit: int
    ) -> list[SearchHit]:
        """The document's chunks in order, as hits (with what to cite), for previews."""
        ...

    async def models(self) -> Mapping[tuple[str, int], int]:
        """Chunk counts per (model name, dimension): a mixed index is visible here."""
        ...

    async def present_models(self) -> list[tuple[str, int]]:
        """The (model name, dimension) pairs stored chunks belong to; cheap at any size."""
        ...

    async def drafts(self, document_id: uuid.UUID) -> list[ChunkDraft]:
        """The stored chunk set, without vectors, in order."""
        ...

    async def set_vectors(
        self,
        document_id: uuid.UUID,
        vectors: Sequence[tuple[int, Sequence[float]]],
        model_name: str,
    ) -> int:
        """Replace the vectors of the chunks at these positions (text and ids stay)."""
        ...

    async def search_by_vector(
        self,
        vector: Sequence[float],
        model_name: str,
        flt: SearchFilter,
        limit: int,
        enough: int | None = None,
    ) -> list[SearchHit]:
        """Nearest chunks of `model_name` by cosine distance, best first, at most
        `limit`. Returns at least `enough` (default: `limit`) hits whenever that many
        chunks match the filter (filters never starve it); a caller that wants
        `limit` candidates but needs fewer (fusion) says so, and a narrow filter then
        costs less."""
        ...

    async def search_by_keywords(
        self, text: str, model_name: str | None, flt: SearchFilter, limit: int
    ) -> list[SearchHit]:
        """Chunks matching any of the words (Portuguese stemming, accents ignored),
        best first; of one model's chunks, or of every model's when None."""
        ...

    async def article_texts(
        self, keys: Sequence[tuple[uuid.UUID, str]], max_chars: int
    ) -> dict[tuple[uuid.UUID, str], str]:
        """The whole text of each (document, article), in order, cut at max_chars."""
        ...


class ApiKeyRepository(Protocol):
    async def add(self, key: ApiKey) -> None: ...

    async def get_by_prefix(self, prefix: str) -> ApiKey | None: ...

    async def list(self) -> list[ApiKey]: ...

    async def revoke(self, key_id: uuid.UUID, now: datetime) -> bool: ...

    async def touch(self, key_id: uuid.UUID, now: datetime) -> None: ...


@dataclass(frozen=True)
class IdempotencyRecord:
    client_id: str
    key: str
    request_fingerprint: str
    document_id: uuid.UUID


class IdempotencyRepository(Protocol):
    async def get(self, client_id: str, key: str) -> IdempotencyRecord | None: ...

    async def add(self, record: IdempotencyRecord) -> bool:
        """False when (client_id, key) is already taken."""
        ...

    async def purge_older_than(self, when: datetime) -> int: ...


class UnitOfWork(Protocol):
    """One transaction over the repositories: rolls back unless committed."""

    documents: DocumentRepository
    jobs: JobRepository
    chunks: ChunkRepository
    api_keys: ApiKeyRepository
    idempotency: IdempotencyRepository

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...

    async def autocommit(self) -> None:
        """Each statement from here on commits on its own: no BEGIN and COMMIT round
        trips. For a unit whose work is one atomic statement (``submit``); called
        before any statement of the unit, else it raises RuntimeError."""
        ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


class JobQueue(Protocol):
    """The doorbell: tells the worker fleet there may be work. The database is the queue."""

    async def ring(self) -> None:
        """Never raises and never blocks the caller on the broker."""
        ...

    async def backlog(self) -> int | None:
        """Doorbell messages waiting in the broker; None when the broker cannot say."""
        ...


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    retry_after_s: float


class RateLimiter(Protocol):
    async def hit(self, client_id: str, per_minute: int) -> RateDecision:
        """Count one request; never raises (an unreachable store allows the request)."""
        ...


PageProgress = Callable[[int, int], None]  # (pages done, pages in all), from any thread


class TextExtractor(Protocol):
    async def extract(
        self,
        data: bytes,
        document_type: DocumentType,
        on_progress: PageProgress | None = None,
    ) -> ExtractedDocument:
        """Raise a ProcessingError subclass with a clear reason when it cannot. Reports
        pages read through `on_progress` where the format has pages."""
        ...


class ProcessingObserver(Protocol):
    """What the worker reports as it works (the Prometheus adapter counts it)."""

    def document_indexed(
        self,
        *,
        collection: str,
        stage_seconds: Mapping[str, float],
        chunks: int,
        pages: int | None,
        upload_to_searchable_s: float,
    ) -> None: ...

    def document_failed(self, *, stage: Stage, cause: str, will_retry: bool) -> None:
        """`cause`: the error's class name (a small, fixed set), never free text."""
        ...

    def chunks_embedded(self, count: int, seconds: float) -> None: ...

    def leases_renewed(self, count: int) -> None: ...


class Chunker(Protocol):
    def chunk(self, document: ExtractedDocument) -> list[ChunkDraft]: ...


class TokenCounter(Protocol):
    def count_tokens(self, text: str) -> int:
        """Tokens the embedding model sees for this text (without special tokens)."""
        ...


class Embedder(Protocol):
    @property
    def model_name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    async def embed_passages(self, texts: Sequence[str]) -> list[Sequence[float]]: ...

    async def embed_query(self, text: str) -> Sequence[float]: ...


class Reranker(Protocol):
    """Scores passages against a query (a cross-encoder behind a `/rerank` API)."""

    async def scores(self, query: str, passages: Sequence[str]) -> list[float]:
        """One score per passage, in their order; higher is more relevant. Raises
        EmbeddingUnavailable when the scorer cannot answer."""
        ...


JsonDict = dict[str, Any]
