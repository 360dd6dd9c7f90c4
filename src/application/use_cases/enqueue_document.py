"""EnqueueDocument: validate, store document + raw bytes + PENDING job in one
transaction, then ring the doorbell. The API's only write path for new content.

Identity and deduplication (domain/versions.py, docs/decisions/0011-versions.md):
- with a ``source_key``: new bytes under the key are its next version; the same bytes
  as its latest version are that version (200, no job);
- without one: the same bytes as a version in the collection that was uploaded
  without a key and is not superseded are that version; new bytes are a new document
  keyed by their hash (the worker moves a legal act to its norm's key).
A deduplicated upload never drops the caller's metadata: what it sends is merged into
the existing version (its keys win) and the answer says so.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from application.ports import Clock, IdempotencyRecord, JobQueue, SubmitOutcome, UnitOfWork
from domain.access import EVERYTHING, Access
from domain.detection import detect
from domain.errors import Conflict, DocumentTooLarge, IdempotencyKeyReused, InvalidInput
from domain.legal import NORM_METADATA_KEYS
from domain.model import Document, IngestionJob, validate_batch, validate_collection
from domain.versions import KeyOrigin, content_key, validate_source_key

_MISSING = object()

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
    source_key: str | None = None  # the document's identity in its collection
    batch: str | None = None  # the client's ingest batch label (watch it as one)
    access: Access = EVERYTHING  # the collections the caller's key reaches


@dataclass(frozen=True)
class EnqueueResult:
    document: Document
    job: IngestionJob
    created: bool  # False: the same content is already the latest version of this key
    replayed: bool = False  # answered from an earlier request with the same Idempotency-Key
    metadata_updated: bool = False  # deduplicated, and the caller's metadata merged in


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    max_metadata_bytes: int = 16 * 1024


# integers every JSON client reads exactly (JavaScript's Number.MAX_SAFE_INTEGER)
MAX_SAFE_INTEGER = 2**53 - 1


def _check_values(value: Any) -> None:
    """Metadata is stored exactly or refused: never a NaN turned into null, a big
    integer rounded to a float, or anything else changed on the way in."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise InvalidInput(
                f"metadata holds the integer {str(value)[:40]}, beyond ±{MAX_SAFE_INTEGER} "
                "(2^53 - 1), which not every client reads exactly; send it as a string",
                field="metadata",
            )
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(
                "metadata holds NaN or Infinity, which JSON does not allow", field="metadata"
            )
        return
    if isinstance(value, Mapping):
        for item in value.values():
            _check_values(item)
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_values(item)


def validate_metadata(metadata: Mapping[str, Any], max_bytes: int) -> dict[str, Any]:
    if not isinstance(metadata, Mapping):
        raise InvalidInput("metadata must be a JSON object", field="metadata")
    _check_values(metadata)
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


_HASH_INLINE_BYTES = 1024 * 1024


async def _sha256(data: bytes) -> str:
    """Large files are hashed in a thread (hashlib lets go of the GIL): ~0.7 ms a MB that
    would otherwise hold up every other request of the process."""
    if len(data) <= _HASH_INLINE_BYTES:
        return hashlib.sha256(data).hexdigest()
    return await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())


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
        collection = validate_collection(cmd.collection or cmd.access.default_collection(""))
        cmd.access.require(collection)  # versions and duplicates are found only in it
        metadata = validate_metadata(cmd.metadata, self.limits.max_metadata_bytes)
        source_key = validate_source_key(cmd.source_key)
        batch = validate_batch(cmd.batch)
        detection = detect(cmd.data, cmd.filename, cmd.declared_type)
        sha256 = await _sha256(cmd.data)
        now = self.clock.now()
        key = source_key or content_key(sha256)
        fingerprint = _fingerprint(
            collection, sha256, detection.document_type.value, metadata, source_key
        )
        document = Document(
            id=uuid.uuid4(),
            collection=collection,
            filename=detection.filename,
            content_type=detection.document_type,
            size_bytes=len(cmd.data),
            sha256=sha256,
            metadata=metadata,
            created_at=now,
            source_key=key,
            key_origin=KeyOrigin.CLIENT if source_key else KeyOrigin.CONTENT,
            batch=batch,
        )
        job = IngestionJob.new(document.id, now, self.max_attempts)
        # a new version under a client key, sent without metadata, keeps what people
        # said of the document; what the worker finds in the text (the norm's
        # identity) is found again
        inherit = NORM_METADATA_KEYS if source_key is not None and not metadata else None
        async with uow:
            if cmd.idempotency_key:
                replay = await self._replay(cmd, fingerprint, uow)
                if replay is not None:
                    return replay
            else:
                # the upload is one statement (lock, lookups, inserts): its own
                # transaction, without BEGIN and COMMIT round trips
                await uow.autocommit()
            submitted = await uow.documents.submit(document, cmd.data, job, inherit)
            if submitted.outcome is SubmitOutcome.TAKEN:  # the key's lock prevents it
                raise Conflict(f"version {submitted.version} of {key!r} was taken; retry")
            if submitted.outcome is SubmitOutcome.CREATED:
                stored = replace(
                    document, version=submitted.version, metadata=submitted.metadata or {}
                )
                result = EnqueueResult(stored, job, created=True)
            else:
                assert submitted.document_id is not None
                result = await self._existing(submitted.document_id, metadata, uow)
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

    async def _existing(
        self, document_id: uuid.UUID, metadata: dict[str, Any], uow: UnitOfWork
    ) -> EnqueueResult:
        doc = await uow.documents.get(document_id)
        job = await uow.jobs.get_for_document(document_id)
        if doc is None or job is None:  # only a deletion in flight differs
            raise Conflict("the same document is being deleted; try again")
        updated = False
        if any(doc.metadata.get(k, _MISSING) != v for k, v in metadata.items()):
            validate_metadata({**doc.metadata, **metadata}, self.limits.max_metadata_bytes)
            # merged by the database: a change made since the read above is kept
            merged = await uow.documents.merge_metadata(doc.id, metadata)
            if merged is None:
                raise Conflict("the same document is being deleted; try again")
            doc.metadata = merged
            updated = True
        return EnqueueResult(doc, job, created=False, metadata_updated=updated)

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


def _fingerprint(
    collection: str, sha256: str, doc_type: str, metadata: dict[str, Any], key: str | None
) -> str:
    parts: list[Any] = [collection, sha256, doc_type, metadata]
    if key is not None:
        parts.append(key)
    body = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).hexdigest()
