"""SQLAlchemy + pgvector implementations of the repository ports.

Statements are SQLAlchemy Core over the ORM tables (fast, typed); the two hot queue
statements are raw SQL exactly as the seed writes them: statuses compared through
``CAST(... AS ai.ingestionstatus)``, parameters always bound, claiming with
``FOR UPDATE SKIP LOCKED`` in the same transaction that marks rows PROCESSING.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import Row, Table, and_, delete, func, insert, or_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.postgres.orm import (
    TEXT_SEARCH_CONFIG,
    UNACCENT_FROM,
    UNACCENT_TO,
    ApiKeyRow,
    ChunkRow,
    DocumentContentRow,
    DocumentRow,
    IdempotencyKeyRow,
    IngestionJobRow,
)
from application.ports import DocumentFilter, DocumentView, IdempotencyRecord
from domain.api_keys import ApiKey, Scope
from domain.model import (
    Chunk,
    ClaimedJob,
    Document,
    DocumentType,
    IngestionJob,
    IngestionStatus,
    Stage,
)
from domain.search import SearchFilter, SearchHit

documents = cast(Table, DocumentRow.__table__)
contents = cast(Table, DocumentContentRow.__table__)
jobs = cast(Table, IngestionJobRow.__table__)
chunks = cast(Table, ChunkRow.__table__)
api_keys = cast(Table, ApiKeyRow.__table__)
idempotency_keys = cast(Table, IdempotencyKeyRow.__table__)

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
        created_at=m[prefix + "created_at"],
        updated_at=m[prefix + "updated_at"],
        started_at=m[prefix + "started_at"],
        finished_at=m[prefix + "finished_at"],
    )


def _job_values(job: IngestionJob) -> dict[str, Any]:
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
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


# The enqueue path's statements, built once: constructing Core statements with
# .values(...) on every request was a fifth of the API's CPU under load.
_INSERT_DOCUMENT = (
    pg_insert(documents)
    .on_conflict_do_nothing(index_elements=["collection", "sha256"])
    .returning(documents.c.id)
)
_INSERT_CONTENT = insert(contents)
_INSERT_JOB = insert(jobs)


class SqlAlchemyDocumentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, document: Document, content: bytes) -> bool:
        params = {
            "id": document.id,
            "collection": document.collection,
            "filename": document.filename,
            "content_type": document.content_type.value,
            "size_bytes": document.size_bytes,
            "sha256": document.sha256,
            "metadata": document.metadata,
            "chunk_count": document.chunk_count,
            "created_at": document.created_at,
            "updated_at": document.created_at,
        }
        inserted = (await self.session.execute(_INSERT_DOCUMENT, params)).scalar_one_or_none()
        if inserted is None:
            return False
        await self.session.execute(_INSERT_CONTENT, {"document_id": document.id, "data": content})
        return True

    async def get(self, document_id: uuid.UUID) -> Document | None:
        row = (
            await self.session.execute(select(documents).where(documents.c.id == document_id))
        ).first()
        return document_from_row(row) if row else None

    async def get_many(self, document_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Document]:
        if not document_ids:
            return {}
        rows = await self.session.execute(
            select(documents).where(documents.c.id.in_(list(document_ids)))
        )
        return {r.id: document_from_row(r) for r in rows}

    async def get_by_hash(self, collection: str, sha256: str) -> Document | None:
        row = (
            await self.session.execute(
                select(documents).where(
                    documents.c.collection == collection, documents.c.sha256 == sha256
                )
            )
        ).first()
        return document_from_row(row) if row else None

    async def content(self, document_id: uuid.UUID) -> bytes | None:
        data = (
            await self.session.execute(
                select(contents.c.data).where(contents.c.document_id == document_id)
            )
        ).scalar_one_or_none()
        return bytes(data) if data is not None else None

    async def contents(self, document_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, bytes]:
        if not document_ids:
            return {}
        rows = await self.session.execute(
            select(contents.c.document_id, contents.c.data).where(
                contents.c.document_id.in_(list(document_ids))
            )
        )
        return {r.document_id: bytes(r.data) for r in rows}

    async def set_chunk_count(self, document_id: uuid.UUID, count: int) -> None:
        await self.session.execute(
            update(documents)
            .where(documents.c.id == document_id)
            .values(chunk_count=count, updated_at=func.now())
        )

    async def delete(self, document_id: uuid.UUID) -> bool:
        # contents, job and chunks go with it (ON DELETE CASCADE), in this transaction
        result = await self.session.execute(
            delete(documents).where(documents.c.id == document_id).returning(documents.c.id)
        )
        return result.scalar_one_or_none() is not None

    async def list(self, flt: DocumentFilter) -> list[DocumentView]:
        job_cols = [c.label(f"job_{c.name}") for c in jobs.c]
        stmt = select(documents, *job_cols).outerjoin(jobs, jobs.c.document_id == documents.c.id)
        if flt.collection is not None:
            stmt = stmt.where(documents.c.collection == flt.collection)
        if flt.status is not None:
            stmt = stmt.where(jobs.c.status == flt.status)
        if flt.after is not None:
            stmt = stmt.where(tuple_(documents.c.created_at, documents.c.id) < tuple_(*flt.after))
        stmt = stmt.order_by(documents.c.created_at.desc(), documents.c.id.desc()).limit(flt.limit)
        views = []
        for row in await self.session.execute(stmt):
            m = row._mapping
            job = job_from_row(m, prefix="job_") if m["job_id"] is not None else None
            views.append(DocumentView(document_from_row(m), job))
        return views


# The seed's claim, extended with the retry schedule and a lease. One statement:
# select with SKIP LOCKED and mark PROCESSING in the same transaction.
_CLAIM_SQL = text(
    """
    WITH claimable AS (
        SELECT id
        FROM ai.ingestion_queue
        WHERE status = CAST('PENDING' AS ai.ingestionstatus)
          AND (next_attempt_at IS NULL OR next_attempt_at <= :now)
        ORDER BY created_at
        LIMIT :batch_size
        FOR UPDATE SKIP LOCKED
    )
    UPDATE ai.ingestion_queue AS q
    SET status = CAST(:processing AS ai.ingestionstatus),
        stage = :stage,
        attempts = q.attempts + 1,
        locked_by = :worker_id,
        locked_until = :locked_until,
        started_at = :now,
        finished_at = NULL,
        updated_at = :now
    FROM claimable
    WHERE q.id = claimable.id
    RETURNING q.id, q.document_id, q.attempts, q.max_attempts, q.created_at
    """
)

_RENEW_SQL = text(
    """
    UPDATE ai.ingestion_queue
    SET locked_until = :locked_until, updated_at = :now
    WHERE id = ANY(:ids)
      AND locked_by = :worker_id
      AND status = CAST(:processing AS ai.ingestionstatus)
    """
)

_EXPIRED_SQL = text(
    """
    SELECT *
    FROM ai.ingestion_queue
    WHERE status = CAST(:processing AS ai.ingestionstatus)
      AND locked_until < :now
    ORDER BY locked_until
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)


class SqlAlchemyJobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, job: IngestionJob) -> None:
        await self.session.execute(_INSERT_JOB, {"id": job.id, **_job_values(job)})

    async def get(self, job_id: uuid.UUID) -> IngestionJob | None:
        row = (await self.session.execute(select(jobs).where(jobs.c.id == job_id))).first()
        return job_from_row(row) if row else None

    async def get_for_document(self, document_id: uuid.UUID) -> IngestionJob | None:
        row = (
            await self.session.execute(select(jobs).where(jobs.c.document_id == document_id))
        ).first()
        return job_from_row(row) if row else None

    async def lock(self, job_id: uuid.UUID) -> IngestionJob | None:
        row = (
            await self.session.execute(select(jobs).where(jobs.c.id == job_id).with_for_update())
        ).first()
        return job_from_row(row) if row else None

    async def lock_for_document(self, document_id: uuid.UUID) -> IngestionJob | None:
        row = (
            await self.session.execute(
                select(jobs).where(jobs.c.document_id == document_id).with_for_update()
            )
        ).first()
        return job_from_row(row) if row else None

    async def save(self, job: IngestionJob) -> None:
        await self.session.execute(
            update(jobs).where(jobs.c.id == job.id).values(**_job_values(job))
        )

    async def claim(
        self, *, batch_size: int, worker_id: str, lease_seconds: float, now: datetime
    ) -> list[ClaimedJob]:
        rows = await self.session.execute(
            _CLAIM_SQL,
            {
                "now": now,
                "batch_size": batch_size,
                "processing": IngestionStatus.PROCESSING.value,
                "stage": Stage.CLAIMED.value,
                "worker_id": worker_id,
                "locked_until": now + timedelta(seconds=lease_seconds),
            },
        )
        claimed = sorted(rows, key=lambda r: r.created_at)
        return [
            ClaimedJob(r.id, r.document_id, r.attempts, r.max_attempts, worker_id) for r in claimed
        ]

    async def renew_leases(
        self, claims: Sequence[ClaimedJob], lease_seconds: float, now: datetime
    ) -> int:
        total = 0
        by_token: dict[str, list[uuid.UUID]] = {}
        for c in claims:
            by_token.setdefault(c.lease_token, []).append(c.job_id)
        for token, ids in by_token.items():
            result = await self.session.execute(
                _RENEW_SQL,
                {
                    "ids": ids,
                    "worker_id": token,
                    "processing": IngestionStatus.PROCESSING.value,
                    "locked_until": now + timedelta(seconds=lease_seconds),
                    "now": now,
                },
            )
            total += int(getattr(result, "rowcount", 0) or 0)
        return total

    async def set_stage(self, claims: Sequence[ClaimedJob], stage: Stage, now: datetime) -> None:
        if not claims:
            return
        conditions = [
            and_(jobs.c.id == c.job_id, jobs.c.locked_by == c.lease_token) for c in claims
        ]
        await self.session.execute(
            update(jobs)
            .where(or_(*conditions), jobs.c.status == IngestionStatus.PROCESSING)
            .values(stage=stage.value, updated_at=now)
        )

    async def expired(self, now: datetime, limit: int) -> list[IngestionJob]:
        rows = await self.session.execute(
            _EXPIRED_SQL,
            {"processing": IngestionStatus.PROCESSING.value, "now": now, "limit": limit},
        )
        return [job_from_row(r) for r in rows]

    async def count_ready(self, now: datetime) -> int:
        return int(
            (
                await self.session.execute(
                    text(
                        "SELECT count(*) FROM ai.ingestion_queue "
                        "WHERE status = CAST('PENDING' AS ai.ingestionstatus) "
                        "AND (next_attempt_at IS NULL OR next_attempt_at <= :now)"
                    ),
                    {"now": now},
                )
            ).scalar_one()
        )

    async def counts_by_status(self) -> Mapping[IngestionStatus, int]:
        rows = await self.session.execute(
            select(jobs.c.status, func.count()).group_by(jobs.c.status)
        )
        counts = dict.fromkeys(IngestionStatus, 0)
        for status, n in rows:
            counts[IngestionStatus(status)] = int(n)
        return counts

    async def oldest_pending_created_at(self) -> datetime | None:
        value = (
            await self.session.execute(
                text(
                    "SELECT min(created_at) FROM ai.ingestion_queue "
                    "WHERE status = CAST('PENDING' AS ai.ingestionstatus)"
                )
            )
        ).scalar_one_or_none()
        return value if isinstance(value, datetime) else None

    async def list(
        self, status: IngestionStatus | None, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[IngestionJob]:
        stmt = select(jobs)
        if status is not None:
            stmt = stmt.where(jobs.c.status == status)
        if after is not None:
            stmt = stmt.where(tuple_(jobs.c.created_at, jobs.c.id) < tuple_(*after))
        stmt = stmt.order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit)
        return [job_from_row(r) for r in await self.session.execute(stmt)]


# -- search ------------------------------------------------------------------------------
#
# pgvector 0.6 (the embedded server's) has no iterative index scan: an HNSW scan yields
# at most hnsw.ef_search candidates and a WHERE clause filters them afterwards, so a
# narrow filter can starve the result. The vector search therefore widens ef_search
# step by step and, when a filter still leaves fewer than `limit` hits, finishes with
# an exact scan of the filtered chunks (index scans off for that statement only).

_HIT_COLUMNS = """
    c.id AS chunk_id, c.document_id, d.filename, d.collection, c.position, c.heading,
    c.text, c.page_start, c.page_end
"""
_EF_SEARCH_STEPS = (100, 400, 1000)


def _filter_sql(flt: SearchFilter, params: dict[str, Any]) -> str:
    clauses = ["c.model_name = :model"]
    if flt.collection:
        clauses.append("d.collection = :collection")
        params["collection"] = flt.collection
    if flt.document_ids:
        clauses.append("c.document_id = ANY(:document_ids)")
        params["document_ids"] = list(flt.document_ids)
    if flt.metadata:
        clauses.append("d.metadata @> CAST(:metadata AS jsonb)")
        params["metadata"] = orjson.dumps(dict(flt.metadata)).decode()
    return " AND ".join(clauses)


def _hit(row: Row[Any], score: float, **ranks: int) -> SearchHit:
    return SearchHit(
        chunk_id=row.chunk_id,
        document_id=row.document_id,
        filename=row.filename,
        collection=row.collection,
        position=row.position,
        heading=row.heading,
        text=row.text,
        page_start=row.page_start,
        page_end=row.page_end,
        score=score,
        **ranks,
    )


class SqlAlchemyChunkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def search_by_vector(
        self, vector: Sequence[float], model_name: str, flt: SearchFilter, limit: int
    ) -> list[SearchHit]:
        params: dict[str, Any] = {
            "model": model_name,
            "query": "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]",
            "limit": limit,
        }
        where = _filter_sql(flt, params)
        sql = text(
            f"""
            SELECT {_HIT_COLUMNS}, c.embedding <=> CAST(:query AS vector) AS distance
            FROM ai.chunks c JOIN ai.documents d ON d.id = c.document_id
            WHERE {where}
            ORDER BY c.embedding <=> CAST(:query AS vector)
            LIMIT :limit
            """  # noqa: S608 - the WHERE is built from fixed clauses; values are bound
        )
        rows: list[Row[Any]] = []
        for ef in _EF_SEARCH_STEPS:
            await self.session.execute(
                text("SELECT set_config('hnsw.ef_search', :ef, true)"),
                {"ef": str(max(ef, limit))},
            )
            rows = list(await self.session.execute(sql, params))
            if len(rows) >= limit or not flt.narrows:
                break
        else:
            # still short under a filter: exact distances over the filtered chunks
            await self.session.execute(text("SELECT set_config('enable_indexscan', 'off', true)"))
            rows = list(await self.session.execute(sql, params))
            await self.session.execute(text("SELECT set_config('enable_indexscan', 'on', true)"))
        return [
            _hit(r, 1.0 - float(r.distance), vector_rank=i) for i, r in enumerate(rows, start=1)
        ]

    async def search_by_keywords(
        self, text_query: str, model_name: str, flt: SearchFilter, limit: int
    ) -> list[SearchHit]:
        params: dict[str, Any] = {
            "model": model_name,
            "text": text_query,
            "limit": limit,
            "from": UNACCENT_FROM,
            "to": UNACCENT_TO,
        }
        where = _filter_sql(flt, params)
        # any of the words (questions rarely share all their words with the answer),
        # ranked by how many of the query's terms a chunk holds, then by ts_rank_cd.
        # plainto_tsquery stems and drops stop words; its ANDs become ORs.
        sql = text(
            f"""
            WITH q AS (
                SELECT replace(plainto_tsquery('{TEXT_SEARCH_CONFIG}', t.folded)::text, '&', '|')
                           ::tsquery AS query,
                       tsvector_to_array(to_tsvector('{TEXT_SEARCH_CONFIG}', t.folded)) AS terms
                FROM (SELECT translate(:text, :from, :to) AS folded) AS t
            )
            SELECT {_HIT_COLUMNS}, ts_rank_cd(c.search_vector, q.query, 1) AS rank,
                   (SELECT count(*) FROM unnest(q.terms) AS term
                    WHERE c.search_vector @@ CAST(quote_literal(term) AS tsquery)) AS matched,
                   cardinality(q.terms) AS terms
            FROM q, ai.chunks c JOIN ai.documents d ON d.id = c.document_id
            WHERE c.search_vector @@ q.query AND {where}
            ORDER BY matched DESC, rank DESC, c.id
            LIMIT :limit
            """  # noqa: S608 - fixed clauses; values are bound
        )
        rows = await self.session.execute(sql, params)
        return [
            replace(
                _hit(r, float(r.rank), keyword_rank=i),
                coverage=r.matched / r.terms if r.terms else 0.0,
            )
            for i, r in enumerate(rows, start=1)
        ]

    async def replace(self, document_id: uuid.UUID, new_chunks: Sequence[Chunk]) -> None:
        await self.session.execute(delete(chunks).where(chunks.c.document_id == document_id))
        if not new_chunks:
            return
        await self.session.execute(
            insert(chunks),
            [
                {
                    "document_id": document_id,
                    "position": c.position,
                    "text": c.text,
                    "heading": c.heading,
                    "token_count": c.token_count,
                    "page_start": c.page_start,
                    "page_end": c.page_end,
                    "model_name": c.model_name,
                    "embedding_dim": c.embedding_dim,
                    "embedding": c.embedding,
                }
                for c in new_chunks
            ],
        )

    async def count(self, document_id: uuid.UUID) -> int:
        return int(
            (
                await self.session.execute(
                    select(func.count())
                    .select_from(chunks)
                    .where(chunks.c.document_id == document_id)
                )
            ).scalar_one()
        )

    async def models(self) -> Mapping[tuple[str, int], int]:
        rows = await self.session.execute(
            select(chunks.c.model_name, chunks.c.embedding_dim, func.count()).group_by(
                chunks.c.model_name, chunks.c.embedding_dim
            )
        )
        return {(name, int(dim)): int(n) for name, dim, n in rows}


def api_key_from_row(row: Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        secret_hash=row.secret_hash,
        scopes=frozenset(Scope(s) for s in row.scopes),
        created_at=row.created_at,
        rate_limit_per_minute=row.rate_limit_per_minute,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


class SqlAlchemyApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, key: ApiKey) -> None:
        await self.session.execute(
            insert(api_keys).values(
                id=key.id,
                name=key.name,
                prefix=key.prefix,
                secret_hash=key.secret_hash,
                scopes=sorted(s.value for s in key.scopes),
                rate_limit_per_minute=key.rate_limit_per_minute,
                created_at=key.created_at,
            )
        )

    async def get_by_prefix(self, prefix: str) -> ApiKey | None:
        row = (
            await self.session.execute(select(api_keys).where(api_keys.c.prefix == prefix))
        ).first()
        return api_key_from_row(row) if row else None

    async def list(self) -> list[ApiKey]:
        rows = await self.session.execute(select(api_keys).order_by(api_keys.c.created_at))
        return [api_key_from_row(r) for r in rows]

    async def revoke(self, key_id: uuid.UUID, now: datetime) -> bool:
        result = await self.session.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
            .returning(api_keys.c.id)
        )
        return result.scalar_one_or_none() is not None

    async def touch(self, key_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=now)
        )


class SqlAlchemyIdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, client_id: str, key: str) -> IdempotencyRecord | None:
        row = (
            await self.session.execute(
                select(idempotency_keys).where(
                    idempotency_keys.c.client_id == client_id, idempotency_keys.c.key == key
                )
            )
        ).first()
        if row is None:
            return None
        return IdempotencyRecord(row.client_id, row.key, row.request_fingerprint, row.document_id)

    async def add(self, record: IdempotencyRecord) -> bool:
        result = await self.session.execute(
            pg_insert(idempotency_keys)
            .values(
                client_id=record.client_id,
                key=record.key,
                request_fingerprint=record.request_fingerprint,
                document_id=record.document_id,
            )
            .on_conflict_do_nothing()
            .returning(idempotency_keys.c.key)
        )
        return result.scalar_one_or_none() is not None

    async def purge_older_than(self, when: datetime) -> int:
        result = await self.session.execute(
            delete(idempotency_keys).where(idempotency_keys.c.created_at < when)
        )
        return int(getattr(result, "rowcount", 0) or 0)
