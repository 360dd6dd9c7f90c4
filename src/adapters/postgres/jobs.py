"""The queue: jobs claimed with FOR UPDATE SKIP LOCKED, leases, the sweeper's reads.

The hot statements are raw SQL exactly as the seed writes them: statuses compared
through ``CAST(... AS ai.ingestionstatus)``, parameters always bound.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, func, insert, or_, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.postgres import counters
from adapters.postgres.rows import documents, job_from_row, job_values, jobs
from domain.model import ClaimedJob, IngestionJob, IngestionStatus, JobKind, Stage
from domain.progress import JobProgress

_INSERT_JOB = insert(jobs)


# The seed's claim, extended with the retry schedule and a lease. One statement:
# select with SKIP LOCKED and mark PROCESSING in the same transaction. Uploads before
# re-embedding (JobKind's values sort in priority order), oldest first, through the
# partial index ix_ingestion_queue_pending_kind_created_at.
_CLAIM_SQL = text(
    """
    WITH claimable AS (
        SELECT id
        FROM ai.ingestion_queue
        WHERE status = CAST('PENDING' AS ai.ingestionstatus)
          AND (next_attempt_at IS NULL OR next_attempt_at <= :ready_by)
        ORDER BY kind, created_at
        LIMIT :batch_size
        FOR UPDATE SKIP LOCKED
    )
    UPDATE ai.ingestion_queue AS q
    SET status = CAST(:processing AS ai.ingestionstatus),
        stage = :stage,
        attempts = q.attempts + 1,
        locked_by = :worker_id,
        locked_until = :locked_until,
        started_at = :now,
        finished_at = NULL,
        progress = NULL,
        updated_at = :now
    FROM claimable
    WHERE q.id = claimable.id
    RETURNING q.id, q.document_id, q.attempts, q.max_attempts, q.created_at, q.kind
    """
)

# Re-embedding: the COMPLETED jobs of current documents that hold chunks of another
# model go back to PENDING as "reembed" jobs, in one statement. The chunks keep
# answering until the worker swaps their vectors; SKIP LOCKED leaves alone a job the API
# or a worker holds right now (a later run of the command picks it up).
_REEMBED_SQL = """
    WITH targets AS (
        SELECT q.id
        FROM ai.ingestion_queue q JOIN ai.documents d ON d.id = q.document_id
        WHERE q.status = CAST('COMPLETED' AS ai.ingestionstatus)
          AND d.is_current
          AND {scope}
          AND EXISTS (
              SELECT 1 FROM ai.chunks c
              WHERE c.document_id = d.id AND c.model_name <> :model
          )
        FOR UPDATE OF q SKIP LOCKED
    )
    UPDATE ai.ingestion_queue AS q
    SET status = CAST('PENDING' AS ai.ingestionstatus),
        kind = :kind,
        stage = :stage,
        attempts = 0,
        failure_kind = NULL,
        last_error = NULL,
        error_detail = NULL,
        progress = NULL,
        next_attempt_at = :now,
        finished_at = NULL,
        updated_at = :now
    FROM targets
    WHERE q.id = targets.id
    RETURNING q.id
"""

_RENEW_SQL = text(
    """
    UPDATE ai.ingestion_queue
    SET locked_until = :locked_until, updated_at = :now
    WHERE id = ANY(:ids)
      AND locked_by = :worker_id
      AND status = CAST(:processing AS ai.ingestionstatus)
    """
)

_HELD_SQL = text(
    """
    SELECT id
    FROM ai.ingestion_queue
    WHERE id = ANY(:ids)
      AND locked_by = ANY(:tokens)
      AND status = CAST(:processing AS ai.ingestionstatus)
    """
)

_EXPIRED_SQL = text(
    """
    SELECT *
    FROM ai.ingestion_queue
    WHERE status = CAST(:processing AS ai.ingestionstatus)
      AND locked_until < :now
    ORDER BY locked_until
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)


class SqlAlchemyJobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, job: IngestionJob) -> None:
        await self.session.execute(_INSERT_JOB, {"id": job.id, **job_values(job)})

    async def get(self, job_id: uuid.UUID) -> IngestionJob | None:
        row = (await self.session.execute(select(jobs).where(jobs.c.id == job_id))).first()
        return job_from_row(row) if row else None

    async def get_for_document(self, document_id: uuid.UUID) -> IngestionJob | None:
        row = (
            await self.session.execute(select(jobs).where(jobs.c.document_id == document_id))
        ).first()
        return job_from_row(row) if row else None

    async def lock(self, job_id: uuid.UUID) -> IngestionJob | None:
        row = (
            await self.session.execute(select(jobs).where(jobs.c.id == job_id).with_for_update())
        ).first()
        return job_from_row(row) if row else None

    async def lock_for_document(self, document_id: uuid.UUID) -> IngestionJob | None:
        row = (
            await self.session.execute(
                select(jobs).where(jobs.c.document_id == document_id).with_for_update()
            )
        ).first()
        return job_from_row(row) if row else None

    async def save(self, job: IngestionJob) -> None:
        await self.session.execute(
            update(jobs).where(jobs.c.id == job.id).values(**job_values(job))
        )

    async def claim(
        self,
        *,
        batch_size: int,
        worker_id: str,
        lease_seconds: float,
        now: datetime,
        ready_by: datetime | None = None,
    ) -> list[ClaimedJob]:
        rows = await self.session.execute(
            _CLAIM_SQL,
            {
                "now": now,
                "ready_by": ready_by or now,
                "batch_size": batch_size,
                "processing": IngestionStatus.PROCESSING.value,
                "stage": Stage.CLAIMED.value,
                "worker_id": worker_id,
                "locked_until": now + timedelta(seconds=lease_seconds),
            },
        )
        claimed = sorted(rows, key=lambda r: (r.kind, r.created_at))
        return [
            ClaimedJob(r.id, r.document_id, r.attempts, r.max_attempts, worker_id, JobKind(r.kind))
            for r in claimed
        ]

    async def queue_reembed(
        self,
        model_name: str,
        now: datetime,
        collection: str | None = None,
        within: tuple[str, ...] | None = None,
    ) -> int:
        clauses, params = (
            ["TRUE"],
            {
                "model": model_name,
                "now": now,
                "kind": JobKind.REEMBED.value,
                "stage": Stage.QUEUED.value,
            },
        )
        if collection is not None:
            clauses.append("d.collection = :collection")
            params["collection"] = collection
        if within is not None:
            clauses.append("d.collection = ANY(:within)")
            params["within"] = list(within)
        sql = text(_REEMBED_SQL.replace("{scope}", " AND ".join(clauses)))
        return len(list(await self.session.execute(sql, params)))

    async def renew_leases(
        self, claims: Sequence[ClaimedJob], lease_seconds: float, now: datetime
    ) -> int:
        total = 0
        by_token: dict[str, list[uuid.UUID]] = {}
        for c in claims:
            by_token.setdefault(c.lease_token, []).append(c.job_id)
        for token, ids in by_token.items():
            result = await self.session.execute(
                _RENEW_SQL,
                {
                    "ids": ids,
                    "worker_id": token,
                    "processing": IngestionStatus.PROCESSING.value,
                    "locked_until": now + timedelta(seconds=lease_seconds),
                    "now": now,
                },
            )
            total += int(getattr(result, "rowcount", 0) or 0)
        return total

    async def held(self, claims: Sequence[ClaimedJob]) -> set[uuid.UUID]:
        if not claims:
            return set()
        rows = await self.session.execute(
            _HELD_SQL,
            {
                "ids": [c.job_id for c in claims],
                "tokens": sorted({c.lease_token for c in claims}),
                "processing": IngestionStatus.PROCESSING.value,
            },
        )
        held = {r.id for r in rows}
        return {c.job_id for c in claims if c.job_id in held}

    async def set_stage(self, claims: Sequence[ClaimedJob], stage: Stage, now: datetime) -> None:
        if not claims:
            return
        conditions = [
            and_(jobs.c.id == c.job_id, jobs.c.locked_by == c.lease_token) for c in claims
        ]
        await self.session.execute(
            update(jobs)
            .where(or_(*conditions), jobs.c.status == IngestionStatus.PROCESSING)
            .values(stage=stage.value, updated_at=now)
        )

    async def record_progress(
        self, updates: Sequence[tuple[ClaimedJob, JobProgress]], now: datetime
    ) -> None:
        for claim, progress in updates:
            await self.session.execute(
                update(jobs)
                .where(
                    jobs.c.id == claim.job_id,
                    jobs.c.locked_by == claim.lease_token,
                    jobs.c.status == IngestionStatus.PROCESSING,
                )
                .values(progress=progress.as_json(), updated_at=now)
            )

    async def expired(self, now: datetime, limit: int) -> list[IngestionJob]:
        rows = await self.session.execute(
            _EXPIRED_SQL,
            {"processing": IngestionStatus.PROCESSING.value, "now": now, "limit": limit},
        )
        return [job_from_row(r) for r in rows]

    async def count_ready(self, now: datetime) -> int:
        return int(
            (
                await self.session.execute(
                    text(
                        "SELECT count(*) FROM ai.ingestion_queue "
                        "WHERE status = CAST('PENDING' AS ai.ingestionstatus) "
                        "AND (next_attempt_at IS NULL OR next_attempt_at <= :now)"
                    ),
                    {"now": now},
                )
            ).scalar_one()
        )

    async def count_stalled(self, now: datetime) -> int:
        return int(
            (
                await self.session.execute(
                    text(
                        "SELECT count(*) FROM ai.ingestion_queue "
                        "WHERE status = CAST('PROCESSING' AS ai.ingestionstatus) "
                        "AND locked_until < :now"
                    ),
                    {"now": now},
                )
            ).scalar_one()
        )

    async def counts_by_status(self) -> Mapping[IngestionStatus, int]:
        counts = dict.fromkeys(IngestionStatus, 0)
        for status, n in (await counters.read(self.session, "jobs")).items():
            counts[IngestionStatus(status)] = n
        return counts

    async def fold_counts(self) -> int:
        return await counters.fold(self.session)

    async def oldest_pending_created_at(self) -> datetime | None:
        value = (
            await self.session.execute(
                text(
                    "SELECT min(created_at) FROM ai.ingestion_queue "
                    "WHERE status = CAST('PENDING' AS ai.ingestionstatus)"
                )
            )
        ).scalar_one_or_none()
        return value if isinstance(value, datetime) else None

    async def finished_since(
        self, since: datetime, within: tuple[str, ...] | None = None
    ) -> Mapping[IngestionStatus, int]:
        stmt = (
            select(jobs.c.status, func.count())
            .where(
                jobs.c.status.in_([IngestionStatus.COMPLETED, IngestionStatus.FAILED]),
                jobs.c.finished_at >= since,
            )
            .group_by(jobs.c.status)
        )
        if within is not None:
            stmt = stmt.join(documents, documents.c.id == jobs.c.document_id).where(
                documents.c.collection.in_(within)
            )
        counts = {IngestionStatus.COMPLETED: 0, IngestionStatus.FAILED: 0}
        for status, n in await self.session.execute(stmt):
            counts[IngestionStatus(status)] = int(n)
        return counts

    async def list(
        self,
        status: IngestionStatus | None,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
        within: tuple[str, ...] | None = None,
    ) -> list[IngestionJob]:
        stmt = select(jobs)
        if within is not None:
            stmt = stmt.join(documents, documents.c.id == jobs.c.document_id).where(
                documents.c.collection.in_(within)
            )
        if status is not None:
            stmt = stmt.where(jobs.c.status == status)
        if after is not None:
            stmt = stmt.where(tuple_(jobs.c.created_at, jobs.c.id) < tuple_(*after))
        stmt = stmt.order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit)
        return [job_from_row(r) for r in await self.session.execute(stmt)]
