"""Waiting on many uploads at once: one long-poll per change, not one request per document.

`ingest` and `sync` label their uploads with one batch. The watcher asks
``GET /v1/changes?batch=...&wait=...`` (the answer comes when something in the batch
changed, or after `wait` seconds), settles the documents the answer names, and reads
the batch's counts for the progress bar. Uploads that turned out to be documents of an
earlier batch (the same content was already there) are looked up together, in one
listing per round. When the counts say everything finished, one listing of the batch
settles whatever the feed has not named yet, so no outcome is ever missed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cogep_client import AsyncClient

TERMINAL = frozenset({"COMPLETED", "FAILED"})
LONG_POLL_S = 25.0
OUTSIDERS_POLL_S = 3.0  # wait per round while some uploads belong to another batch


@dataclass(frozen=True)
class BatchProgress:
    total: int
    finished: int
    chunks: int
    # the documents being worked on now, as the worker last reported them
    working: int = 0
    chunks_embedded: int = 0
    chunks_to_embed: int = 0
    pages_read: int = 0
    pages_to_read: int = 0
    eta_s: float | None = None  # the longest of their ETAs

    def describe(self) -> str:
        text = f"processing: {self.finished}/{self.total} done, {self.chunks} chunks"
        if self.working:
            if self.chunks_to_embed:
                text += f"; embedding {self.chunks_embedded}/{self.chunks_to_embed} chunks"
            elif self.pages_to_read:
                text += f"; reading page {self.pages_read}/{self.pages_to_read}"
            if self.eta_s is not None:
                text += f", ETA {self.eta_s:.0f} s"
        return text


class BatchWatcher:
    """Settles documents (by id) until each is COMPLETED or FAILED, or time is up.

    `settle(doc_id, body)` is called with the API's view of a document whenever it is
    named; it returns True when that document is finished for the caller."""

    def __init__(
        self,
        client: AsyncClient,
        batch: str,
        settle: Callable[[str, dict[str, Any]], bool],
        on_progress: Callable[[BatchProgress], None] | None = None,
    ) -> None:
        self.client = client
        self.batch = batch
        self.settle = settle
        self.on_progress = on_progress
        self.requests = 0
        self.working: dict[str, dict[str, Any]] = {}  # id -> its latest progress

    async def wait(
        self, in_batch: Sequence[str], outsiders: Sequence[str], timeout_s: float
    ) -> set[str]:
        """Returns the ids still unfinished when the time ran out."""
        pending = set(in_batch)
        others = set(outsiders)
        cursor: str | None = None
        deadline = time.monotonic() + timeout_s
        while (pending or others) and time.monotonic() < deadline:
            remaining = max(0.0, deadline - time.monotonic())
            wait = min(OUTSIDERS_POLL_S if others else LONG_POLL_S, remaining)
            page = (
                await self.client.changes(
                    after=cursor, batch=self.batch, wait_s=round(wait, 1), limit=500
                )
            ).model_dump(mode="json")
            self.requests += 1
            cursor = page.get("cursor") or cursor
            for body in page["items"]:
                self._track(body)
                if body["id"] in pending and self.settle(body["id"], body):
                    pending.discard(body["id"])
            if others:
                others -= await self._look_up(sorted(others))
            summary = page.get("summary")
            if summary is not None:
                if self.on_progress is not None:
                    self.on_progress(self._progress(summary))
                if pending and summary["finished"] >= summary["total"]:
                    pending -= await self._reconcile()  # what the feed did not name yet
        return pending | others

    def _track(self, body: dict[str, Any]) -> None:
        if body.get("status") == "PROCESSING" and body.get("progress"):
            self.working[body["id"]] = body["progress"]
        else:
            self.working.pop(body["id"], None)

    def _progress(self, summary: dict[str, Any]) -> BatchProgress:
        work = list(self.working.values())
        etas = [p["eta_seconds"] for p in work if p.get("eta_seconds") is not None]
        return BatchProgress(
            summary["total"],
            summary["finished"],
            summary["chunks"],
            working=len(work),
            chunks_embedded=sum(p.get("chunks_done") or 0 for p in work),
            chunks_to_embed=sum(p.get("chunks_total") or 0 for p in work),
            pages_read=sum(p.get("pages_done") or 0 for p in work),
            pages_to_read=sum(p.get("pages_total") or 0 for p in work),
            eta_s=max(etas) if etas else None,
        )

    async def _look_up(self, ids: list[str]) -> set[str]:
        done: set[str] = set()
        for start in range(0, len(ids), 200):
            part = ids[start : start + 200]
            page = (await self.client.documents(ids=part, limit=200)).model_dump(mode="json")
            self.requests += 1
            listed = {body["id"]: body for body in page["items"]}
            for doc_id in part:
                body = listed.get(doc_id)
                if body is None:  # deleted meanwhile: finished, as far as waiting goes
                    if self.settle(doc_id, {"id": doc_id, "status": "DELETED"}):
                        done.add(doc_id)
                elif self.settle(doc_id, body):
                    done.add(doc_id)
        return done

    async def _reconcile(self) -> set[str]:
        done: set[str] = set()
        cursor: str | None = None
        while True:
            listing = await self.client.documents(batch=self.batch, limit=200, cursor=cursor)
            page = listing.model_dump(mode="json")
            self.requests += 1
            for body in page["items"]:
                if self.settle(body["id"], body):
                    done.add(body["id"])
            cursor = page.get("next_cursor")
            if not cursor:
                return done
