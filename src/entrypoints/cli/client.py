"""The CLI's HTTP side: it talks to the API like any other client (API key, JSON,
problem+json errors), so the CLI works against a local platform and a remote one alike."""

from __future__ import annotations

import asyncio
import mimetypes
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel

from cogep_client import ApiError, AsyncClient
from entrypoints.cli.watch import TERMINAL, BatchProgress, BatchWatcher

__all__ = ["TERMINAL", "ApiClient", "ApiError", "FileResult", "collect_files", "new_batch"]


def _json(model: BaseModel) -> dict[str, Any]:
    """The API's JSON, as the CLI prints it."""
    return model.model_dump(mode="json")


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
    """The CLI's calls, on the platform's own Python client (`cogep_client`): answers
    come back as the API's JSON (dicts) for the CLI's tables and `--json` output."""

    def __init__(self, base_url: str, api_key: str, timeout_s: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s

    def http(self) -> AsyncClient:
        return AsyncClient(self.base_url, self.api_key, timeout_s=self.timeout_s)

    # -- simple calls --------------------------------------------------------------------

    async def stats(self) -> dict[str, Any]:
        async with self.http() as c:
            return _json(await c.stats())

    async def reembed(self, collection: str | None) -> dict[str, Any]:
        async with self.http() as c:
            return _json(await c.reembed(collection))

    async def search(self, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http() as c:
            query = body.pop("query")
            return _json(await c.search(query, **body))

    async def jobs(
        self, status: str | None = None, limit: int = 100
    ) -> AsyncIterator[dict[str, Any]]:
        async with self.http() as c:
            async for job in c.iter_jobs(status=status, limit=limit):
                yield _json(job)

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
            async for doc in c.iter_documents(
                collection=collection,
                status=status,
                source_key=source_key,
                include_superseded=include_superseded,
                limit=limit,
            ):
                yield _json(doc)

    async def document(self, document_id: str) -> dict[str, Any]:
        async with self.http() as c:
            return _json(await c.document(document_id))

    async def versions(self, document_id: str) -> dict[str, Any]:
        async with self.http() as c:
            return _json(await c.versions(document_id))

    async def chunks(self, document_id: str, limit: int = 20) -> dict[str, Any]:
        async with self.http() as c:
            return _json(await c.chunks(document_id, limit=limit))

    async def delete(self, document_id: str, all_versions: bool = False) -> None:
        async with self.http() as c:
            await c.delete(document_id, all_versions=all_versions)

    async def reprocess(self, document_id: str) -> dict[str, Any]:
        async with self.http() as c:
            return _json(await c.reprocess(document_id))

    async def cancel(self, document_id: str) -> dict[str, Any]:
        async with self.http() as c:
            return _json(await c.cancel(document_id))

    async def patch_metadata(self, document_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        async with self.http() as c:
            return _json(await c.patch_metadata(document_id, patch))

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
                try:
                    await c.retry_job(job_id)
                except ApiError as exc:
                    errors.append(f"{job_id}: {exc.detail}")
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
        c: AsyncClient,
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
        c: AsyncClient,
        r: FileResult,
        collection: str | None,
        metadata: dict[str, Any] | None,
        source_key: str | None,
        batch: str | None = None,
    ) -> None:
        """Upload one file; fills r.document_id and r.outcome (queued, existing, rejected)
        and keeps the API's answer in r.answer."""
        try:
            doc = await c.upload(
                r.path,
                collection=collection,
                metadata=metadata,
                source_key=source_key,
                batch=batch,
                content_type=mimetypes.guess_type(r.path.name)[0] or "application/octet-stream",
            )
        except ApiError as exc:
            r.outcome, r.detail = "rejected", f"{exc.status} {exc.detail}"
            return
        except (OSError, httpx.HTTPError) as exc:
            r.outcome, r.detail = "rejected", f"{type(exc).__name__}: {exc}"
            return
        r.answer = _json(doc)
        r.document_id = str(doc.id)
        r.outcome = "queued" if doc.created else "existing"

    @staticmethod
    def settle(r: FileResult, body: dict[str, Any]) -> None:
        r.status = body.get("status")
        r.chunks = int(body.get("chunk_count") or 0)
        if r.status == "COMPLETED":
            r.outcome = "completed"
        elif r.status == "FAILED":
            r.outcome, r.detail = "failed", body.get("last_error") or "failed"
