"""EnqueueDocument: validate, store document + raw bytes + PENDING job in one
transaction, then ring the doorbell. The API's only write path."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from application.ports import Clock, IdempotencyRecord, JobQueue, UnitOfWork
from domain.detection import detect
from domain.errors import DocumentTooLarge, IdempotencyKeyReused, InvalidInput
from domain.model import Document, IngestionJob, validate_collection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EnqueueDocument:
    data: bytes
    filename: str | None
    declared_type: str | None = None
    collection: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    client_id: str = "anonymous"  # the API key's id: Idempotency-Keys are per client
    idempotency_key: str | None = None


@dataclass(frozen=True)
class EnqueueResult:
    document: Document
    job: IngestionJob
    created: bool  # False: the same content was already in this collection
    replayed: bool = False  # answered from an earlier request with the same Idempotency-Key


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    max_metadata_bytes: int = 16 * 1024


def validate_metadata(metadata: Mapping[str, Any], max_bytes: int) -> dict[str, Any]:
    if not isinstance(metadata, Mapping):
        raise InvalidInput("metadata must be a JSON object", field="metadata")
    try:
        encoded = orjson.dumps(dict(metadata))
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise InvalidInput(f"metadata is not valid JSON: {exc}", field="metadata") from exc
    if len(encoded) > max_bytes:
        raise InvalidInput(
            f"metadata is {len(encoded)} bytes; the limit is {max_bytes}", field="metadata"
        )
    if "\\u0000" in encoded.decode():
        raise InvalidInput("metadata must not contain NUL characters", field="metadata")
    return dict(metadata)


class EnqueueDocumentHandler:
    def __init__(
        self, queue: JobQueue, clock: Clock, limits: UploadLimits, max_attempts: int
    ) -> None:
        self.queue = queue
        self.clock = clock
        self.limits = limits
        self.max_attempts = max_attempts

    async def __call__(self, cmd: EnqueueDocument, uow: UnitOfWork) -> EnqueueResult:
        if len(cmd.data) > self.limits.max_bytes:
            raise DocumentTooLarge(
                f"the file has {len(cmd.data)} bytes; the limit is {self.limits.max_bytes}"
            )
        collection = validate_collection(cmd.collection)
        metadata = validate_metadata(cmd.metadata, self.limits.max_metadata_bytes)
        detection = detect(cmd.data, cmd.filename, cmd.declared_type)
        sha256 = hashlib.sha256(cmd.data).hexdigest()
        now = self.clock.now()
        document = Document(
            id=uuid.uuid4(),
            collection=collection,
            filename=detection.filename,
            content_type=detection.document_type,
            size_bytes=len(cmd.data),
            sha256=sha256,
            metadata=metadata,
            created_at=now,
        )
        job = IngestionJob.new(document.id, now, self.max_attempts)
        fingerprint = _fingerprint(collection, sha256, detection.document_type.value, metadata)
        async with uow:
            if cmd.idempotency_key:
                replay = await self._replay(cmd, fingerprint, uow)
                if replay is not None:
                    return replay
            created = await uow.documents.add(document, cmd.data)
            if created:
                await uow.jobs.add(job)
                result = EnqueueResult(document, job, created=True)
            else:
                existing = await uow.documents.get_by_hash(collection, sha256)
                existing_job = (
                    await uow.jobs.get_for_document(existing.id) if existing is not None else None
                )
                if existing is None or existing_job is None:  # deleted in between: rare
                    raise InvalidInput("the same document is being deleted; try again")
                result = EnqueueResult(existing, existing_job, created=False)
            if cmd.idempotency_key:
                record = IdempotencyRecord(
                    cmd.client_id, cmd.idempotency_key, fingerprint, result.document.id
                )
                if not await uow.idempotency.add(record):  # a concurrent twin won the key
                    replay = await self._replay(cmd, fingerprint, uow)
                    if replay is None:
                        raise IdempotencyKeyReused("the Idempotency-Key is being used; retry")
                    return replay
            await uow.commit()
        if result.created:
            # The row is the truth; the doorbell only saves the sweeper a few seconds.
            await self.queue.ring()
        return result

    async def _replay(
        self, cmd: EnqueueDocument, fingerprint: str, uow: UnitOfWork
    ) -> EnqueueResult | None:
        assert cmd.idempotency_key is not None
        record = await uow.idempotency.get(cmd.client_id, cmd.idempotency_key)
        if record is None:
            return None
        if record.request_fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used with a different request"
            )
        doc = await uow.documents.get(record.document_id)
        job = await uow.jobs.get_for_document(record.document_id)
        if doc is None or job is None:
            raise IdempotencyKeyReused("the document of this Idempotency-Key was deleted")
        return EnqueueResult(doc, job, created=False, replayed=True)


def _fingerprint(collection: str, sha256: str, doc_type: str, metadata: dict[str, Any]) -> str:
    body = orjson.dumps([collection, sha256, doc_type, metadata], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).hexdigest()
