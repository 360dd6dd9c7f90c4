"""The CLI's HTTP side: it talks to the API like any other client (API key, JSON,
problem+json errors), so the CLI works against a local platform and a remote one alike."""

from __future__ import annotations

import asyncio
import json
import mimetypes
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
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

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, headers=self.headers, timeout=self.timeout)

    @staticmethod
    def _check(response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise ApiError(response.status_code, _detail(response))
        return response.json()

    # -- simple calls --------------------------------------------------------------------

    async def stats(self) -> dict[str, Any]:
        async with self._client() as c:
            return dict(self._check(await c.get("/v1/stats")))

    async def search(self, body: dict[str, Any]) -> dict[str, Any]:
        async with self._client() as c:
            return dict(self._check(await c.post("/v1/search", json=body)))

    async def jobs(
        self, status: str | None = None, limit: int = 100
    ) -> AsyncIterator[dict[str, Any]]:
        async with self._client() as c:
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

    async def retry_failed(self) -> tuple[int, list[str]]:
        ids = [job["id"] async for job in self.jobs("FAILED")]
        errors: list[str] = []
        async with self._client() as c:
            for job_id in ids:
                response = await c.post(f"/v1/jobs/{job_id}/retry")
                if response.status_code >= 400:
                    errors.append(f"{job_id}: {_detail(response)}")
        return len(ids) - len(errors), errors

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
        async with self._client() as c:

            async def upload(r: FileResult) -> None:
                async with gate:
                    data: dict[str, str] = {}
                    if collection:
                        data["collection"] = collection
                    if metadata:
                        data["metadata"] = json.dumps(metadata, ensure_ascii=False)
                    content_type = (
                        mimetypes.guess_type(r.path.name)[0] or "application/octet-stream"
                    )
                    try:
                        with r.path.open("rb") as fh:
                            response = await c.post(
                                "/v1/documents",
                                files={"file": (r.path.name, fh, content_type)},
                                data=data,
                            )
                    except (OSError, httpx.HTTPError) as exc:
                        r.outcome, r.detail = "rejected", f"{type(exc).__name__}: {exc}"
                        on_done(r)
                        return
                if response.status_code >= 400:
                    r.outcome, r.detail = "rejected", f"{response.status_code} {_detail(response)}"
                    on_done(r)
                    return
                body = response.json()
                r.document_id = body["id"]
                r.outcome = "queued" if response.status_code == 201 else "existing"
                self._settle(r, body)
                if r.status in TERMINAL or not wait:
                    on_done(r)

            await asyncio.gather(*(upload(r) for r in results))
            if not wait:
                return results
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
                        self._settle(r, response.json())
                    if r.status in TERMINAL or r.status == "DELETED":
                        on_done(r)

                await asyncio.gather(*(poll(r) for r in pending))
                pending = [r for r in pending if r.status not in TERMINAL and r.status != "DELETED"]
            for r in pending:
                r.outcome, r.detail = "timeout", f"still {r.status} after {wait_timeout_s:.0f}s"
                on_done(r)
        return results

    @staticmethod
    def _settle(r: FileResult, body: dict[str, Any]) -> None:
        r.status = body.get("status")
        r.chunks = int(body.get("chunk_count") or 0)
        if r.status == "COMPLETED":
            r.outcome = "completed"
        elif r.status == "FAILED":
            r.outcome, r.detail = "failed", body.get("last_error") or "failed"
