"""The CLI's HTTP side: it talks to the API like any other client (API key, JSON,
problem+json errors), so the CLI works against a local platform and a remote one alike."""

from __future__ import annotations

import asyncio
import json
import mimetypes
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

TERMINAL = frozenset({"COMPLETED", "FAILED"})


class ApiError(RuntimeError):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        return str(body.get("detail") or body)
    return str(body)


@dataclass
class FileResult:
    path: Path
    outcome: str = "pending"  # queued, existing, rejected, completed, failed, timeout
    document_id: str | None = None
    status: str | None = None
    chunks: int = 0
    detail: str = ""
    answer: dict[str, Any] = field(default_factory=dict)  # the API's answer to the upload

    @property
    def ok(self) -> bool:
        return self.outcome == "completed"


def collect_files(paths: Iterable[Path]) -> list[Path]:
    """Files as given, folders walked (sorted, hidden entries skipped)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path} does not exist")
    return files


class ApiClient:
    def __init__(self, base_url: str, api_key: str, timeout_s: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.timeout = httpx.Timeout(timeout_s, connect=5.0)

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, headers=self.headers, timeout=self.timeout)

    @staticmethod
    def _check(response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise ApiError(response.status_code, _detail(response))
        return response.json()

    # -- simple calls --------------------------------------------------------------------

    async def stats(self) -> dict[str, Any]:
        async with self.http() as c:
            return dict(self._check(await c.get("/v1/stats")))

    async def search(self, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http() as c:
            return dict(self._check(await c.post("/v1/search", json=body)))

    async def jobs(
        self, status: str | None = None, limit: int = 100
    ) -> AsyncIterator[dict[str, Any]]:
        async with self.http() as c:
            cursor: str | None = None
            while True:
                params: dict[str, Any] = {"limit": limit}
                if status:
                    params["status"] = status
                if cursor:
                    params["cursor"] = cursor
                page = self._check(await c.get("/v1/jobs", params=params))
                for item in page["items"]:
                    yield item
                cursor = page.get("next_cursor")
                if not cursor:
                    return

    async def documents(
        self,
        collection: str | None = None,
        *,
        status: str | None = None,
        source_key: str | None = None,
        include_superseded: bool = False,
        limit: int = 200,
    ) -> AsyncIterator[dict[str, Any]]:
        """Every document of the listing, page after page (newest first)."""
        async with self.http() as c:
            cursor: str | None = None
            while True:
                params: dict[str, Any] = {"limit": limit}
                for name, value in (
                    ("collection", collection),
                    ("status", status),
                    ("source_key", source_key),
                    ("cursor", cursor),
                ):
                    if value:
                        params[name] = value
                if include_superseded:
                    params["include_superseded"] = "true"
                page = self._check(await c.get("/v1/documents", params=params))
                for item in page["items"]:
                    yield item
                cursor = page.get("next_cursor")
                if not cursor:
                    return

    async def document(self, document_id: str) -> dict[str, Any]:
        async with self.http() as c:
            return dict(self._check(await c.get(f"/v1/documents/{document_id}")))

    async def versions(self, document_id: str) -> dict[str, Any]:
        async with self.http() as c:
            return dict(self._check(await c.get(f"/v1/documents/{document_id}/versions")))

    async def chunks(self, document_id: str, limit: int = 20) -> dict[str, Any]:
        async with self.http() as c:
            return dict(
                self._check(
                    await c.get(f"/v1/documents/{document_id}/chunks", params={"limit": limit})
                )
            )

    async def delete(self, document_id: str, all_versions: bool = False) -> None:
        params = {"all_versions": "true"} if all_versions else {}
        async with self.http() as c:
            response = await c.delete(f"/v1/documents/{document_id}", params=params)
            if response.status_code >= 400:
                raise ApiError(response.status_code, _detail(response))

    async def reprocess(self, document_id: str) -> dict[str, Any]:
        async with self.http() as c:
            return dict(self._check(await c.post(f"/v1/documents/{document_id}/reprocess")))

    async def cancel(self, document_id: str) -> dict[str, Any]:
        async with self.http() as c:
            return dict(self._check(await c.post(f"/v1/documents/{document_id}/cancel")))

    async def patch_metadata(self, document_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        async with self.http() as c:
            return dict(
                self._check(await c.patch(f"/v1/documents/{document_id}", json={"metadata": patch}))
            )

    async def retry_failed(self) -> tuple[int, list[str], list[dict[str, Any]]]:
        """Queue again every FAILED job a retry can help (transient errors that used up
        their attempts). Returns (queued, errors, permanent): permanent failures are the
        document's own (no text, corrupt, unsafe) and cancelled jobs; they are listed,
        not retried (`POST /v1/jobs/{id}/retry` still retries one on purpose)."""
        ids: list[str] = []
        permanent: list[dict[str, Any]] = []
        async for job in self.jobs("FAILED"):
            (ids.append(job["id"]) if job.get("retryable") else permanent.append(job))
        errors: list[str] = []
        async with self.http() as c:
            for job_id in ids:
                response = await c.post(f"/v1/jobs/{job_id}/retry")
                if response.status_code >= 400:
                    errors.append(f"{job_id}: {_detail(response)}")
        return len(ids) - len(errors), errors, permanent

    # -- ingest ----------------------------------------------------------------------------

    async def ingest(
        self,
        files: list[Path],
        collection: str | None,
        metadata: dict[str, Any] | None,
        wait: bool,
        wait_timeout_s: float,
        concurrency: int,
        on_done: Callable[[FileResult], None],
    ) -> list[FileResult]:
        """Upload every file (partial success is fine), then wait until each accepted one
        is COMPLETED or FAILED. `on_done` is called once per file when it is settled."""
        results = [FileResult(p) for p in files]
        gate = asyncio.Semaphore(concurrency)
        async with self.http() as c:

            async def upload(r: FileResult) -> None:
                async with gate:
                    await self.upload_file(c, r, collection, metadata, source_key=None)
                if r.outcome != "rejected":
                    self.settle(r, r.answer)
                if r.outcome == "rejected" or r.status in TERMINAL or not wait:
                    on_done(r)

            await asyncio.gather(*(upload(r) for r in results))
            if wait:
                await self.wait_for(c, results, wait_timeout_s, gate, on_done)
        return results

    async def upload_file(
        self,
        c: httpx.AsyncClient,
        r: FileResult,
        collection: str | None,
        metadata: dict[str, Any] | None,
        source_key: str | None,
    ) -> None:
        """Upload one file; fills r.document_id and r.outcome (queued, existing, rejected)
        and keeps the API's answer in r.answer."""
        data: dict[str, str] = {}
        if collection:
            data["collection"] = collection
        if metadata:
            data["metadata"] = json.dumps(metadata, ensure_ascii=False)
        if source_key:
            data["source_key"] = source_key
        content_type = mimetypes.guess_type(r.path.name)[0] or "application/octet-stream"
        try:
            with r.path.open("rb") as fh:
                response = await c.post(
                    "/v1/documents",
                    files={"file": (r.path.name, fh, content_type)},
                    data=data,
                )
        except (OSError, httpx.HTTPError) as exc:
            r.outcome, r.detail = "rejected", f"{type(exc).__name__}: {exc}"
            return
        if response.status_code >= 400:
            r.outcome, r.detail = "rejected", f"{response.status_code} {_detail(response)}"
            return
        r.answer = response.json()
        r.document_id = r.answer["id"]
        r.outcome = "queued" if response.status_code == 201 else "existing"

    async def wait_for(
        self,
        c: httpx.AsyncClient,
        results: list[FileResult],
        wait_timeout_s: float,
        gate: asyncio.Semaphore,
        on_done: Callable[[FileResult], None],
    ) -> None:
        """Poll until every uploaded document is COMPLETED or FAILED (or the time is up)."""
        deadline = time.monotonic() + wait_timeout_s
        pending = [r for r in results if r.document_id and r.status not in TERMINAL]
        while pending and time.monotonic() < deadline:
            await asyncio.sleep(0.5)

            async def poll(r: FileResult) -> None:
                async with gate:
                    response = await c.get(f"/v1/documents/{r.document_id}")
                if response.status_code == 404:
                    r.outcome, r.status, r.detail = "failed", "DELETED", "deleted meanwhile"
                elif response.status_code < 400:
                    self.settle(r, response.json())
                if r.status in TERMINAL or r.status == "DELETED":
                    on_done(r)

            await asyncio.gather(*(poll(r) for r in pending))
            pending = [r for r in pending if r.status not in TERMINAL and r.status != "DELETED"]
        for r in pending:
            r.outcome, r.detail = "timeout", f"still {r.status} after {wait_timeout_s:.0f}s"
            on_done(r)

    @staticmethod
    def settle(r: FileResult, body: dict[str, Any]) -> None:
        r.status = body.get("status")
        r.chunks = int(body.get("chunk_count") or 0)
        if r.status == "COMPLETED":
            r.outcome = "completed"
        elif r.status == "FAILED":
            r.outcome, r.detail = "failed", body.get("last_error") or "failed"
