"""ReembedChunks: every current chunk set into the configured embedding model, in the
background, through the same queue and workers (no extraction again).

The command only flips jobs: the COMPLETED jobs of current documents that hold chunks
of another model go back to PENDING as REEMBED jobs, behind every upload (the claim
takes uploads first). A worker embeds the stored chunk set in its usual slices and swaps
the vectors in one fenced transaction per document; until then the document answers
with its old vectors (searches embed the question with the previous model too while
it is configured, see SearchChunksHandler). Progress is the chunk counts per model in
/v1/stats and each job's progress; running the command again picks up whatever was
skipped (a job held at that moment) or failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from application.ports import Clock, Embedder, JobQueue, UnitOfWork
from domain.access import EVERYTHING, Access


@dataclass(frozen=True)
class ReembedChunks:
    collection: str | None = None
    access: Access = EVERYTHING


@dataclass(frozen=True)
class Reembedding:
    model: str  # the model the chunks are going to
    dimension: int
    queued: int  # documents sent back to the queue


class ReembedChunksHandler:
    def __init__(self, embedder: Embedder, queue: JobQueue, clock: Clock) -> None:
        self.embedder = embedder  # the configured model (the workers' model)
        self.queue = queue
        self.clock = clock

    async def __call__(self, cmd: ReembedChunks, uow: UnitOfWork) -> Reembedding:
        if cmd.collection is not None:
            cmd.access.require(cmd.collection)
        within = None if cmd.access.everything else cmd.access.within()
        async with uow:
            queued = await uow.jobs.queue_reembed(
                self.embedder.model_name,
                self.clock.now(),
                collection=cmd.collection,
                within=within,
            )
            await uow.commit()
        if queued:
            await self.queue.ring()
        return Reembedding(self.embedder.model_name, self.embedder.dimension, queued)
