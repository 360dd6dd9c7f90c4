"""WatchDocuments: what changed among many documents, by long-poll, for clients that
wait on thousands of uploads (ingest, sync) without asking about each one.

The feed is an updated-since cursor over the jobs' ``changed_at`` (the database's
clock, set by a trigger on every visible change). An answer comes as soon as something
changed after the cursor, or when `wait` runs out; between looks the handler holds no
database connection. A change is listed once its transaction has surely committed
(``settle_s`` after it), so a cursor never moves past a change that commits late. With
a batch, the answer also carries the batch's counts, computed afresh each time: they
are the truth a client checks its progress and its end against.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from application.ports import BatchSummary, Change, UnitOfWorkFactory
from domain.access import EVERYTHING, Access
from domain.errors import InvalidInput
from domain.model import validate_batch, validate_collection

MAX_WAIT_S = 30.0
MAX_CHANGES = 500


@dataclass(frozen=True)
class WatchDocuments:
    after: tuple[datetime, uuid.UUID] | None = None
    batch: str | None = None
    collection: str | None = None
    wait_s: float = 0.0
    limit: int = 200
    access: Access = EVERYTHING


@dataclass(frozen=True)
class WatchResult:
    changes: list[Change]
    cursor: tuple[datetime, uuid.UUID] | None  # pass back as `after`
    summary: BatchSummary | None


class WatchDocumentsHandler:
    def __init__(
        self, uow_factory: UnitOfWorkFactory, settle_s: float = 1.0, look_every_s: float = 1.0
    ) -> None:
        self.uow_factory = uow_factory
        self.settle_s = settle_s
        self.look_every_s = look_every_s

    async def __call__(self, cmd: WatchDocuments) -> WatchResult:
        if not 0 <= cmd.wait_s <= MAX_WAIT_S:
            raise InvalidInput(f"wait must be between 0 and {MAX_WAIT_S:.0f} s", field="wait")
        if not 1 <= cmd.limit <= MAX_CHANGES:
            raise InvalidInput(f"limit must be between 1 and {MAX_CHANGES}", field="limit")
        batch = validate_batch(cmd.batch)
        collection = validate_collection(cmd.collection) if cmd.collection else None
        if collection is not None:
            cmd.access.require(collection)
        within = cmd.access.within()
        deadline = time.monotonic() + cmd.wait_s
        while True:
            async with self.uow_factory() as uow:
                changes = await uow.documents.changes(
                    cmd.after,
                    batch=batch,
                    collection=collection,
                    settle_s=self.settle_s,
                    limit=cmd.limit,
                    within=within,
                )
                done = bool(changes) or time.monotonic() >= deadline
                # the counts once per answer, not once per look
                summary = (
                    await uow.documents.batch_summary(batch, within) if batch and done else None
                )
            if done:
                break
            await asyncio.sleep(min(self.look_every_s, max(0.0, deadline - time.monotonic())))
        cursor = cmd.after
        if changes:  # the feed's order: (changed_at, job id)
            last = changes[-1]
            assert last.view.job is not None  # a change is a job's change
            cursor = (last.changed_at, last.view.job.id)
        return WatchResult(changes, cursor, summary)
