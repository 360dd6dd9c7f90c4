"""Reading documents (status, listings, versions, chunks) and changing their metadata."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from application.ports import CollectionCount, DocumentFilter, DocumentView, UnitOfWork
from application.use_cases.enqueue_document import validate_metadata
from application.use_cases.search import with_articles
from domain.access import EVERYTHING, Access
from domain.errors import DocumentNotFound, InvalidInput
from domain.model import Document
from domain.search import SearchHit

MAX_VERSIONS_LISTED = 1000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7396 JSON merge patch: null removes a key, objects merge, the rest replaces."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping):
            current = out.get(key)
            out[key] = merge_patch(current if isinstance(current, Mapping) else {}, value)
        else:
            out[key] = value
    return out


async def _visible(document_id: uuid.UUID, uow: UnitOfWork, access: Access) -> Document:
    """The document, if it exists and the caller's key reaches its collection."""
    doc = await uow.documents.get(document_id)
    if doc is None:
        raise DocumentNotFound(f"no document {document_id}")
    access.check_document(doc.collection, document_id)
    return doc


class Documents:
    def __init__(self, max_metadata_bytes: int = 16 * 1024) -> None:
        self.max_metadata_bytes = max_metadata_bytes

    async def get(
        self, document_id: uuid.UUID, uow: UnitOfWork, access: Access = EVERYTHING
    ) -> DocumentView:
        async with uow:
            doc = await _visible(document_id, uow, access)
            return DocumentView(doc, await uow.jobs.get_for_document(document_id))

    async def listing(
        self, flt: DocumentFilter, uow: UnitOfWork, access: Access = EVERYTHING
    ) -> list[DocumentView]:
        if flt.collection is not None:
            access.require(flt.collection)
        if flt.source_key is not None and _CONTROL.search(flt.source_key):
            raise InvalidInput("source_key must not contain control characters", field="source_key")
        async with uow:
            return await uow.documents.list(replace(flt, within=access.within()))

    async def versions(
        self, document_id: uuid.UUID, uow: UnitOfWork, access: Access = EVERYTHING
    ) -> list[DocumentView]:
        """Every version under the document's key, newest first (with their jobs)."""
        async with uow:
            doc = await _visible(document_id, uow, access)
            return await uow.documents.list(
                DocumentFilter(
                    collection=doc.collection,
                    source_key=doc.source_key,
                    include_superseded=True,
                    limit=MAX_VERSIONS_LISTED,
                )
            )

    async def chunks(
        self,
        document_id: uuid.UUID,
        after_position: int,
        limit: int,
        uow: UnitOfWork,
        access: Access = EVERYTHING,
        whole_articles: bool = False,
    ) -> list[SearchHit]:
        """The document's chunks in order; `whole_articles` adds to each the whole
        article it belongs to (`expanded`), as search's expand does."""
        async with uow:
            await _visible(document_id, uow, access)
            hits = await uow.chunks.of_document(document_id, after_position, limit)
            if whole_articles:
                hits = await with_articles(hits, uow)
            return hits

    async def collections(
        self, uow: UnitOfWork, access: Access = EVERYTHING
    ) -> list[CollectionCount]:
        """The collections the caller reaches, with their documents and chunks."""
        async with uow:
            return await uow.documents.collections(access.within())

    async def update_metadata(
        self,
        document_id: uuid.UUID,
        patch: Mapping[str, Any],
        uow: UnitOfWork,
        access: Access = EVERYTHING,
    ) -> DocumentView:
        """Change metadata without reprocessing (a JSON merge patch); searches filter on
        the new values from the commit on."""
        if not isinstance(patch, Mapping):
            raise InvalidInput("metadata must be a JSON object", field="metadata")
        async with uow:
            doc = await uow.documents.lock(document_id)
            if doc is None:
                raise DocumentNotFound(f"no document {document_id}")
            access.check_document(doc.collection, document_id)
            merged = validate_metadata(merge_patch(doc.metadata, patch), self.max_metadata_bytes)
            await uow.documents.set_metadata(document_id, merged)
            doc.metadata = merged
            job = await uow.jobs.get_for_document(document_id)
            await uow.commit()
        return DocumentView(doc, job)
