"""The CLI's HTTP side: it talks to the API like any other client (API key, JSON,
problem+json errors), so the CLI works against a local platform and a remote one alike."""

from __future__ import annotations

import asyncio
import json
import mimetypes
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from entrypoints.cli.http import ApiError, check, detail
from entrypoints.cli.watch import TERMINAL, BatchProgress, BatchWatcher

__all__ = ["TERMINAL", "ApiClient", "ApiError", "FileResult", "collect_files", "new_batch"]


def new_batch(kind: str) -> str:
    """A fresh batch label for one run of `ingest` or `sync`."""
    return f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


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

    # -- simple calls --------------------------------------------------------------------

    async def stats(self) -> dict[str, Any]:
        async with self.http() as c:
            return dict(check(await c.get("/v1/stats")))

    async def search(self, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http() as c:
            return dict(check(await c.post("/v1/search", json=body)))

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
                page = check(await c.get("/v1/jobs", params=params))
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
                page = check(await c.get("/v1/documents", params=params))
                for item in page["items"]:
                    yield item
                cursor = page.get("next_cursor")
                if not cursor:
                    return

    async def document(self, document_id: str) -> dict[str, Any]:
        async with self.http() as c:
            return dict(check(await c.get(f"/v1/documents/{document_id}")))

    async def versions(self, document_id: str) -> dict[str, Any]:
        async with self.http() as c:
            return dict(check(await c.get(f"/v1/documents/{document_id}/versions")))

    async def chunks(self, document_id: str, limit: int = 20) -> dict[str, Any]:
        async with self.http() as c:
            return dict(
                check(await c.get(f"/v1/documents/{document_id}/chunks", params={"limit": limit}))
            )

    async def delete(self, document_id: str, all_versions: bool = False) -> None:
        params = {"all_versions": "true"} if all_versions else {}
        async with self.http() as c:
            response = await c.delete(f"/v1/documents/{document_id}", params=params)
            if response.status_code >= 400:
                raise ApiError(response.status_code, detail(response))

    async def reprocess(self, document_id: str) -> dict[str, Any]:
        async with self.http() as c:
            return dict(check(await c.post(f"/v1/documents/{document_id}/reprocess")))

    async def cancel(self, document_id: str) -> dict[str, Any]:
        async with self.http() as c:
            return dict(check(await c.post(f"/v1/documents/{document_id}/cancel")))

    async def patch_metadata(self, document_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        async with self.http() as c:
            return dict(
                check(await c.patch(f"/v1/documents/{document_id}", json={"metadata": patch}))
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
                    errors.append(f"{job_id}: {detail(response)}")
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
        on_progress: Callable[[BatchProgress], None] | None = None,
    ) -> list[FileResult]:
        """Upload every file (partial success is fine) as one batch, then wait until each
        accepted one is COMPLETED or FAILED, by the change feed. `on_done` is called once
        per file when it is settled."""
        results = [FileResult(p) for p in files]
        batch = new_batch("ingest")
        gate = asyncio.Semaphore(concurrency)
        async with self.http() as c:

            async def upload(r: FileResult) -> None:
                async with gate:
                    await self.upload_file(c, r, collection, metadata, None, batch)
                if r.outcome != "rejected":
                    self.settle(r, r.answer)
                if r.outcome == "rejected" or r.status in TERMINAL or not wait:
                    on_done(r)

            await asyncio.gather(*(upload(r) for r in results))
            if wait:
                await self.wait_for(c, batch, results, wait_timeout_s, on_done, on_progress)
        return results

    async def wait_for(
        self,
        c: httpx.AsyncClient,
        batch: str,
        results: list[FileResult],
        wait_timeout_s: float,
        on_done: Callable[[FileResult], None],
        on_progress: Callable[[BatchProgress], None] | None = None,
    ) -> None:
        """Wait on the uploads of `batch` through the change feed (watch.py)."""
        by_id = {r.document_id: r for r in results if r.document_id and r.status not in TERMINAL}

        def settle(doc_id: str, body: dict[str, Any]) -> bool:
            r = by_id[doc_id]
            if body.get("status") == "DELETED":
                r.outcome, r.status, r.detail = "failed", "DELETED", "deleted meanwhile"
            else:
                self.settle(r, body)
            if r.status in TERMINAL or r.status == "DELETED":
                on_done(r)
                return True
            return False

        watcher = BatchWatcher(c, batch, settle, on_progress)
        ours = [i for i, r in by_id.items() if r.answer.get("batch") == batch]
        others = [i for i in by_id if i not in set(ours)]
        left = await watcher.wait(ours, others, wait_timeout_s)
        for doc_id in left:
            r = by_id[doc_id]
            r.outcome, r.detail = "timeout", f"still {r.status} after {wait_timeout_s:.0f}s"
            on_done(r)

    async def upload_file(
        self,
        c: httpx.AsyncClient,
        r: FileResult,
        collection: str | None,
        metadata: dict[str, Any] | None,
        source_key: str | None,
        batch: str | None = None,
    ) -> None:
        """Upload one file; fills r.document_id and r.outcome (queued, existing, rejected)
        and keeps the API's answer in r.answer."""
        data: dict[str, str] = {}
        if collection:
            data["collection"] = collection
        if batch:
            data["batch"] = batch
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
            r.outcome, r.detail = "rejected", f"{response.status_code} {detail(response)}"
            return
        r.answer = response.json()
        r.document_id = r.answer["id"]
        r.outcome = "queued" if response.status_code == 201 else "existing"

    @staticmethod
    def settle(r: FileResult, body: dict[str, Any]) -> None:
        r.status = body.get("status")
        r.chunks = int(body.get("chunk_count") or 0)
        if r.status == "COMPLETED":
            r.outcome = "completed"
        elif r.status == "FAILED":
            r.outcome, r.detail = "failed", body.get("last_error") or "failed"
