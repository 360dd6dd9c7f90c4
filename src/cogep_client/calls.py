"""Every call of the REST API, described once (method, path, parameters, how to read
the answer), the errors it can end in and the retry rules; `cogep_client.client`
sends them, blocking or async."""

from __future__ import annotations

import json
import mimetypes
import random
import uuid
from collections.abc import Callable, Mapping
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
    Reembedding,
    SearchResult,
    Stats,
    Versions,
)

T = TypeVar("T")
SAFE_METHODS = frozenset({"GET", "HEAD", "DELETE"})


@dataclass(frozen=True)
class Call(Generic[T]):
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
            self.method in SAFE_METHODS
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


def _present(**values: Any) -> dict[str, Any]:
    """The fields that were given (None: leave it to the API's default)."""
    return {name: value for name, value in values.items() if value is not None}


def _params(**values: Any) -> dict[str, Any]:
    """Query parameters without the unset ones; booleans as the API spells them."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value is None or value is False or value == ():
            continue
        out[name] = "true" if value is True else value
    return out


class Calls:
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
    ) -> Call[Document]:
        data = _present(
            collection=collection,
            source_key=source_key,
            batch=batch,
            metadata=json.dumps(dict(metadata), ensure_ascii=False) if metadata else None,
        )
        kind = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return Call(
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
    ) -> Call[Document]:
        body = _present(
            text=text,
            format=format,
            filename=filename,
            collection=collection,
            metadata=dict(metadata) if metadata else None,
            source_key=source_key,
            batch=batch,
        )
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return Call("POST", "/v1/documents/text", _uploaded, json=body, headers=headers)

    @staticmethod
    def document(document_id: uuid.UUID | str) -> Call[Document]:
        return Call("GET", f"/v1/documents/{document_id}", _model(Document))

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
    ) -> Call[DocumentPage]:
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
        return Call("GET", "/v1/documents", _model(DocumentPage), params=params)

    @staticmethod
    def versions(document_id: uuid.UUID | str) -> Call[Versions]:
        return Call("GET", f"/v1/documents/{document_id}/versions", _model(Versions))

    @staticmethod
    def chunks(
        document_id: uuid.UUID | str, after: int, limit: int, expand: str
    ) -> Call[ChunkPage]:
        params = {"after": after, "limit": limit, "expand": expand}
        return Call("GET", f"/v1/documents/{document_id}/chunks", _model(ChunkPage), params)

    @staticmethod
    def patch_metadata(document_id: uuid.UUID | str, patch: Mapping[str, Any]) -> Call[Document]:
        body = {"metadata": dict(patch)}
        return Call("PATCH", f"/v1/documents/{document_id}", _model(Document), json=body)

    @staticmethod
    def cancel(document_id: uuid.UUID | str) -> Call[Document]:
        return Call("POST", f"/v1/documents/{document_id}/cancel", _model(Document))

    @staticmethod
    def delete(document_id: uuid.UUID | str, all_versions: bool) -> Call[None]:
        params = _params(all_versions=all_versions)
        return Call("DELETE", f"/v1/documents/{document_id}", _nothing, params)

    @staticmethod
    def reprocess(document_id: uuid.UUID | str) -> Call[Job]:
        return Call("POST", f"/v1/documents/{document_id}/reprocess", _model(Job))

    @staticmethod
    def jobs(status: str | None, limit: int, cursor: str | None) -> Call[JobPage]:
        params = _params(status=status, limit=limit, cursor=cursor)
        return Call("GET", "/v1/jobs", _model(JobPage), params)

    @staticmethod
    def job(job_id: uuid.UUID | str) -> Call[Job]:
        return Call("GET", f"/v1/jobs/{job_id}", _model(Job))

    @staticmethod
    def retry_job(job_id: uuid.UUID | str) -> Call[Job]:
        return Call("POST", f"/v1/jobs/{job_id}/retry", _model(Job))

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
    ) -> Call[SearchResult]:
        body: dict[str, Any] = {"query": query, "top_k": top_k, "mode": mode, "expand": expand}
        if collection:
            body["collection"] = collection
        if document_ids:
            body["document_ids"] = [str(d) for d in document_ids]
        if metadata:
            body["metadata"] = dict(metadata)
        if include_superseded:
            body["include_superseded"] = True
        return Call("POST", "/v1/search", _model(SearchResult), json=body)

    @staticmethod
    def changes(
        after: str | None, batch: str | None, collection: str | None, wait_s: float, limit: int
    ) -> Call[Changes]:
        params = _params(after=after, batch=batch, collection=collection, limit=limit)
        params["wait"] = wait_s
        return Call("GET", "/v1/changes", _model(Changes), params)

    @staticmethod
    def collections() -> Call[list[Collection]]:
        def parse(response: httpx.Response) -> list[Collection]:
            return [Collection.model_validate(c) for c in response.json()["items"]]

        return Call("GET", "/v1/collections", parse)

    @staticmethod
    def reembed(collection: str | None) -> Call[Reembedding]:
        return Call("POST", "/v1/reembed", _model(Reembedding), json=_params(collection=collection))

    @staticmethod
    def stats() -> Call[Stats]:
        return Call("GET", "/v1/stats", _model(Stats))


def read_file(path: Path | str) -> tuple[bytes, str]:
    p = Path(path)
    return p.read_bytes(), p.name


_RETRIED_STATUS = frozenset({429, 503})


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


def answer_of(call: Call[T], response: httpx.Response) -> T:
    if response.status_code >= 400:
        raise ApiError.of(response)
    return call.parse(response)


class BaseClient:
    def __init__(self, base_url: str, api_key: str | None, timeout_s: float, retry: Retry) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = httpx.Timeout(timeout_s, connect=5.0)
        self.retry = retry

    @staticmethod
    def _request(call: Call[Any]) -> dict[str, Any]:
        return {
            "params": call.params,
            "json": call.json,
            "content": call.content,
            "files": call.files,
            "data": call.data,
            "headers": dict(call.headers),
        }

    def _again(self, call: Call[Any], response: httpx.Response | None, attempt: int) -> bool:
        if attempt >= self.retry.retries:
            return False
        if response is None:  # the connection failed: repeat only what is safe to repeat
            return call.repeatable
        return response.status_code in _RETRIED_STATUS
