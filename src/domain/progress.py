"""How far a job has come: pages read of the document's pages, chunks embedded of its
chunks, and when each of those two measured stages began, so that an ETA follows from
the rate so far.

The worker records it (at most about once a second per batch, fenced by its lease);
the API, the change feed, the CLI's progress bar and the worker's log all read the same
numbers. Nothing here is a promise: the ETA is the remaining work at the rate observed
in this stage, None until there is a rate to go by.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

# below this much elapsed time a rate says nothing yet (one slice, one page)
_MIN_ELAPSED_S = 0.5


def _eta(
    done: int | None, total: int | None, since: datetime | None, now: datetime
) -> float | None:
    if not done or not total or since is None or done >= total:
        return 0.0 if done and total and done >= total else None
    elapsed = (now - since).total_seconds()
    if elapsed < _MIN_ELAPSED_S:
        return None
    return round((total - done) * elapsed / done, 1)


@dataclass(frozen=True)
class JobProgress:
    pages_done: int | None = None
    pages_total: int | None = None
    extract_started_at: datetime | None = None
    chunks_done: int | None = None
    chunks_total: int | None = None
    embed_started_at: datetime | None = None

    # -- the worker's updates ------------------------------------------------------------

    def extracting(self, now: datetime) -> JobProgress:
        return JobProgress(extract_started_at=now)

    def pages(self, done: int, total: int) -> JobProgress:
        return replace(self, pages_done=max(0, min(done, total)), pages_total=max(0, total))

    def embedding(self, total_chunks: int, now: datetime) -> JobProgress:
        return replace(self, chunks_done=0, chunks_total=total_chunks, embed_started_at=now)

    def embedded(self, done: int) -> JobProgress:
        total = self.chunks_total or 0
        return replace(self, chunks_done=max(0, min(done, total)))

    # -- what readers see ----------------------------------------------------------------

    def eta_seconds(self, now: datetime) -> float | None:
        """Seconds left in the stage being measured: embedding once it began, else
        reading pages. None while there is no rate yet."""
        if self.chunks_total is not None:
            return _eta(self.chunks_done, self.chunks_total, self.embed_started_at, now)
        return _eta(self.pages_done, self.pages_total, self.extract_started_at, now)

    def as_json(self) -> dict[str, Any]:
        return {
            "pages_done": self.pages_done,
            "pages_total": self.pages_total,
            "extract_started_at": _iso(self.extract_started_at),
            "chunks_done": self.chunks_done,
            "chunks_total": self.chunks_total,
            "embed_started_at": _iso(self.embed_started_at),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> JobProgress | None:
        if not raw:
            return None
        return cls(
            pages_done=_int(raw.get("pages_done")),
            pages_total=_int(raw.get("pages_total")),
            extract_started_at=_time(raw.get("extract_started_at")),
            chunks_done=_int(raw.get("chunks_done")),
            chunks_total=_int(raw.get("chunks_total")),
            embed_started_at=_time(raw.get("embed_started_at")),
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
