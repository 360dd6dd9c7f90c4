"""What the API answers, typed for callers. Fields the API adds later are kept
(`extra="allow"`), so an older client reads a newer server."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Progress(_Model):
    pages_done: int | None = None
    pages_total: int | None = None
    chunks_done: int | None = None
    chunks_total: int | None = None
    eta_seconds: float | None = None


class Job(_Model):
    id: uuid.UUID
    document_id: uuid.UUID
    status: str
    kind: str = "ingest"  # or "reembed"
    stage: str
    attempts: int
    max_attempts: int
    last_error: str | None = None
    failure_kind: str | None = None
    retryable: bool = False
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    progress: Progress | None = None


class Document(_Model):
    id: uuid.UUID
    collection: str
    filename: str
    content_type: str
    size_bytes: int
    sha256: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    chunk_count: int = 0
    source_key: str
    version: int
    current: bool
    status: str | None = None
    stage: str | None = None
    last_error: str | None = None
    job: Job | None = None
    metadata_updated: bool = False
    # uploads only: True when it made a new document or version (201), False when the
    # key already held the same content (200); None on reads
    created: bool | None = None


class Page(_Model):
    next_cursor: str | None = None


class DocumentPage(Page):
    items: list[Document]


class JobPage(Page):
    items: list[Job]


class Versions(_Model):
    collection: str
    source_key: str
    current: uuid.UUID | None = None
    versions: list[Document]


class Citation(_Model):
    """Where a passage comes from, as an assistant quotes it."""

    citation: str | None = None  # "Lei nº 8.112/1990, art. 77"
    norm: str | None = None
    article: str | None = None
    article_end: str | None = None
    paragraph: str | None = None
    inciso: str | None = None
    alinea: str | None = None
    amended_by: list[str] = Field(default_factory=list)


class SearchHit(Citation):
    chunk_id: int
    document_id: uuid.UUID
    filename: str
    collection: str
    position: int
    text: str
    heading: str | None = None
    score: float
    page_start: int | None = None
    page_end: int | None = None
    context: str | None = None  # the caput a continuation chunk is read with
    source_key: str | None = None
    version: int | None = None
    current: bool = True
    expanded: str | None = None  # the whole article (expand="article")
    rerank_score: float | None = None  # when the platform has a reranker


class SearchResult(_Model):
    query: str
    mode: str
    model: str
    took_ms: float
    results: list[SearchHit]


class ChunkPage(_Model):
    items: list[SearchHit]
    next_after: int | None = None


class Change(_Model):
    id: uuid.UUID
    collection: str
    filename: str
    status: str | None = None
    stage: str | None = None
    chunk_count: int = 0
    last_error: str | None = None
    progress: Progress | None = None


class Changes(_Model):
    items: list[Change]
    cursor: str | None = None
    summary: dict[str, Any] | None = None


class Collection(_Model):
    name: str
    documents: int
    chunks: int


class Reembedding(_Model):
    model: str  # the configured model the chunks are going to
    dim: int
    queued: int  # documents sent back to the queue as reembed jobs


class Stats(_Model):
    jobs: dict[str, int]
    ready: int
    oldest_pending_age_s: float | None = None
    stalled_leases: int = 0
    chunks_by_model: list[dict[str, Any]] = Field(default_factory=list)
    embedding_model: dict[str, Any] | None = None  # the model queries are embedded with
    warnings: list[str] = Field(default_factory=list)
