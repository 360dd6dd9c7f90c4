"""Request and response bodies of the HTTP API (pydantic)."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from application.ports import DocumentView
from application.use_cases.search import Expand
from domain.errors import InvalidInput
from domain.model import IngestionJob, IngestionStatus
from domain.search import SearchHit, SearchMode


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(examples=["urn:problem-type:cogep:unsupported_media_type"])
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


class ProgressOut(BaseModel):
    """How far the job has come (recorded by the worker about once a second)."""

    pages_done: int | None = Field(description="pages read so far (formats with pages)")
    pages_total: int | None
    chunks_done: int | None = Field(description="chunks embedded so far")
    chunks_total: int | None = Field(description="chunks the document makes (known after chunking)")
    eta_seconds: float | None = Field(
        description="seconds left in the current stage at the rate so far; null while unknown"
    )

    @classmethod
    def of(cls, job: IngestionJob, now: datetime) -> ProgressOut | None:
        p = job.progress
        if p is None:
            return None
        running = job.status is IngestionStatus.PROCESSING
        return cls(
            pages_done=p.pages_done,
            pages_total=p.pages_total,
            chunks_done=p.chunks_done,
            chunks_total=p.chunks_total,
            eta_seconds=p.eta_seconds(now) if running else None,
        )


class JobOut(BaseModel):
    id: uuid.UUID
    document_id: uuid.UUID
    status: IngestionStatus
    kind: str = Field(
        default="ingest",
        description="ingest (extract, chunk, embed) or reembed (the stored chunks embedded "
        "again with the configured model; they keep answering meanwhile)",
    )
    stage: str
    attempts: int
    max_attempts: int
    last_error: str | None
    failure_kind: str | None = Field(
        description="FAILED only: document (the document itself; retrying cannot help), "
        "gave_up (transient errors used up the attempts; a retry may work), cancelled"
    )
    retryable: bool = Field(description="FAILED and worth a retry (failure_kind gave_up)")
    next_attempt_at: datetime | None
    locked_by: str | None = Field(description="the worker's host:pid (admin keys only)")
    error_detail: str | None = Field(
        default=None,
        description="the failure's exception class and text, the worker lost (admin keys "
        "only; `last_error` is the reason for everyone)",
    )
    locked_until: datetime | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: ProgressOut | None = Field(
        description="pages read and chunks embedded, with an ETA while PROCESSING"
    )

    @classmethod
    def of(cls, job: IngestionJob, internals: bool = False) -> JobOut:
        """`internals`: the caller holds an admin key (worker ids, exception text)."""
        return cls(
            id=job.id,
            document_id=job.document_id,
            status=job.status,
            kind=job.kind.value,
            stage=job.stage.value,
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            last_error=job.last_error,
            failure_kind=job.failure_kind.value if job.failure_kind else None,
            retryable=bool(job.failure_kind and job.failure_kind.retryable),
            next_attempt_at=job.next_attempt_at,
            locked_by=job.locked_by if internals else None,
            error_detail=job.error_detail if internals else None,
            locked_until=job.locked_until,
            created_at=job.created_at,
            updated_at=job.updated_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            progress=ProgressOut.of(job, datetime.now(UTC)),
        )


class DocumentOut(BaseModel):
    id: uuid.UUID
    collection: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    metadata: dict[str, Any]
    created_at: datetime
    chunk_count: int
    extraction: dict[str, Any] = Field(
        default_factory=dict,
        description="what extraction dropped and found: struck characters, revoked and "
        "vetoed units, amendment notes, boilerplate lines, pages",
    )
    source_key: str = Field(
        description="the document's identity in its collection: the client's key, the "
        "norm's ('lei-8112-1990'), or 'sha256:<hex>' for an upload without either"
    )
    key_origin: str = Field(description="client, norm or content")
    version: int = Field(description="the version's number under its key, from 1")
    current: bool = Field(description="this version answers searches")
    superseded_by: uuid.UUID | None = Field(description="the version that replaced this one")
    superseded_at: datetime | None
    batch: str | None = Field(description="the ingest batch the upload came in")
    indexed_at: datetime | None = Field(
        description="when the chunk set searches see was stored (it stays when a "
        "later reprocess fails or is cancelled)"
    )
    status: IngestionStatus | None = Field(description="the ingestion job's status")
    stage: str | None
    attempts: int | None
    last_error: str | None
    job: JobOut | None
    metadata_updated: bool = Field(
        default=False,
        description="an upload of content the key already holds merged its metadata in",
    )

    @classmethod
    def of(cls, view: DocumentView, internals: bool = False) -> DocumentOut:
        d, job = view.document, view.job
        return cls(
            id=d.id,
            collection=d.collection,
            filename=d.filename,
            content_type=d.content_type.value,
            size_bytes=d.size_bytes,
            sha256=d.sha256,
            metadata=d.metadata,
            created_at=d.created_at,
            chunk_count=d.chunk_count,
            extraction=d.extraction,
            source_key=d.source_key,
            key_origin=d.key_origin.value,
            version=d.version,
            current=d.is_current,
            superseded_by=d.superseded_by,
            superseded_at=d.superseded_at,
            indexed_at=d.indexed_at,
            batch=d.batch,
            status=job.status if job else None,
            stage=job.stage.value if job else None,
            attempts=job.attempts if job else None,
            last_error=job.last_error if job else None,
            job=JobOut.of(job, internals) if job else None,
        )


class DocumentPage(BaseModel):
    items: list[DocumentOut]
    next_cursor: str | None


class BatchSummaryOut(BaseModel):
    total: int
    finished: int = Field(description="COMPLETED or FAILED")
    by_status: dict[str, int]
    chunks: int = Field(description="chunks of the batch's COMPLETED documents")


class DocumentChangeOut(BaseModel):
    """What a watcher needs of a document that changed (GET /v1/documents/{id} has the
    rest)."""

    id: uuid.UUID
    collection: str
    filename: str
    source_key: str
    version: int
    current: bool
    batch: str | None
    chunk_count: int
    status: IngestionStatus | None
    stage: str | None
    attempts: int | None
    last_error: str | None
    failure_kind: str | None
    progress: ProgressOut | None

    @classmethod
    def of(cls, view: DocumentView) -> DocumentChangeOut:
        d, job = view.document, view.job
        return cls(
            id=d.id,
            collection=d.collection,
            filename=d.filename,
            source_key=d.source_key,
            version=d.version,
            current=d.is_current,
            batch=d.batch,
            chunk_count=d.chunk_count,
            status=job.status if job else None,
            stage=job.stage.value if job else None,
            attempts=job.attempts if job else None,
            last_error=job.last_error if job else None,
            failure_kind=job.failure_kind.value if job and job.failure_kind else None,
            progress=ProgressOut.of(job, datetime.now(UTC)) if job else None,
        )


class ChangesOut(BaseModel):
    items: list[DocumentChangeOut] = Field(description="documents whose job changed, oldest first")
    cursor: str | None = Field(description="pass back as `after` to get what comes next")
    summary: BatchSummaryOut | None = Field(description="the batch's counts (with `batch`)")


class VersionsOut(BaseModel):
    collection: str
    source_key: str
    current: uuid.UUID | None = Field(description="the version searches see, if any")
    versions: list[DocumentOut] = Field(description="newest first")


class DocumentPatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metadata: dict[str, Any] = Field(
        description="a JSON merge patch (RFC 7396) of the metadata: keys set to null "
        "are removed, objects are merged, other values replace",
        examples=[{"orgao": "COGEP", "rascunho": None}],
    )


class ReembedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$",
        description="only this collection (default: every collection the key reaches)",
    )


class ReembedOut(BaseModel):
    model: str = Field(description="the configured model the chunks are going to")
    dim: int
    queued: int = Field(
        description="documents sent back to the queue as reembed jobs (their chunks keep "
        "answering until each is swapped); follow them in /v1/stats (chunks_by_model)"
    )


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


class TextDocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, description="the document's text")
    filename: str | None = Field(default=None, max_length=1000)
    format: Literal["text", "markdown", "html"] = "text"
    collection: str | None = Field(default=None, max_length=100)
    metadata: dict[str, Any] = Field(default_factory=dict)
    source_key: str | None = Field(
        default=None,
        max_length=1000,
        description="the document's identity in its collection: new text under the same "
        "key is a new version of it",
    )
    batch: str | None = Field(
        default=None, max_length=100, description="an ingest batch label to watch it by"
    )


class ModelCount(BaseModel):
    model: str
    dim: int
    chunks: int


class StatsOut(BaseModel):
    jobs: dict[str, int]
    ready: int
    oldest_pending_age_s: float | None
    stalled_leases: int = Field(
        description="PROCESSING jobs whose lease ran out, not yet handed back by the sweeper"
    )
    chunks_by_model: list[ModelCount]
    embedding_model: ModelCount = Field(
        description="the model this API embeds queries with (`chunks`: its chunks)"
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="stored chunks of another model (searches do not see them), and the like",
    )


class HealthOut(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)


def encode_cursor(created_at: datetime, item_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{item_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, item = raw.split("|", 1)
        when = datetime.fromisoformat(created)
        if when.tzinfo is None:
            raise ValueError("naive timestamp")
        # in UTC here, where a date at the edge of the calendar ("9999-12-31T23:59-23:59")
        # overflows, not in the database driver
        return when.astimezone(UTC), uuid.UUID(item)
    except (ValueError, OverflowError, UnicodeDecodeError, binascii.Error) as exc:
        raise InvalidInput("the cursor is not one this API returned", field="cursor") from exc


# -- search ------------------------------------------------------------------------------


class SearchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(
        min_length=1, max_length=2000, examples=["quantos dias de férias posso acumular?"]
    )
    top_k: int = Field(default=10, ge=1, le=100)
    mode: SearchMode = SearchMode.HYBRID
    collection: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$")
    document_ids: list[uuid.UUID] = Field(default_factory=list, max_length=100)
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="only documents whose metadata contains this object"
    )
    expand: Expand = Field(
        default=Expand.NONE,
        description="`article`: each hit also carries its whole article (`expanded`), "
        "within 12,000 characters",
    )
    include_superseded: bool = Field(
        default=False, description="also search versions that a newer one replaced"
    )


class SearchHitOut(BaseModel):
    chunk_id: int
    document_id: uuid.UUID
    filename: str
    collection: str
    position: int
    heading: str | None
    text: str
    page_start: int | None
    page_end: int | None
    score: float
    vector_rank: int | None
    keyword_rank: int | None
    coverage: float | None = Field(description="keyword hits: share of the query's terms found")
    citation: str | None = Field(
        description="what to quote: 'Lei nº 8.112/1990, art. 77, § 1º (p. 12)'",
        examples=["Lei nº 9.784/1999, art. 59"],
    )
    norm: str | None = Field(description="the norm the document is ('Lei nº 9.784/1999')")
    article: str | None = Field(description="the article the chunk holds ('59', '5-A')")
    article_end: str | None = Field(description="the last article, when it holds several")
    paragraph: str | None
    inciso: str | None
    alinea: str | None
    amended_by: list[str] = Field(description="acts that gave or added this wording")
    context: str | None = Field(description="the caput a continuation chunk is read with")
    expanded: str | None = Field(description="the whole article (expand='article')")
    source_key: str | None = Field(description="the document's identity in its collection")
    version: int | None = Field(description="the version of the document the chunk is from")
    current: bool = Field(description="False for a superseded version (include_superseded)")
    rerank_score: float | None = Field(
        default=None, description="the reranker's score (when COGEP_RERANK_URL is set)"
    )

    @classmethod
    def of(cls, hit: SearchHit) -> SearchHitOut:
        legal = hit.legal
        return cls(
            chunk_id=hit.chunk_id,
            document_id=hit.document_id,
            filename=hit.filename,
            collection=hit.collection,
            position=hit.position,
            heading=hit.heading,
            text=hit.text,
            page_start=hit.page_start,
            page_end=hit.page_end,
            score=hit.score,
            vector_rank=hit.vector_rank,
            keyword_rank=hit.keyword_rank,
            coverage=hit.coverage,
            citation=hit.citation,
            norm=hit.norm,
            article=legal.article,
            article_end=legal.article_end,
            paragraph=legal.paragraph,
            inciso=legal.inciso,
            alinea=legal.alinea,
            amended_by=list(legal.amended_by),
            context=hit.context,
            expanded=hit.expanded,
            source_key=hit.source_key,
            version=hit.version,
            current=hit.current,
            rerank_score=hit.rerank_score,
        )


class CollectionOut(BaseModel):
    name: str
    documents: int = Field(description="current and in-flight versions")
    chunks: int = Field(description="chunks of the versions that answer searches")


class CollectionPage(BaseModel):
    items: list[CollectionOut]


class ChunkPage(BaseModel):
    items: list[SearchHitOut] = Field(description="the document's chunks in order")
    next_after: int | None = Field(description="pass as `after` for the next page")


class SearchOut(BaseModel):
    query: str
    mode: SearchMode
    model: str
    took_ms: float
    results: list[SearchHitOut]
