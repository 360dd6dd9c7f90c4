"""The REST API for Python callers: `Client` (sync) and `AsyncClient` (async) over
httpx, with the same methods and typed answers (`cogep_client.models`).

Errors come back as `ApiError` (the problem+json's status, code and reason). 429 and
503 are retried, waiting what `Retry-After` asks (at most `max_wait_s` each time, at
most `retries` times); so are connection failures of calls that are safe to repeat
(reads, searches, uploads that carry an Idempotency-Key). Each method describes its
call once (`calls`); the two clients only send it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx

from cogep_client.calls import BaseClient, Call, Calls, Retry, answer_of, read_file
from cogep_client.models import (
    Changes,
    ChunkPage,
    Collection,
    Document,
    DocumentPage,
    Job,
    JobPage,
    Reembedding,
    SearchResult,
    Stats,
    Versions,
)

T = TypeVar("T")


class AsyncClient(BaseClient):
    """`async with AsyncClient(url, key) as api: hits = await api.search("férias")`."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 60.0,
        retry: Retry | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, api_key, timeout_s, retry or Retry())
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=self.headers, timeout=self.timeout, transport=transport
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = await self._http.request(call.method, call.path, **self._request(call))
            except httpx.TransportError:
                if not self._again(call, None, attempt):
                    raise
                response = None
            if response is not None and not self._again(call, response, attempt):
                return answer_of(call, response)
            await asyncio.sleep(self.retry.wait_s(response, attempt))
            attempt += 1

    # -- documents ----------------------------------------------------------------------

    async def upload(
        self,
        file: Path | str | bytes,
        filename: str | None = None,
        *,
        collection: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        source_key: str | None = None,
        batch: str | None = None,
        content_type: str | None = None,
        idempotency_key: str | None = None,
    ) -> Document:
        """Upload a file (a path, or bytes with `filename`)."""
        content, name = (
            (file, filename or "document") if isinstance(file, bytes) else read_file(file)
        )
        return await self._send(
            Calls.upload(
                content,
                filename or name,
                collection=collection,
                metadata=metadata,
                source_key=source_key,
                batch=batch,
                content_type=content_type,
                idempotency_key=idempotency_key,
            )
        )

    async def submit_text(
        self,
        text: str,
        *,
        format: str = "text",
        filename: str | None = None,
        collection: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        source_key: str | None = None,
        batch: str | None = None,
        idempotency_key: str | None = None,
    ) -> Document:
        return await self._send(
            Calls.submit_text(
                text,
                format=format,
                filename=filename,
                collection=collection,
                metadata=metadata,
                source_key=source_key,
                batch=batch,
                idempotency_key=idempotency_key,
            )
        )

    async def document(self, document_id: uuid.UUID | str) -> Document:
        return await self._send(Calls.document(document_id))

    async def documents(
        self,
        *,
        collection: str | None = None,
        status: str | None = None,
        source_key: str | None = None,
        batch: str | None = None,
        include_superseded: bool = False,
        limit: int = 50,
        cursor: str | None = None,
        ids: list[str] | None = None,
    ) -> DocumentPage:
        """One page of the listing (newest first); `iter_documents` walks them all."""
        return await self._send(
            Calls.documents(
                collection=collection,
                status=status,
                source_key=source_key,
                batch=batch,
                include_superseded=include_superseded,
                limit=limit,
                cursor=cursor,
                ids=ids,
            )
        )

    async def iter_documents(self, **filters: Any) -> AsyncIterator[Document]:
        cursor: str | None = None
        while True:
            page = await self.documents(**filters, cursor=cursor)
            for item in page.items:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def versions(self, document_id: uuid.UUID | str) -> Versions:
        return await self._send(Calls.versions(document_id))

    async def chunks(
        self,
        document_id: uuid.UUID | str,
        *,
        after: int = -1,
        limit: int = 20,
        expand: str = "none",
    ) -> ChunkPage:
        """The document's chunks in order after position `after`; `expand="article"`
        adds each one's whole article (`expanded`)."""
        return await self._send(Calls.chunks(document_id, after, limit, expand))

    async def patch_metadata(
        self, document_id: uuid.UUID | str, patch: Mapping[str, Any]
    ) -> Document:
        return await self._send(Calls.patch_metadata(document_id, patch))

    async def cancel(self, document_id: uuid.UUID | str) -> Document:
        return await self._send(Calls.cancel(document_id))

    async def delete(self, document_id: uuid.UUID | str, *, all_versions: bool = False) -> None:
        await self._send(Calls.delete(document_id, all_versions))

    async def reprocess(self, document_id: uuid.UUID | str) -> Job:
        return await self._send(Calls.reprocess(document_id))

    # -- jobs, search, changes, collections, stats --------------------------------------

    async def jobs(
        self, *, status: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> JobPage:
        return await self._send(Calls.jobs(status, limit, cursor))

    async def iter_jobs(self, *, status: str | None = None, limit: int = 200) -> AsyncIterator[Job]:
        cursor: str | None = None
        while True:
            page = await self.jobs(status=status, limit=limit, cursor=cursor)
            for item in page.items:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def job(self, job_id: uuid.UUID | str) -> Job:
        return await self._send(Calls.job(job_id))

    async def retry_job(self, job_id: uuid.UUID | str) -> Job:
        return await self._send(Calls.retry_job(job_id))

    async def search(
        self,
        query: str,
        *,
        top_k: int = 10,
        mode: str = "hybrid",
        collection: str | None = None,
        document_ids: list[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        include_superseded: bool = False,
        expand: str = "none",
    ) -> SearchResult:
        return await self._send(
            Calls.search(
                query,
                top_k=top_k,
                mode=mode,
                collection=collection,
                document_ids=document_ids,
                metadata=metadata,
                include_superseded=include_superseded,
                expand=expand,
            )
        )

    async def changes(
        self,
        *,
        after: str | None = None,
        batch: str | None = None,
        collection: str | None = None,
        wait_s: float = 0.0,
        limit: int = 200,
    ) -> Changes:
        return await self._send(Calls.changes(after, batch, collection, wait_s, limit))

    async def collections(self) -> list[Collection]:
        return await self._send(Calls.collections())

    async def stats(self) -> Stats:
        return await self._send(Calls.stats())

    async def reembed(self, collection: str | None = None) -> Reembedding:
        """Re-embed the current chunk sets (of `collection`) into the configured model,
        in the background; their progress shows in `stats().chunks_by_model`."""
        return await self._send(Calls.reembed(collection))


class Client(BaseClient):
    """`with Client(url, key) as api: hits = api.search("férias")`: AsyncClient's methods,
    blocking."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 60.0,
        retry: Retry | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, api_key, timeout_s, retry or Retry())
        self._http = httpx.Client(
            base_url=self.base_url, headers=self.headers, timeout=self.timeout, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = self._http.request(call.method, call.path, **self._request(call))
            except httpx.TransportError:
                if not self._again(call, None, attempt):
                    raise
                response = None
            if response is not None and not self._again(call, response, attempt):
                return answer_of(call, response)
            time.sleep(self.retry.wait_s(response, attempt))
            attempt += 1

    def upload(
        self,
        file: Path | str | bytes,
        filename: str | None = None,
        *,
        collection: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        source_key: str | None = None,
        batch: str | None = None,
        content_type: str | None = None,
        idempotency_key: str | None = None,
    ) -> Document:
        """Upload a file (a path, or bytes with `filename`)."""
        content, name = (
            (file, filename or "document") if isinstance(file, bytes) else read_file(file)
        )
        return self._send(
            Calls.upload(
                content,
                filename or name,
                collection=collection,
                metadata=metadata,
                source_key=source_key,
                batch=batch,
                content_type=content_type,
                idempotency_key=idempotency_key,
            )
        )

    def submit_text(
        self,
        text: str,
        *,
        format: str = "text",
        filename: str | None = None,
        collection: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        source_key: str | None = None,
        batch: str | None = None,
        idempotency_key: str | None = None,
    ) -> Document:
        return self._send(
            Calls.submit_text(
                text,
                format=format,
                filename=filename,
                collection=collection,
                metadata=metadata,
                source_key=source_key,
                batch=batch,
                idempotency_key=idempotency_key,
            )
        )

    def document(self, document_id: uuid.UUID | str) -> Document:
        return self._send(Calls.document(document_id))

    def documents(
        self,
        *,
        collection: str | None = None,
        status: str | None = None,
        source_key: str | None = None,
        batch: str | None = None,
        include_superseded: bool = False,
        limit: int = 50,
        cursor: str | None = None,
        ids: list[str] | None = None,
    ) -> DocumentPage:
        return self._send(
            Calls.documents(
                collection=collection,
                status=status,
                source_key=source_key,
                batch=batch,
                include_superseded=include_superseded,
                limit=limit,
                cursor=cursor,
                ids=ids,
            )
        )

    def iter_documents(self, **filters: Any) -> Iterator[Document]:
        cursor: str | None = None
        while True:
            page = self.documents(**filters, cursor=cursor)
            yield from page.items
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def versions(self, document_id: uuid.UUID | str) -> Versions:
        return self._send(Calls.versions(document_id))

    def chunks(
        self,
        document_id: uuid.UUID | str,
        *,
        after: int = -1,
        limit: int = 20,
        expand: str = "none",
    ) -> ChunkPage:
        return self._send(Calls.chunks(document_id, after, limit, expand))

    def patch_metadata(self, document_id: uuid.UUID | str, patch: Mapping[str, Any]) -> Document:
        return self._send(Calls.patch_metadata(document_id, patch))

    def cancel(self, document_id: uuid.UUID | str) -> Document:
        return self._send(Calls.cancel(document_id))

    def delete(self, document_id: uuid.UUID | str, *, all_versions: bool = False) -> None:
        self._send(Calls.delete(document_id, all_versions))

    def reprocess(self, document_id: uuid.UUID | str) -> Job:
        return self._send(Calls.reprocess(document_id))

    def jobs(
        self, *, status: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> JobPage:
        return self._send(Calls.jobs(status, limit, cursor))

    def job(self, job_id: uuid.UUID | str) -> Job:
        return self._send(Calls.job(job_id))

    def retry_job(self, job_id: uuid.UUID | str) -> Job:
        return self._send(Calls.retry_job(job_id))

    def search(
        self,
        query: str,
        *,
        top_k: int = 10,
        mode: str = "hybrid",
        collection: str | None = None,
        document_ids: list[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        include_superseded: bool = False,
        expand: str = "none",
    ) -> SearchResult:
        return self._send(
            Calls.search(
                query,
                top_k=top_k,
                mode=mode,
                collection=collection,
                document_ids=document_ids,
                metadata=metadata,
                include_superseded=include_superseded,
                expand=expand,
            )
        )

    def changes(
        self,
        *,
        after: str | None = None,
        batch: str | None = None,
        collection: str | None = None,
        wait_s: float = 0.0,
        limit: int = 200,
    ) -> Changes:
        return self._send(Calls.changes(after, batch, collection, wait_s, limit))

    def collections(self) -> list[Collection]:
        return self._send(Calls.collections())

    def stats(self) -> Stats:
        return self._send(Calls.stats())

    def reembed(self, collection: str | None = None) -> Reembedding:
        """Re-embed the current chunk sets (of `collection`) into the configured model,
        in the background; their progress shows in `stats().chunks_by_model`."""
        return self._send(Calls.reembed(collection))
