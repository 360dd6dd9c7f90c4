"""The REST API for Python callers: `Client` (sync) and `AsyncClient` (async) over
httpx, with the same methods and typed answers (`cogep_client.models`).

Errors come back as `ApiError` (the problem+json's status, code and reason). 429 and
503 are retried, waiting what `Retry-After` asks (at most `max_wait_s` each time, at
most `retries` times); so are connection failures of calls that are safe to repeat
(reads, searches, uploads that carry an Idempotency-Key). Each method describes its
call once (`_calls`); the two clients only send it.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel

from cogep_client.models import (
    Changes,
    ChunkPage,
    Collection,
    Document,
    DocumentPage,
    Job,
    JobPage,
    SearchResult,
    Stats,
    Versions,
)

T = TypeVar("T")
_RETRIED_STATUS = frozenset({429, 503})
_SAFE_METHODS = frozenset({"GET", "HEAD", "DELETE"})


class ApiError(RuntimeError):
    """The API refused the call: `status`, the problem's `code` and `detail`."""

    def __init__(self, status: int, detail: str, code: str | None = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.code = code

    @classmethod
    def of(cls, response: httpx.Response) -> ApiError:
        try:
            body = response.json()
        except ValueError:
            return cls(response.status_code, response.text[:300] or response.reason_phrase)
        if isinstance(body, dict):
            return cls(response.status_code, str(body.get("detail") or body), body.get("code"))
        return cls(response.status_code, str(body))


@dataclass(frozen=True)
class Retry:
    retries: int = 4
    max_wait_s: float = 30.0

    def wait_s(self, response: httpx.Response | None, attempt: int) -> float:
        header: str | None = None
        if response is not None:
            header = response.headers.get("retry-after")
        if header is not None and header.strip().isdigit():
            return min(float(header), self.max_wait_s)
        backoff = 0.5 * 2.0**attempt + random.uniform(0, 0.25)
        return min(backoff, self.max_wait_s)


@dataclass(frozen=True)
class _Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, Any] | None = None
    json: Any = None
    content: bytes | None = None
    files: Mapping[str, Any] | None = None
    data: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def repeatable(self) -> bool:
        return (
            self.method in _SAFE_METHODS
            or "Idempotency-Key" in self.headers
            or self.path == "/v1/search"
        )


def _model(cls: type[BaseModel]) -> Callable[[httpx.Response], Any]:
    return lambda response: cls.model_validate(response.json())


def _uploaded(response: httpx.Response) -> Document:
    """An upload's answer: 201 made a new document or version, 200 matched the latest."""
    return Document.model_validate({**response.json(), "created": response.status_code == 201})


def _nothing(response: httpx.Response) -> None:
    return None


def _params(**values: Any) -> dict[str, Any]:
    """Query parameters without the unset ones; booleans as the API spells them."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value is None or value is False or value == ():
            continue
        out[name] = "true" if value is True else value
    return out


class _Calls:
    """Every call of the API, described once."""

    @staticmethod
    def upload(
        content: bytes,
        filename: str,
        *,
        collection: str | None,
        metadata: Mapping[str, Any] | None,
        source_key: str | None,
        batch: str | None,
        content_type: str | None,
        idempotency_key: str | None,
    ) -> _Call[Document]:
        data = {
            k: v
            for k, v in {
                "collection": collection,
                "source_key": source_key,
                "batch": batch,
                "metadata": json.dumps(dict(metadata), ensure_ascii=False) if metadata else None,
            }.items()
            if v is not None
        }
        kind = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return _Call(
            "POST",
            "/v1/documents",
            _uploaded,
            files={"file": (filename, content, kind)},
            data=data,
            headers=headers,
        )

    @staticmethod
    def submit_text(
        text: str,
        *,
        format: str,
        filename: str | None,
        collection: str | None,
        metadata: Mapping[str, Any] | None,
        source_key: str | None,
        batch: str | None,
        idempotency_key: str | None,
    ) -> _Call[Document]:
        body = {
            k: v
            for k, v in {
                "text": text,
                "format": format,
                "filename": filename,
                "collection": collection,
                "metadata": dict(metadata) if metadata else None,
                "source_key": source_key,
                "batch": batch,
            }.items()
            if v is not None
        }
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return _Call("POST", "/v1/documents/text", _uploaded, json=body, headers=headers)

    @staticmethod
    def document(document_id: uuid.UUID | str) -> _Call[Document]:
        return _Call("GET", f"/v1/documents/{document_id}", _model(Document))

    @staticmethod
    def documents(
        *,
        collection: str | None,
        status: str | None,
        source_key: str | None,
        batch: str | None,
        include_superseded: bool,
        limit: int,
        cursor: str | None,
        ids: list[str] | None = None,
    ) -> _Call[DocumentPage]:
        params = _params(
            collection=collection,
            status=status,
            source_key=source_key,
            batch=batch,
            include_superseded=include_superseded,
            limit=limit,
            cursor=cursor,
            ids=[str(i) for i in ids] if ids else None,
        )
        return _Call("GET", "/v1/documents", _model(DocumentPage), params=params)

    @staticmethod
    def versions(document_id: uuid.UUID | str) -> _Call[Versions]:
        return _Call("GET", f"/v1/documents/{document_id}/versions", _model(Versions))

    @staticmethod
    def chunks(
        document_id: uuid.UUID | str, after: int, limit: int, expand: str
    ) -> _Call[ChunkPage]:
        params = {"after": after, "limit": limit, "expand": expand}
        return _Call("GET", f"/v1/documents/{document_id}/chunks", _model(ChunkPage), params)

    @staticmethod
    def patch_metadata(document_id: uuid.UUID | str, patch: Mapping[str, Any]) -> _Call[Document]:
        body = {"metadata": dict(patch)}
        return _Call("PATCH", f"/v1/documents/{document_id}", _model(Document), json=body)

    @staticmethod
    def cancel(document_id: uuid.UUID | str) -> _Call[Document]:
        return _Call("POST", f"/v1/documents/{document_id}/cancel", _model(Document))

    @staticmethod
    def delete(document_id: uuid.UUID | str, all_versions: bool) -> _Call[None]:
        params = _params(all_versions=all_versions)
        return _Call("DELETE", f"/v1/documents/{document_id}", _nothing, params)

    @staticmethod
    def reprocess(document_id: uuid.UUID | str) -> _Call[Job]:
        return _Call("POST", f"/v1/documents/{document_id}/reprocess", _model(Job))

    @staticmethod
    def jobs(status: str | None, limit: int, cursor: str | None) -> _Call[JobPage]:
        params = _params(status=status, limit=limit, cursor=cursor)
        return _Call("GET", "/v1/jobs", _model(JobPage), params)

    @staticmethod
    def job(job_id: uuid.UUID | str) -> _Call[Job]:
        return _Call("GET", f"/v1/jobs/{job_id}", _model(Job))

    @staticmethod
    def retry_job(job_id: uuid.UUID | str) -> _Call[Job]:
        return _Call("POST", f"/v1/jobs/{job_id}/retry", _model(Job))

    @staticmethod
    def search(
        query: str,
        *,
        top_k: int,
        mode: str,
        collection: str | None,
        document_ids: list[str] | None,
        metadata: Mapping[str, Any] | None,
        include_superseded: bool,
        expand: str,
    ) -> _Call[SearchResult]:
        body: dict[str, Any] = {"query": query, "top_k": top_k, "mode": mode, "expand": expand}
        if collection:
            body["collection"] = collection
        if document_ids:
            body["document_ids"] = [str(d) for d in document_ids]
        if metadata:
            body["metadata"] = dict(metadata)
        if include_superseded:
            body["include_superseded"] = True
        return _Call("POST", "/v1/search", _model(SearchResult), json=body)

    @staticmethod
    def changes(
        after: str | None, batch: str | None, collection: str | None, wait_s: float, limit: int
    ) -> _Call[Changes]:
        params = _params(after=after, batch=batch, collection=collection, limit=limit)
        params["wait"] = wait_s
        return _Call("GET", "/v1/changes", _model(Changes), params)

    @staticmethod
    def collections() -> _Call[list[Collection]]:
        def parse(response: httpx.Response) -> list[Collection]:
            return [Collection.model_validate(c) for c in response.json()["items"]]

        return _Call("GET", "/v1/collections", parse)

    @staticmethod
    def stats() -> _Call[Stats]:
        return _Call("GET", "/v1/stats", _model(Stats))


def _file(path: Path | str) -> tuple[bytes, str]:
    p = Path(path)
    return p.read_bytes(), p.name


def _answer(call: _Call[T], response: httpx.Response) -> T:
    if response.status_code >= 400:
        raise ApiError.of(response)
    return call.parse(response)


class _Base:
    def __init__(self, base_url: str, api_key: str | None, timeout_s: float, retry: Retry) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = httpx.Timeout(timeout_s, connect=5.0)
        self.retry = retry

    @staticmethod
    def _request(call: _Call[Any]) -> dict[str, Any]:
        return {
            "params": call.params,
            "json": call.json,
            "content": call.content,
            "files": call.files,
            "data": call.data,
            "headers": dict(call.headers),
        }

    def _again(self, call: _Call[Any], response: httpx.Response | None, attempt: int) -> bool:
        if attempt >= self.retry.retries:
            return False
        if response is None:  # the connection failed: repeat only what is safe to repeat
            return call.repeatable
        return response.status_code in _RETRIED_STATUS


class AsyncClient(_Base):
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

    async def _send(self, call: _Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = await self._http.request(call.method, call.path, **self._request(call))
            except httpx.TransportError:
                if not self._again(call, None, attempt):
                    raise
                response = None
            if response is not None and not self._again(call, response, attempt):
                return _answer(call, response)
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
        content, name = (file, filename or "document") if isinstance(file, bytes) else _file(file)
        return await self._send(
            _Calls.upload(
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
            _Calls.submit_text(
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
        return await self._send(_Calls.document(document_id))

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
            _Calls.documents(
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
        return await self._send(_Calls.versions(document_id))

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
        return await self._send(_Calls.chunks(document_id, after, limit, expand))

    async def patch_metadata(
        self, document_id: uuid.UUID | str, patch: Mapping[str, Any]
    ) -> Document:
        return await self._send(_Calls.patch_metadata(document_id, patch))

    async def cancel(self, document_id: uuid.UUID | str) -> Document:
        return await self._send(_Calls.cancel(document_id))

    async def delete(self, document_id: uuid.UUID | str, *, all_versions: bool = False) -> None:
        await self._send(_Calls.delete(document_id, all_versions))

    async def reprocess(self, document_id: uuid.UUID | str) -> Job:
        return await self._send(_Calls.reprocess(document_id))

    # -- jobs, search, changes, collections, stats --------------------------------------

    async def jobs(
        self, *, status: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> JobPage:
        return await self._send(_Calls.jobs(status, limit, cursor))

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
        return await self._send(_Calls.job(job_id))

    async def retry_job(self, job_id: uuid.UUID | str) -> Job:
        return await self._send(_Calls.retry_job(job_id))

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
            _Calls.search(
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
        return await self._send(_Calls.changes(after, batch, collection, wait_s, limit))

    async def collections(self) -> list[Collection]:
        return await self._send(_Calls.collections())

    async def stats(self) -> Stats:
        return await self._send(_Calls.stats())


class Client(_Base):
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

    def _send(self, call: _Call[T]) -> T:
        attempt = 0
        while True:
            try:
                response = self._http.request(call.method, call.path, **self._request(call))
            except httpx.TransportError:
                if not self._again(call, None, attempt):
                    raise
                response = None
            if response is not None and not self._again(call, response, attempt):
                return _answer(call, response)
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
        content, name = (file, filename or "document") if isinstance(file, bytes) else _file(file)
        return self._send(
            _Calls.upload(
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
            _Calls.submit_text(
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
        return self._send(_Calls.document(document_id))

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
            _Calls.documents(
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
        return self._send(_Calls.versions(document_id))

    def chunks(
        self,
        document_id: uuid.UUID | str,
        *,
        after: int = -1,
        limit: int = 20,
        expand: str = "none",
    ) -> ChunkPage:
        return self._send(_Calls.chunks(document_id, after, limit, expand))

    def patch_metadata(self, document_id: uuid.UUID | str, patch: Mapping[str, Any]) -> Document:
        return self._send(_Calls.patch_metadata(document_id, patch))

    def cancel(self, document_id: uuid.UUID | str) -> Document:
        return self._send(_Calls.cancel(document_id))

    def delete(self, document_id: uuid.UUID | str, *, all_versions: bool = False) -> None:
        self._send(_Calls.delete(document_id, all_versions))

    def reprocess(self, document_id: uuid.UUID | str) -> Job:
        return self._send(_Calls.reprocess(document_id))

    def jobs(
        self, *, status: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> JobPage:
        return self._send(_Calls.jobs(status, limit, cursor))

    def job(self, job_id: uuid.UUID | str) -> Job:
        return self._send(_Calls.job(job_id))

    def retry_job(self, job_id: uuid.UUID | str) -> Job:
        return self._send(_Calls.retry_job(job_id))

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
            _Calls.search(
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
        return self._send(_Calls.changes(after, batch, collection, wait_s, limit))

    def collections(self) -> list[Collection]:
        return self._send(_Calls.collections())

    def stats(self) -> Stats:
        return self._send(_Calls.stats())
