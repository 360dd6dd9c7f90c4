"""Row counters kept by triggers (migration 0011): jobs by status, chunks by model.

Every statement that inserts, deletes or updates jobs or chunks appends its net change
per key to ``row_count_deltas`` (insert-only, so writers never wait on each other); the
sweeper folds the deltas into ``row_counts``; a read sums both, so it is exact at once
and costs a few rows however many jobs and chunks there are.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_READ = text(
    """
    SELECT key, sum(n) AS n FROM (
        SELECT key, n FROM ai.row_counts WHERE counter = :counter
        UNION ALL
        SELECT key, n FROM ai.row_count_deltas WHERE counter = :counter
    ) AS c
    GROUP BY key HAVING sum(n) <> 0
    """
)
# one folder at a time (the lock ends with the transaction); totals in key order
_FOLD = text(
    """
    WITH moved AS (DELETE FROM ai.row_count_deltas RETURNING counter, key, n),
    summed AS (
        SELECT counter, key, sum(n) AS n FROM moved GROUP BY counter, key
    ),
    folded AS (
        INSERT INTO ai.row_counts AS t (counter, key, n)
        SELECT counter, key, n FROM summed ORDER BY counter, key
        ON CONFLICT (counter, key) DO UPDATE SET n = t.n + excluded.n
    )
    SELECT count(*) FROM moved
    """
)


async def read(session: AsyncSession, counter: str) -> dict[str, int]:
    rows = await session.execute(_READ, {"counter": counter})
    return {str(key): int(n) for key, n in rows}


async def fold(session: AsyncSession) -> int:
    """Fold the deltas into the totals, in the caller's transaction; how many deltas
    were folded (0 when another folder holds the lock)."""
    locked = await session.execute(
        text("SELECT pg_try_advisory_xact_lock(hashtext('ai.row_counts'))")
    )
    if not locked.scalar_one():
        return 0
    return int((await session.execute(_FOLD)).scalar_one())
