"""The ingestion domain: documents, their ingestion jobs and the chunks they become.

The job owns its state machine. Adapters may run set-based SQL for speed (claiming
with SKIP LOCKED, sweeping expired leases), but every such statement implements a
transition that is allowed here, and unit tests exercise the rules through this model.
"""

from __future__ import annotations

import enum
import random
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from domain.errors import InvalidInput, InvalidTransition
from domain.progress import JobProgress
from domain.versions import KeyOrigin, content_key

if TYPE_CHECKING:
    from domain.legal import NormIdentity

DEFAULT_COLLECTION = "default"
_COLLECTION_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}$")


_BATCH_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


def validate_batch(label: str | None) -> str | None:
    """An ingest batch label: 1-100 letters, digits, '-', '_', '.', ':'."""
    if label is None or label == "":
        return None
    if not _BATCH_RE.fullmatch(label):
        raise InvalidInput(
            f"batch {label[:120]!r} is not a valid label: use 1-100 letters, digits, '-', "
            "'_', '.' or ':', starting with a letter or digit",
            field="batch",
        )
    return label


def validate_collection(name: str | None) -> str:
    """Collections are slugs: lowercase letters, digits, '-', '_' and '.', at most 100."""
    if name is None or name == "":
        return DEFAULT_COLLECTION
    if not _COLLECTION_RE.fullmatch(name):
        raise InvalidInput(
            f"collection {name[:120]!r} is not a valid name: use 1-100 lowercase letters, "
            "digits, '-', '_' or '.', starting with a letter or digit",
            field="collection",
        )
    return name


class IngestionStatus(enum.StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


ALLOWED_TRANSITIONS: Mapping[IngestionStatus, frozenset[IngestionStatus]] = {
    # claimed by a worker, or cancelled before it was
    IngestionStatus.PENDING: frozenset({IngestionStatus.PROCESSING, IngestionStatus.FAILED}),
    # finished, failed for good, or handed back (retry with backoff, lease expired)
    IngestionStatus.PROCESSING: frozenset(
        {IngestionStatus.COMPLETED, IngestionStatus.FAILED, IngestionStatus.PENDING}
    ),
    # reprocess on request (new model, new chunker)
    IngestionStatus.COMPLETED: frozenset({IngestionStatus.PENDING}),
    # manual retry after the cause was fixed
    IngestionStatus.FAILED: frozenset({IngestionStatus.PENDING}),
}


CANCELLED_PREFIX = "cancelled"


class FailureKind(enum.StrEnum):
    """Why a FAILED job failed, which says whether retrying it can help."""

    DOCUMENT = "document"  # the document itself: corrupt, unsafe, no text; retrying cannot help
    GAVE_UP = "gave_up"  # transient errors used up the attempts; a retry may well work
    CANCELLED = "cancelled"  # someone stopped it on purpose

    @property
    def retryable(self) -> bool:
        return self is FailureKind.GAVE_UP


class JobKind(enum.StrEnum):
    """What a job does with its document. The claim takes INGEST jobs first (the claim's
    ORDER BY is `kind, created_at`: keep the values in priority order), so a corpus being
    re-embedded in the background never delays an upload."""

    INGEST = "ingest"  # extract, chunk, embed, store (uploads, reprocessing, retries)
    REEMBED = "reembed"  # the stored chunk set embedded again with the configured model


class Stage(enum.StrEnum):
    """Where a job is (or was, when it failed) in the pipeline."""

    QUEUED = "queued"
    CLAIMED = "claimed"
    EXTRACTING = "extracting"
    CHUNKING = "chunking"
    EMBEDDING = "embedding"
    STORING = "storing"
    DONE = "done"


class DocumentType(enum.StrEnum):
    """Formats the platform understands; values are the canonical media types."""

    PDF = "application/pdf"
    DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    DOC = "application/msword"
    RTF = "application/rtf"
    ODT = "application/vnd.oasis.opendocument.text"
    ODS = "application/vnd.oasis.opendocument.spreadsheet"
    ODP = "application/vnd.oasis.opendocument.presentation"
    XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
    CSV = "text/csv"
    HTML = "text/html"
    MARKDOWN = "text/markdown"
    TEXT = "text/plain"
    PNG = "image/png"
    JPEG = "image/jpeg"
    TIFF = "image/tiff"

    @property
    def label(self) -> str:
        """How people call it: 'PDF', 'Word (DOCX)', 'OpenDocument text (ODT)'."""
        return _TYPE_LABELS[self]


_TYPE_LABELS = {
    DocumentType.PDF: "PDF",
    DocumentType.DOCX: "Word (DOCX)",
    DocumentType.DOC: "legacy Word (DOC)",
    DocumentType.RTF: "RTF",
    DocumentType.ODT: "OpenDocument text (ODT)",
    DocumentType.ODS: "OpenDocument spreadsheet (ODS)",
    DocumentType.ODP: "OpenDocument presentation (ODP)",
    DocumentType.XLSX: "Excel (XLSX)",
    DocumentType.PPTX: "PowerPoint (PPTX)",
    DocumentType.CSV: "CSV",
    DocumentType.HTML: "HTML",
    DocumentType.MARKDOWN: "Markdown",
    DocumentType.TEXT: "plain text",
    DocumentType.PNG: "PNG image",
    DocumentType.JPEG: "JPEG image",
    DocumentType.TIFF: "TIFF image",
}


@dataclass
class Document:
    id: uuid.UUID
    collection: str
    filename: str
    content_type: DocumentType
    size_bytes: int
    sha256: str
    metadata: dict[str, Any]
    created_at: datetime
    chunk_count: int = 0
    extraction: dict[str, Any] = field(default_factory=dict)  # the extraction report
    # identity and versions (domain.versions): the key in the collection, the version's
    # number under it, whether it answers searches, and since when its chunk set exists
    source_key: str = ""
    key_origin: KeyOrigin = KeyOrigin.CONTENT
    version: int = 1
    is_current: bool = False
    superseded_by: uuid.UUID | None = None
    superseded_at: datetime | None = None
    indexed_at: datetime | None = None
    batch: str | None = None  # the ingest batch (a client's label) the upload came in

    def __post_init__(self) -> None:
        if not self.source_key:  # an upload without a key: its content is its identity
            self.source_key = content_key(self.sha256)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: base * 2^(attempt-1), capped, times U(1-j, 1+j)."""

    base_delay_s: float = 5.0
    max_delay_s: float = 600.0
    jitter: float = 0.5

    def delay_for(self, attempt: int, rng: random.Random | None = None) -> float:
        raw = min(self.max_delay_s, self.base_delay_s * (2 ** max(0, attempt - 1)))
        factor = 1.0 + float((rng or random).uniform(-self.jitter, self.jitter))
        return float(max(0.0, raw * factor))


@dataclass(frozen=True)
class FailureOutcome:
    """What a failure did to the job: scheduled another attempt, or failed it for good."""

    will_retry: bool
    retry_at: datetime | None
    reason: str


@dataclass
class IngestionJob:
    id: uuid.UUID
    document_id: uuid.UUID
    status: IngestionStatus
    created_at: datetime
    updated_at: datetime
    max_attempts: int = 3
    attempts: int = 0
    stage: Stage = Stage.QUEUED
    locked_by: str | None = None
    locked_until: datetime | None = None
    next_attempt_at: datetime | None = None
    last_error: str | None = None  # the reason, for everyone who may read the document
    # what only an operator needs: the exception class and text, the worker's host:pid
    error_detail: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    failure_kind: FailureKind | None = None  # set when FAILED
    progress: JobProgress | None = None  # pages read, chunks embedded (domain.progress)
    kind: JobKind = JobKind.INGEST

    @classmethod
    def new(cls, document_id: uuid.UUID, now: datetime, max_attempts: int) -> IngestionJob:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        return cls(
            id=uuid.uuid4(),
            document_id=document_id,
            status=IngestionStatus.PENDING,
            created_at=now,
            updated_at=now,
            max_attempts=max_attempts,
            next_attempt_at=now,
        )

    # -- transitions -------------------------------------------------------------

    def _move(self, target: IngestionStatus, now: datetime) -> None:
        if target not in ALLOWED_TRANSITIONS[self.status]:
            raise InvalidTransition(self.status, target)
        self.status = target
        self.updated_at = now

    def is_claimable(self, now: datetime) -> bool:
        return self.status is IngestionStatus.PENDING and (
            self.next_attempt_at is None or self.next_attempt_at <= now
        )

    def claim(self, worker_id: str, now: datetime, lease: timedelta) -> None:
        if not self.is_claimable(now):
            raise InvalidTransition(self.status, IngestionStatus.PROCESSING)
        self._move(IngestionStatus.PROCESSING, now)
        self.attempts += 1
        self.locked_by = worker_id
        self.locked_until = now + lease
        self.stage = Stage.CLAIMED
        self.started_at = now
        self.finished_at = None
        self.progress = None

    def holds_lease(self, worker_id: str) -> bool:
        return self.status is IngestionStatus.PROCESSING and self.locked_by == worker_id

    def advance(self, stage: Stage, now: datetime) -> None:
        if self.status is not IngestionStatus.PROCESSING:
            raise InvalidTransition(self.status, self.status)
        self.stage = stage
        self.updated_at = now

    def complete(self, now: datetime) -> None:
        self._move(IngestionStatus.COMPLETED, now)
        self.failure_kind = None
        self.stage = Stage.DONE
        self._release()
        self.last_error = None
        self.error_detail = None
        self.next_attempt_at = None
        self.finished_at = now

    def fail(
        self,
        reason: str,
        *,
        transient: bool,
        now: datetime,
        policy: RetryPolicy,
        rng: random.Random | None = None,
        detail: str | None = None,
    ) -> FailureOutcome:
        """Record a failure: retry later when it is transient and attempts remain."""
        reason = reason.strip() or "unknown error"
        self.error_detail = detail
        if transient and self.attempts < self.max_attempts:
            self._move(IngestionStatus.PENDING, now)
            delay = policy.delay_for(self.attempts, rng)
            self.next_attempt_at = now + timedelta(seconds=delay)
            self.last_error = (
                f"attempt {self.attempts}/{self.max_attempts} at {self.stage}: {reason}"
            )
            self._release()
            return FailureOutcome(True, self.next_attempt_at, self.last_error)
        self._move(IngestionStatus.FAILED, now)
        if transient:
            reason = f"gave up after {self.attempts} attempts: {reason}"
        self.failure_kind = FailureKind.GAVE_UP if transient else FailureKind.DOCUMENT
        self.last_error = f"{self.stage}: {reason}"
        self._release()
        self.next_attempt_at = None
        self.finished_at = now
        return FailureOutcome(False, None, self.last_error)

    def cancel(self, now: datetime, who: str = "on request") -> None:
        """Stop the job for good: FAILED with the reason, its lease released, so the
        worker holding it finds it gone at its next check and writes nothing."""
        if self.status not in (IngestionStatus.PENDING, IngestionStatus.PROCESSING):
            raise InvalidTransition(self.status, IngestionStatus.FAILED)
        stage = self.stage
        self._move(IngestionStatus.FAILED, now)
        self.failure_kind = FailureKind.CANCELLED
        self.last_error = f"{CANCELLED_PREFIX} at {stage} {who}"
        self._release()
        self.next_attempt_at = None
        self.finished_at = now

    @property
    def cancelled(self) -> bool:
        return self.status is IngestionStatus.FAILED and self.failure_kind is FailureKind.CANCELLED

    def expire_lease(self, now: datetime) -> None:
        """The worker holding the job vanished: hand it back, or fail it if out of attempts.

        Only a job the worker had started on (extracting, chunking, embedding, storing) is
        charged the attempt: a batch neighbour still waiting in CLAIMED did nothing that
        could have killed the worker, so it goes back with its attempt returned."""
        if self.status is not IngestionStatus.PROCESSING or (
            self.locked_until is not None and self.locked_until > now
        ):
            raise InvalidTransition(self.status, IngestionStatus.PENDING)
        reason = f"lease expired during {self.stage} (its worker was lost)"
        self.error_detail = f"worker {self.locked_by} lost its lease"
        if self.stage in (Stage.QUEUED, Stage.CLAIMED):
            self.attempts = max(0, self.attempts - 1)
            reason += "; it had not started on this document, so the attempt is not counted"
        if self.attempts >= self.max_attempts:
            self._move(IngestionStatus.FAILED, now)
            self.failure_kind = FailureKind.GAVE_UP
            self.last_error = f"gave up after {self.attempts} attempts: {reason}"
            self.finished_at = now
            self.next_attempt_at = None
        else:
            self._move(IngestionStatus.PENDING, now)
            self.last_error = reason
            self.next_attempt_at = now
        self._release()

    def requeue(self, now: datetime, *, reset_attempts: bool = True) -> None:
        """Reprocess a finished job (manual retry of a FAILED one, or a COMPLETED one):
        the whole pipeline again, whatever the job did last."""
        self._move(IngestionStatus.PENDING, now)
        self.kind = JobKind.INGEST
        self.failure_kind = None
        if reset_attempts:
            self.attempts = 0
        self.stage = Stage.QUEUED
        self.next_attempt_at = now
        self.finished_at = None
        self._release()

    def _release(self) -> None:
        self.locked_by = None
        self.locked_until = None


@dataclass(frozen=True)
class ClaimedJob:
    """A job a worker holds: enough to fetch its document and to fence its writes."""

    job_id: uuid.UUID
    document_id: uuid.UUID
    attempts: int
    max_attempts: int
    lease_token: str
    kind: JobKind = JobKind.INGEST


@dataclass(frozen=True)
class LegalRef:
    """Where a chunk stands in a norm: the article it holds (or the first and last of
    the short articles it holds), and the paragraph / inciso when all of it is inside
    one. ``amended_by`` lists the acts that gave or added its wording."""

    article: str | None = None  # "77"
    article_end: str | None = None  # "79" when the chunk holds arts. 77 to 79
    paragraph: str | None = None  # "§ 1º"
    inciso: str | None = None  # "II"
    alinea: str | None = None  # "a"
    amended_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Chunk:
    document_id: uuid.UUID
    position: int
    text: str
    token_count: int
    heading: str | None
    embedding: Sequence[float]
    model_name: str
    embedding_dim: int
    page_start: int | None = None
    page_end: int | None = None
    context: str | None = None
    legal: LegalRef = field(default_factory=LegalRef)


@dataclass(frozen=True)
class ChunkDraft:
    """A chunk before it has a vector."""

    position: int
    text: str
    token_count: int
    heading: str | None = None
    page_start: int | None = None
    page_end: int | None = None
    # what the passage needs to be understood but does not hold: the caput of the
    # article a continuation chunk belongs to (embedded and searched, not displayed)
    context: str | None = None
    legal: LegalRef = field(default_factory=LegalRef)

    @property
    def embedding_text(self) -> str:
        """What the model embeds: the section path and context give the passage its
        meaning."""
        return "\n".join(part for part in (self.heading, self.context, self.text) if part)

    def embedded(self, document_id: uuid.UUID, vector: Sequence[float], model_name: str) -> Chunk:
        return Chunk(
            document_id=document_id,
            position=self.position,
            text=self.text,
            token_count=self.token_count,
            heading=self.heading,
            embedding=vector,
            model_name=model_name,
            embedding_dim=len(vector),
            page_start=self.page_start,
            page_end=self.page_end,
            context=self.context,
            legal=self.legal,
        )


class BlockKind(enum.StrEnum):
    HEADING = "heading"
    PARAGRAPH = "paragraph"
    LIST_ITEM = "list_item"
    TABLE = "table"
    CODE = "code"


@dataclass(frozen=True)
class Block:
    """A structural unit of extracted text (heading, paragraph, ...). In a legal act a
    block also knows where it stands in the norm (see domain.legal.structure)."""

    kind: BlockKind
    text: str
    level: int = 0
    page: int | None = None
    article: str | None = None  # "77", "5", "103-C"
    paragraph: str | None = None  # "§ 1º", "Parágrafo único"
    inciso: str | None = None  # "II"
    alinea: str | None = None  # "a"
    notes: tuple[str, ...] = ()  # amendment notes taken out of the text


@dataclass
class ExtractedDocument:
    blocks: list[Block] = field(default_factory=list)
    title: str | None = None
    pages: int | None = None
    norm: NormIdentity | None = None
    # what extraction dropped or noticed, for people: struck characters, revoked stubs,
    # boilerplate lines, amendment notes, pages read by OCR ...
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def char_count(self) -> int:
        return sum(len(b.text) for b in self.blocks)
