"""Which chunks the next embedding slice takes, across the documents in hand.

Shortest remaining first: a slice is filled from the documents with the fewest chunks
left, so a one-page document that arrives while a 300-page PDF is embedding is done
within a slice or two instead of waiting for all of it (the order that minimises the
mean time to searchable). So that the long document still moves while short ones keep
arriving, the document that began embedding first keeps a quarter of every slice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.model import ChunkDraft, ClaimedJob, Document


@dataclass(eq=False)
class WorkItem:
    """One document between extraction and storage."""

    claim: ClaimedJob
    document: Document
    drafts: list[ChunkDraft]
    vectors: list[Sequence[float] | None]
    report: dict[str, Any] = field(default_factory=dict)
    found_metadata: dict[str, Any] = field(default_factory=dict)  # the norm's identity
    norm_key: str | None = None  # "lei-8112-1990": the default source key of a legal act
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    taken: int = 0  # chunks handed to a slice so far
    embedded: int = 0  # chunks with a vector
    started: float = field(default_factory=time.monotonic)

    @property
    def done(self) -> bool:
        return self.embedded >= len(self.drafts)

    @property
    def untaken(self) -> int:
        return len(self.drafts) - self.taken

    def add_time(self, stage: str, seconds: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + seconds


class EmbedSchedule:
    def __init__(self) -> None:
        self._items: list[WorkItem] = []  # in the order they arrived

    def add(self, item: WorkItem) -> None:
        self._items.append(item)

    def drop(self, job_ids: Iterable[uuid.UUID]) -> None:
        gone = set(job_ids)
        self._items = [i for i in self._items if i.claim.job_id not in gone]

    def active(self) -> list[WorkItem]:
        return [i for i in self._items if i.untaken > 0]

    @property
    def pending_chunks(self) -> int:
        return sum(i.untaken for i in self._items)

    def __bool__(self) -> bool:
        return self.pending_chunks > 0

    def take(self, size: int) -> list[tuple[WorkItem, int]]:
        """Up to `size` (document, chunk index) pairs for the next slice."""
        active = self.active()
        if not active:
            return []
        out: list[tuple[WorkItem, int]] = []
        if len(active) > 1:  # the eldest keeps its share, so nothing starves
            self._give(active[0], max(1, size // 4), out)
        for item in sorted(active, key=lambda i: i.untaken):
            self._give(item, size - len(out), out)
            if len(out) >= size:
                break
        self._items = [i for i in self._items if i.untaken > 0 or not i.done]
        return out

    @staticmethod
    def _give(item: WorkItem, n: int, out: list[tuple[WorkItem, int]]) -> None:
        n = min(n, item.untaken)
        out.extend((item, i) for i in range(item.taken, item.taken + n))
        item.taken += n
