"""Tables of the ORM module as Core tables, and rows <-> domain objects (shared by the
repositories of each aggregate)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import Row, Table

from adapters.postgres.orm import (
    ApiKeyRow,
    ChunkRow,
    DocumentContentRow,
    DocumentRow,
    IdempotencyKeyRow,
    IngestionJobRow,
    KeywordPostingRow,
    KeywordStatsRow,
    KeywordTermRow,
)
from domain.model import (
    Document,
    DocumentType,
    FailureKind,
    IngestionJob,
    IngestionStatus,
    JobKind,
    Stage,
)
from domain.progress import JobProgress
from domain.versions import KeyOrigin

documents = cast(Table, DocumentRow.__table__)
contents = cast(Table, DocumentContentRow.__table__)
jobs = cast(Table, IngestionJobRow.__table__)
chunks = cast(Table, ChunkRow.__table__)
api_keys = cast(Table, ApiKeyRow.__table__)
idempotency_keys = cast(Table, IdempotencyKeyRow.__table__)
keyword_postings = cast(Table, KeywordPostingRow.__table__)
keyword_terms = cast(Table, KeywordTermRow.__table__)
keyword_stats = cast(Table, KeywordStatsRow.__table__)

# -- row <-> domain -------------------------------------------------------------------


def document_from_row(row: Row[Any] | Mapping[Any, Any]) -> Document:
    m = row._mapping if isinstance(row, Row) else row
    return Document(
        id=m["id"],
        collection=m["collection"],
        filename=m["filename"],
        content_type=DocumentType(m["content_type"]),
        size_bytes=m["size_bytes"],
        sha256=m["sha256"],
        metadata=dict(m["metadata"] or {}),
        created_at=m["created_at"],
        chunk_count=m["chunk_count"],
        extraction=dict(m["extraction"] or {}),
        source_key=m["source_key"],
        key_origin=KeyOrigin(m["key_origin"]),
        version=m["version"],
        is_current=m["is_current"],
        superseded_by=m["superseded_by"],
        superseded_at=m["superseded_at"],
        indexed_at=m["indexed_at"],
        batch=m["batch"],
    )


def job_from_row(row: Row[Any] | Mapping[Any, Any], prefix: str = "") -> IngestionJob:
    m = row._mapping if isinstance(row, Row) else row
    return IngestionJob(
        id=m[prefix + "id"],
        document_id=m[prefix + "document_id"],
        status=IngestionStatus(m[prefix + "status"]),
        stage=Stage(m[prefix + "stage"]),
        attempts=m[prefix + "attempts"],
        max_attempts=m[prefix + "max_attempts"],
        locked_by=m[prefix + "locked_by"],
        locked_until=m[prefix + "locked_until"],
        next_attempt_at=m[prefix + "next_attempt_at"],
        last_error=m[prefix + "last_error"],
        error_detail=m[prefix + "error_detail"],
        created_at=m[prefix + "created_at"],
        updated_at=m[prefix + "updated_at"],
        started_at=m[prefix + "started_at"],
        finished_at=m[prefix + "finished_at"],
        failure_kind=FailureKind(kind) if (kind := m[prefix + "failure_kind"]) else None,
        progress=JobProgress.from_json(m[prefix + "progress"]),
        kind=JobKind(m[prefix + "kind"]),
    )


def job_values(job: IngestionJob) -> dict[str, Any]:
    return {
        "document_id": job.document_id,
        "status": job.status,
        "stage": job.stage.value,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "locked_by": job.locked_by,
        "locked_until": job.locked_until,
        "next_attempt_at": job.next_attempt_at,
        "last_error": job.last_error,
        "error_detail": job.error_detail,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "failure_kind": job.failure_kind.value if job.failure_kind else None,
        "progress": job.progress.as_json() if job.progress else None,
        "kind": job.kind.value,
    }


# The enqueue path's statements, built once: constructing Core statements with
