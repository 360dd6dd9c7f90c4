"""Documents: their rows, raw bytes and listings."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import (
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.postgres.keyword_index import KeywordIndex
from adapters.postgres.rows import contents, document_from_row, documents, job_from_row, jobs
from application.ports import (
    BatchSummary,
    Change,
    CollectionCount,
    DocumentFilter,
    DocumentView,
    Submission,
    SubmitOutcome,
)
from domain.model import Document, IngestionJob, IngestionStatus

# The enqueue path's statements, built once: constructing Core statements with
# .values(...) on every request was a fifth of the API's CPU under load.
_INSERT_DOCUMENT = (
    pg_insert(documents)
    .on_conflict_do_nothing(index_elements=["collection", "source_key", "version"])
    .returning(documents.c.id)
)
# one lock per (collection, key), released at commit: version numbers and the current
# version of a key change only under it (64-bit hash; a collision only serialises)
_LOCK_KEY = text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))")
_VERSION_COLUMNS = (
    "source_key",
    "key_origin",
    "version",
    "is_current",
    "superseded_by",
    "superseded_at",
    "indexed_at",
)
# the document row and its bytes in one round trip; no bytes when the version is taken
_NEW_DOCUMENT_COLUMNS = (
    "id",
    "collection",
    "filename",
    "content_type",
    "size_bytes",
    "sha256",
    "metadata",
    "chunk_count",
    "source_key",
    "key_origin",
    "version",
    "is_current",
    "batch",
    "created_at",
    "updated_at",
)
_NEW_DOCUMENT = _INSERT_DOCUMENT.values(
    {c: bindparam(c, type_=documents.c[c].type) for c in _NEW_DOCUMENT_COLUMNS}
).cte("new_document")
_INSERT_DOCUMENT_AND_CONTENT = (
    insert(contents)
    .from_select(
        ["document_id", "data"],
        select(_NEW_DOCUMENT.c.id, bindparam("data", type_=contents.c.data.type)),
    )
    .returning(contents.c.document_id)
)
# a key's latest version
_LATEST_VERSION = (
    select(documents)
    .where(
        documents.c.collection == bindparam("collection"),
        documents.c.source_key == bindparam("source_key"),
    )
    .order_by(documents.c.version.desc())
    .limit(1)
)
# an upload's lock, lookups and inserts in one round trip (migration 0012)
# The upload's one statement, in the driver's own parameter style: no compilation and
# no per-parameter processing on SQLAlchemy's side (measured ~25 us of API CPU an
# upload, decision 0008), while errors, transactions and disconnects still go
# through SQLAlchemy. JSON crosses as text in both directions.
_SUBMIT = """
SELECT outcome, document_id, version, metadata::text FROM ai.submit_document(
    $1, $2, $3, $4, $5, $6, $7::text::jsonb, $8, $9, $10, $11, $12, $13, $14, $15, $16,
    $17, $18
)
"""
_MERGE_METADATA = (
    update(documents)
    .where(documents.c.id == bindparam("document_id"))
    .values(
        metadata=documents.c.metadata.op("||")(bindparam("merged", type_=JSONB)),
        updated_at=func.now(),
    )
    .returning(documents.c.metadata)
)


def _new_document(document: Document) -> dict[str, Any]:
    """The columns an upload writes, as both insert paths bind them (in
    ``ai.submit_document``'s parameter order: the upload's statement passes them by
    position)."""
    return {
        "id": document.id,
        "collection": document.collection,
        "filename": document.filename,
        "content_type": document.content_type.value,
        "size_bytes": document.size_bytes,
        "sha256": document.sha256,
        "metadata": document.metadata,
        "source_key": document.source_key,
        "key_origin": document.key_origin.value,
        "batch": document.batch,
        "created_at": document.created_at,
    }


_Changes = list[Change]  # spelled out here: inside the class `list` is a method


class SqlAlchemyDocumentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, document: Document, content: bytes) -> bool:
        params = {
            **_new_document(document),
            "chunk_count": document.chunk_count,
            "version": document.version,
            "is_current": document.is_current,
            "updated_at": document.created_at,
            "data": content,
        }
        result = await self.session.execute(_INSERT_DOCUMENT_AND_CONTENT, params)
        return result.scalar_one_or_none() is not None

    async def get(self, document_id: uuid.UUID) -> Document | None:
        row = (
            await self.session.execute(select(documents).where(documents.c.id == document_id))
        ).first()
        return document_from_row(row) if row else None

    async def lock(self, document_id: uuid.UUID) -> Document | None:
        # FOR NO KEY UPDATE: conflicts with other writers and DELETE, not with the key
        # share locks that inserting chunks takes on their document
        row = (
            await self.session.execute(
                select(documents)
                .where(documents.c.id == document_id)
                .with_for_update(key_share=True)  # FOR NO KEY UPDATE
            )
        ).first()
        return document_from_row(row) if row else None

    async def lock_keys(self, collection: str, keys: Sequence[str]) -> None:
        for key in sorted(set(keys)):
            await self.session.execute(_LOCK_KEY, {"k": f"{collection}\x1f{key}"})

    async def versions(self, collection: str, source_key: str) -> list[Document]:
        rows = await self.session.execute(
            select(documents)
            .where(documents.c.collection == collection, documents.c.source_key == source_key)
            .order_by(documents.c.created_at.desc(), documents.c.id.desc())
        )
        return [document_from_row(r) for r in rows]

    async def latest_version(self, collection: str, source_key: str) -> Document | None:
        params = {"collection": collection, "source_key": source_key}
        row = (await self.session.execute(_LATEST_VERSION, params)).first()
        return document_from_row(row) if row else None

    async def submit(
        self,
        document: Document,
        content: bytes,
        job: IngestionJob,
        inherit_except: frozenset[str] | None,
    ) -> Submission:
        if job.status is not IngestionStatus.PENDING or job.document_id != document.id:
            raise ValueError("an upload's job is a new PENDING job of its document")
        columns = _new_document(document)
        columns["metadata"] = orjson.dumps(document.metadata).decode()  # $7::text::jsonb
        params = (
            *columns.values(),
            content,
            *(job.id, job.stage.value, job.max_attempts, job.next_attempt_at, job.kind.value),
            sorted(inherit_except) if inherit_except is not None else None,
        )
        conn = await self.session.connection()
        outcome, document_id, version, metadata = tuple(
            (await conn.exec_driver_sql(_SUBMIT, params)).one()
        )
        return Submission(
            SubmitOutcome(outcome),
            document_id,
            version,
            orjson.loads(metadata) if metadata is not None else None,
        )

    async def save_versions(self, docs: Sequence[Document]) -> None:
        # demotions first: the database allows one current version per key at any time
        for doc in sorted(docs, key=lambda d: d.is_current):
            values: dict[str, Any] = {c: getattr(doc, c) for c in _VERSION_COLUMNS}
            values["key_origin"] = doc.key_origin.value
            await self.session.execute(
                update(documents)
                .where(documents.c.id == doc.id)
                .values(**values, updated_at=func.now())
            )

    async def merge_metadata(
        self, document_id: uuid.UUID, metadata: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        merged = await self.session.execute(
            _MERGE_METADATA, {"document_id": document_id, "merged": dict(metadata)}
        )
        value = merged.scalar_one_or_none()
        return dict(value) if value is not None else None

    async def set_metadata(self, document_id: uuid.UUID, metadata: Mapping[str, Any]) -> None:
        await self.session.execute(
            update(documents)
            .where(documents.c.id == document_id)
            .values(metadata=dict(metadata), updated_at=func.now())
        )

    async def get_many(self, document_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Document]:
        if not document_ids:
            return {}
        rows = await self.session.execute(
            select(documents).where(documents.c.id.in_(list(document_ids)))
        )
        return {r.id: document_from_row(r) for r in rows}

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

    async def record_extraction(
        self, document_id: uuid.UUID, report: Mapping[str, Any], found: Mapping[str, Any]
    ) -> None:
        await self.session.execute(
            update(documents)
            .where(documents.c.id == document_id)
            .values(
                extraction=dict(report),
                # the uploader's keys win: found || metadata
                metadata=literal(dict(found), JSONB).op("||")(documents.c.metadata),
                updated_at=func.now(),
            )
        )

    async def delete(self, document_id: uuid.UUID) -> bool:
        # contents, job and chunks go with it (ON DELETE CASCADE), in this transaction,
        # and the chunks' BM25 statistics are subtracted
        index = KeywordIndex(self.session)
        before = await index.counts(document_id)
        result = await self.session.execute(
            delete(documents).where(documents.c.id == document_id).returning(documents.c.id)
        )
        await index.apply(document_id, before)
        return result.scalar_one_or_none() is not None

    async def list(self, flt: DocumentFilter) -> list[DocumentView]:
        job_cols = [c.label(f"job_{c.name}") for c in jobs.c]
        stmt = select(documents, *job_cols).outerjoin(jobs, jobs.c.document_id == documents.c.id)
        if flt.collection is not None:
            stmt = stmt.where(documents.c.collection == flt.collection)
        if flt.within is not None:
            stmt = stmt.where(documents.c.collection.in_(flt.within))
        if flt.status is not None:
            stmt = stmt.where(jobs.c.status == flt.status)
        if flt.source_key is not None:
            stmt = stmt.where(documents.c.source_key == flt.source_key)
        if not flt.include_superseded:
            stmt = stmt.where(documents.c.superseded_at.is_(None))
        if flt.ids:
            stmt = stmt.where(documents.c.id.in_(list(flt.ids)))
        if flt.batch is not None:
            stmt = stmt.where(documents.c.batch == flt.batch)
        if flt.metadata:  # JSONB containment, served by the GIN index on metadata
            stmt = stmt.where(documents.c.metadata.contains(dict(flt.metadata)))
        if flt.after is not None:
            stmt = stmt.where(tuple_(documents.c.created_at, documents.c.id) < tuple_(*flt.after))
        stmt = stmt.order_by(documents.c.created_at.desc(), documents.c.id.desc()).limit(flt.limit)
        views = []
        for row in await self.session.execute(stmt):
            m = row._mapping
            job = job_from_row(m, prefix="job_") if m["job_id"] is not None else None
            views.append(DocumentView(document_from_row(m), job))
        return views

    async def collections(self, within: tuple[str, ...] | None) -> builtins.list[CollectionCount]:
        stmt = (
            select(
                documents.c.collection,
                func.count().filter(documents.c.superseded_at.is_(None)),
                func.coalesce(func.sum(documents.c.chunk_count).filter(documents.c.is_current), 0),
            )
            .group_by(documents.c.collection)
            .order_by(documents.c.collection)
        )
        if within is not None:
            stmt = stmt.where(documents.c.collection.in_(within))
        return [
            CollectionCount(name, int(docs), int(chunks))
            for name, docs, chunks in await self.session.execute(stmt)
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
    ) -> _Changes:
        job_cols = [c.label(f"job_{c.name}") for c in jobs.c]
        stmt = (
            select(documents, *job_cols)
            .join(jobs, jobs.c.document_id == documents.c.id)
            .where(jobs.c.changed_at <= func.clock_timestamp() - timedelta(seconds=settle_s))
        )
        if after is not None:
            stmt = stmt.where(tuple_(jobs.c.changed_at, jobs.c.id) > tuple_(*after))
        if batch is not None:
            stmt = stmt.where(documents.c.batch == batch)
        if collection is not None:
            stmt = stmt.where(documents.c.collection == collection)
        if within is not None:
            stmt = stmt.where(documents.c.collection.in_(within))
        stmt = stmt.order_by(jobs.c.changed_at, jobs.c.id).limit(limit)
        out = []
        for row in await self.session.execute(stmt):
            m = row._mapping
            out.append(
                Change(
                    DocumentView(document_from_row(m), job_from_row(m, prefix="job_")),
                    m["job_changed_at"],
                )
            )
        return out

    async def batch_summary(
        self, batch: str, within: tuple[str, ...] | None = None
    ) -> BatchSummary:
        stmt = (
            select(
                jobs.c.status,
                func.count(),
                func.coalesce(func.sum(documents.c.chunk_count), 0),
            )
            .join(jobs, jobs.c.document_id == documents.c.id)
            .where(documents.c.batch == batch)
            .group_by(jobs.c.status)
        )
        if within is not None:
            stmt = stmt.where(documents.c.collection.in_(within))
        rows = await self.session.execute(stmt)
        by_status: dict[IngestionStatus, int] = {}
        chunks = 0
        for status, n, chunk_sum in rows:
            by_status[IngestionStatus(status)] = int(n)
            if IngestionStatus(status) is IngestionStatus.COMPLETED:
                chunks = int(chunk_sum)
        return BatchSummary(sum(by_status.values()), by_status, chunks)
