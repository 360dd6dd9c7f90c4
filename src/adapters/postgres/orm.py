"""THE single source of truth for the database schema (the seed's ``core/models.py``).

Every table lives here. A schema change is: edit this module, then
``alembic revision --autogenerate -m "..."``, review, then ``alembic upgrade head``.
Never by hand in a database; ``alembic check`` (run by the test suite) reports drift.

Notes on the choices (see docs/decisions/0002-schema.md):
- ``status`` is ``Enum(IngestionStatus, schema="ai", native_enum=False)`` as the seed
  requires. In the database the column is the DOMAIN ``ai.ingestionstatus`` (varchar
  with a CHECK of the statuses), so ``CAST(:s AS ai.ingestionstatus)`` in raw SQL
  compares with it and invalid values are refused by the database itself.
- The vector column has no fixed dimension (migration 0009): every chunk records the
  model and dimension it was embedded with, and each dimension in
  ``INDEXED_DIMENSIONS`` has its own partial HNSW index over
  ``embedding::vector(N) WHERE embedding_dim = N`` (pgvector indexes one dimension),
  so chunk sets of two models can live side by side while a collection is re-embedded
  (docs/decisions/0016-embedding-models.md).
- Full-text search is Portuguese and accent-insensitive: a tsvector over the chunk's
  heading, context and text with accents folded by ``translate`` (the embedded
  PostgreSQL ships no ``unaccent`` extension), written with the row by a trigger
  together with its BM25 length (migration 0013).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    FetchedValue,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, REAL, TSVECTOR, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from domain.model import IngestionStatus

SCHEMA = "ai"
STATUS_TYPE = "ai.ingestionstatus"
EMBEDDING_DIM = 384  # multilingual-e5-small, the default model
# the dimensions an embedding model may have: each has a partial HNSW index (empty until
# a model of that dimension stores chunks); another needs a migration adding its index
INDEXED_DIMENSIONS = (256, 384, 512, 768, 1024, 1536)
HNSW_WITH = {"m": 16, "ef_construction": 64}
TEXT_SEARCH_CONFIG = "portuguese"

# Accent folding shared by the generated column and by search queries.
UNACCENT_FROM = "ÀÁÂÃÄÅàáâãäåÈÉÊËèéêëÌÍÎÏìíîïÒÓÔÕÖòóôõöÙÚÛÜùúûüÇçÑñÝýÿ"
UNACCENT_TO = "AAAAAAaaaaaaEEEEeeeeIIIIiiiiOOOOOoooooUUUUuuuuCcNnYyy"
assert len(UNACCENT_FROM) == len(UNACCENT_TO)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


EMPTY_JSON = text("'{}'::jsonb")


def status_enum() -> Enum:
    return Enum(IngestionStatus, schema=SCHEMA, native_enum=False)


def _tz() -> DateTime:
    return DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA, naming_convention=NAMING_CONVENTION)


class DocumentRow(Base):
    __tablename__ = "documents"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    collection: Mapped[str] = mapped_column(String(100), nullable=False)
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    content_type: Mapped[str] = mapped_column(String(100), nullable=False)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    chunk_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # what extraction dropped and found: struck characters, revoked stubs, boilerplate,
    # amendment notes, the detected norm (see domain.legal)
    extraction: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    # identity and versions (domain/versions.py): the document's key in its collection,
    # where the key came from, the version's number under it, whether it answers
    # searches, what replaced it, and when its chunk set was stored
    source_key: Mapped[str] = mapped_column(String(1000), nullable=False)
    key_origin: Mapped[str] = mapped_column(String(10), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    is_current: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    superseded_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    superseded_at: Mapped[datetime | None] = mapped_column(_tz())
    indexed_at: Mapped[datetime | None] = mapped_column(_tz())
    # the ingest batch the upload belongs to (a label the client chooses: `ingest` and
    # `sync` send one per run), so a client watches its uploads with one question
    batch: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(_tz(), nullable=False, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(_tz(), nullable=False, server_default=func.now())

    __table_args__ = (
        UniqueConstraint("collection", "source_key", "version"),
        # at most one current version per key, enforced by the database itself
        Index(
            "uq_documents_current_key",
            "collection",
            "source_key",
            unique=True,
            postgresql_where=text("is_current"),
        ),
        # deduplication of uploads without a key (same bytes, same collection): the
        # newest such version in one descent, its order held by the index (0015)
        Index(
            "ix_documents_collection_sha256_created_at_id",
            "collection",
            "sha256",
            "created_at",
            "id",
        ),
        Index("ix_documents_batch", "batch", postgresql_where=text("batch IS NOT NULL")),
        Index("ix_documents_created_at_id", "created_at", "id"),
        Index("ix_documents_collection_created_at_id", "collection", "created_at", "id"),
        Index("ix_documents_metadata", "metadata", postgresql_using="gin"),
    )


class DocumentContentRow(Base):
    """Raw bytes as uploaded, kept apart so listings never drag them along; stored
    without PostgreSQL's compression (STORAGE EXTERNAL, migration 0014): uploads are
    mostly compressed containers, where trying cost CPU and saved nothing."""

    __tablename__ = "document_contents"

    document_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class IngestionJobRow(Base):
    """The durable queue. Workers claim rows with FOR UPDATE SKIP LOCKED."""

    __tablename__ = "ingestion_queue"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    document_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("documents.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    )
    status: Mapped[IngestionStatus] = mapped_column(
        status_enum(), default=IngestionStatus.PENDING, nullable=False
    )
    stage: Mapped[str] = mapped_column(String(20), nullable=False, server_default="queued")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="3")
    locked_by: Mapped[str | None] = mapped_column(String(200))
    locked_until: Mapped[datetime | None] = mapped_column(_tz())
    next_attempt_at: Mapped[datetime | None] = mapped_column(_tz())
    last_error: Mapped[str | None] = mapped_column(Text)
    # the exception class and text, the worker's host:pid: admin keys only (migration 0008)
    error_detail: Mapped[str | None] = mapped_column(Text)
    # FAILED only: document (retrying cannot help), gave_up (transient, attempts used up),
    # cancelled (domain.model.FailureKind)
    failure_kind: Mapped[str | None] = mapped_column(String(20))
    # pages read and chunks embedded so far (domain.progress.JobProgress, migration 0007)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # what the job does (domain.model.JobKind): "ingest", or "reembed" (migration 0009)
    kind: Mapped[str] = mapped_column(String(20), nullable=False, server_default="ingest")
    # when the row last changed, by the DATABASE's clock (trigger ai.touch_changed_at,
    # migration 0006): the change feed's cursor, immune to the workers' clock skew
    changed_at: Mapped[datetime] = mapped_column(
        _tz(), nullable=False, server_default=text("clock_timestamp()")
    )
    created_at: Mapped[datetime] = mapped_column(_tz(), nullable=False, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(_tz(), nullable=False, server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(_tz())
    finished_at: Mapped[datetime | None] = mapped_column(_tz())

    __table_args__ = (
        # serves the claim (status = PENDING ORDER BY created_at), the sweeper and listings
        Index("ix_ingestion_queue_status_created_at_id", "status", "created_at", "id"),
        Index("ix_ingestion_queue_changed_at_id", "changed_at", "id"),
        # the claim's order among PENDING jobs: uploads (kind "ingest") before re-embedding
        Index(
            "ix_ingestion_queue_pending_kind_created_at",
            "kind",
            "created_at",
            postgresql_where=text("status = CAST('PENDING' AS ai.ingestionstatus)"),
        ),
    )


class ChunkRow(Base):
    __tablename__ = "chunks"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    document_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("documents.id", ondelete="CASCADE"), nullable=False
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    heading: Mapped[str | None] = mapped_column(Text)
    # the caput a continuation chunk of a long article is read with (embedded, searched)
    context: Mapped[str | None] = mapped_column(Text)
    # the article the chunk holds (the first one when it holds several short ones)
    article: Mapped[str | None] = mapped_column(String(20))
    # article_end, paragraph, inciso, alinea, amended_by (domain.model.LegalRef)
    legal: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=EMPTY_JSON)
    # BM25 document length: the lexemes of search_vector, counted with repetitions
    # (written with the row by the trigger ai.chunk_terms)
    keyword_length: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    token_count: Mapped[int] = mapped_column(Integer, nullable=False)
    page_start: Mapped[int | None] = mapped_column(Integer)
    page_end: Mapped[int | None] = mapped_column(Integer)
    model_name: Mapped[str] = mapped_column(String(200), nullable=False)
    embedding_dim: Mapped[int] = mapped_column(Integer, nullable=False)
    # any dimension; kept inside the row (STORAGE MAIN, migration 0017), not in TOAST
    embedding: Mapped[Any] = mapped_column(Vector(), nullable=False)
    # written with the row by the trigger ai.chunk_terms (migration 0013), as is
    # keyword_length: to_tsvector(TEXT_SEARCH_CONFIG, translate(heading || ' ' ||
    # context || ' ' || text, UNACCENT_FROM, UNACCENT_TO)), the query side's folding
    search_vector: Mapped[Any] = mapped_column(
        TSVECTOR, nullable=False, server_default=FetchedValue()
    )
    created_at: Mapped[datetime] = mapped_column(_tz(), nullable=False, server_default=func.now())

    __table_args__ = (
        UniqueConstraint("document_id", "position"),
        *(
            Index(
                f"ix_chunks_embedding_{dim}_hnsw",
                text(f"(embedding::vector({dim})) vector_cosine_ops"),
                postgresql_using="hnsw",
                postgresql_with=HNSW_WITH,
                postgresql_where=text(f"embedding_dim = {dim}"),
            )
            for dim in INDEXED_DIMENSIONS
        ),
        Index("ix_chunks_search_vector", "search_vector", postgresql_using="gin"),
        Index("ix_chunks_model_name_embedding_dim", "model_name", "embedding_dim"),
        Index("ix_chunks_document_id_article", "document_id", "article"),
    )


# -- BM25 keyword index ------------------------------------------------------------------
#
# Okapi BM25 needs, per query term, its postings (chunk, term frequency, impact)
# and its document frequency, and the corpus' chunk count and total length. They are
# written in the same transaction as the chunks they describe (ChunkRepository.replace),
# so a fleet of workers and deletions keep them exact. Statistics are split in
# KEYWORD_SHARDS rows per term, by document, so concurrent stores of different
# documents rarely wait on the same rows; a query sums the shards.

KEYWORD_SHARDS = 16


class KeywordPostingRow(Base):
    __tablename__ = "keyword_postings"

    term: Mapped[str] = mapped_column(Text, primary_key=True)
    chunk_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("chunks.id", ondelete="CASCADE"), primary_key=True
    )
    # the chunk's document, so filters on documents apply to postings as they are read
    document_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    tf: Mapped[int] = mapped_column(Integer, nullable=False)
    # the posting's share of a BM25 score before the term's idf (keyword_index.IMPACT_SQL)
    impact: Mapped[float] = mapped_column(REAL, nullable=False)

    __table_args__ = (
        Index("ix_keyword_postings_chunk_id", "chunk_id"),
        # each term's postings best first, answered from the index alone
        Index(
            "ix_keyword_postings_term_impact",
            "term",
            text("impact DESC"),
            postgresql_include=["chunk_id", "document_id"],
        ),
    )


class RowCountRow(Base):
    """A stored row counter's total (counter "jobs" by status, "chunks" by
    "dimension:model"); triggers append changes to RowCountDeltaRow (migration 0011)."""

    __tablename__ = "row_counts"

    counter: Mapped[str] = mapped_column(String(20), primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, nullable=False)


class RowCountDeltaRow(Base):
    """One statement's net change of a counter; insert-only, folded by the sweeper."""

    __tablename__ = "row_count_deltas"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    counter: Mapped[str] = mapped_column(String(20), nullable=False)
    key: Mapped[str] = mapped_column(Text, nullable=False)
    n: Mapped[int] = mapped_column(BigInteger, nullable=False)


class KeywordTermRow(Base):
    """Document frequency of a term (chunks holding it), in shards."""

    __tablename__ = "keyword_terms"

    term: Mapped[str] = mapped_column(Text, primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    df: Mapped[int] = mapped_column(BigInteger, nullable=False)


class KeywordStatsRow(Base):
    """Chunks and their total length, in shards."""

    __tablename__ = "keyword_stats"

    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    chunks: Mapped[int] = mapped_column(BigInteger, nullable=False)
    tokens: Mapped[int] = mapped_column(BigInteger, nullable=False)


class ApiKeyRow(Base):
    """API keys: only a SHA-256 of the secret is stored; the public prefix finds the row."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False, unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(20)), nullable=False)
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer)
    # the collections the key reaches; NULL: every collection (migration 0008)
    collections: Mapped[list[str] | None] = mapped_column(ARRAY(String(100)))
    created_at: Mapped[datetime] = mapped_column(_tz(), nullable=False, server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(_tz())
    revoked_at: Mapped[datetime | None] = mapped_column(_tz())


class IdempotencyKeyRow(Base):
    """Idempotency-Key replays: the same key from the same client gets the same document."""

    __tablename__ = "idempotency_keys"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    document_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("documents.id", ondelete="CASCADE"), nullable=False
    )
    created_at: Mapped[datetime] = mapped_column(_tz(), nullable=False, server_default=func.now())

    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)
