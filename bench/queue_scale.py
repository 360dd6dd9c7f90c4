"""The queue and the operator's reads as the platform grows (issue 19, the queue's part).

Documents and their jobs are written in bulk with SQL into the real schema (migrated
to head: the same tables, constraints, triggers and indexes the API writes; loading a
million through the API would take an hour here): at each size, that many documents of
which `--pending` are PENDING and the rest COMPLETED, spread over 20 collections. Then,
through the real repositories and use cases:

- claim: `JobRepository.claim` of a batch of 16, the worker's statement (SKIP LOCKED,
  leases), with a pending queue of `--pending` jobs;
- stats: `GetStats` (what `GET /v1/stats` and the console's overview run), and apart
  its two counts that grow with the queue (jobs by status, ready jobs); no chunks are
  loaded here, so its chunk counts per model cost nothing in these figures;
- listings: `Documents.listing` newest first (the console's and `GET /v1/documents`'
  first page), by status PENDING, by collection, by metadata.

Prints p50 / p95 per operation and size; writes `bench/results/queue_scale.json`.

    python -m bench.queue_scale [--sizes 100000 1000000] [--pending 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import text

from adapters.clock import SystemClock
from adapters.postgres.database import create_engine, session_factory
from adapters.postgres.unit_of_work import SqlAlchemyUnitOfWork
from application.ports import DocumentFilter
from application.use_cases.documents import Documents
from application.use_cases.stats import GetStats
from bench.common import console, save, services, table
from domain.model import IngestionStatus

COLLECTIONS = 20
ROUNDS = 40

# `n` documents numbered from `start`: every 20th in each collection; PENDING for the
# last `pending` of them (the newest), COMPLETED before; a content row each
_LOAD = """
INSERT INTO ai.documents (id, collection, filename, content_type, size_bytes, sha256,
                          metadata, source_key, key_origin, version, is_current,
                          indexed_at, created_at, updated_at)
SELECT md5('doc' || g)::uuid, 'colecao-' || (g % {collections}), 'doc-' || g || '.txt',
       'text/plain', 1000, md5('sha' || g) || md5('sha2' || g),
       jsonb_build_object('orgao', 'orgao-' || (g % 7), 'ano', 2000 + g % 25),
       'sha256:' || md5('sha' || g) || md5('sha2' || g), 'content', 1,
       g < :first_pending, CASE WHEN g < :first_pending THEN CAST(:t0 AS timestamptz) END,
       CAST(:t0 AS timestamptz) + g * interval '1 millisecond', CAST(:t0 AS timestamptz) + g * interval '1 millisecond'
FROM generate_series(:start, :stop - 1) AS g;

INSERT INTO ai.ingestion_queue (id, document_id, status, stage, attempts, max_attempts,
                                next_attempt_at, created_at, updated_at, finished_at)
SELECT md5('job' || g)::uuid, md5('doc' || g)::uuid,
       CASE WHEN g < :first_pending THEN 'COMPLETED' ELSE 'PENDING' END,
       CASE WHEN g < :first_pending THEN 'done' ELSE 'queued' END,
       CASE WHEN g < :first_pending THEN 1 ELSE 0 END, 3,
       CASE WHEN g < :first_pending THEN NULL ELSE CAST(:t0 AS timestamptz) END,
       CAST(:t0 AS timestamptz) + g * interval '1 millisecond', CAST(:t0 AS timestamptz) + g * interval '1 millisecond',
       CASE WHEN g < :first_pending THEN CAST(:t0 AS timestamptz) + g * interval '1 millisecond' END
FROM generate_series(:start, :stop - 1) AS g;
"""


async def load(engine: Any, start: int, stop: int, pending: int, t0: datetime) -> float:
    """Documents [start, stop); the newest `pending` of all so far are PENDING."""
    began = time.perf_counter()
    async with engine.begin() as conn:
        # the earlier batch's PENDING jobs become COMPLETED: one pending queue of `pending`
        await conn.execute(
            text(
                "UPDATE ai.ingestion_queue SET status = 'COMPLETED', stage = 'done', "
                "next_attempt_at = NULL, finished_at = created_at "
                "WHERE status = CAST('PENDING' AS ai.ingestionstatus)"
            )
        )
        await conn.execute(text("UPDATE ai.documents SET is_current = true WHERE NOT is_current"))
        params = {"start": start, "stop": stop, "first_pending": stop - pending, "t0": t0}
        for statement in _LOAD.format(collections=COLLECTIONS).split(";"):
            if statement.strip():
                await conn.execute(text(statement), params)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE ai.documents"))
        await conn.execute(text("VACUUM ANALYZE ai.ingestion_queue"))
    return time.perf_counter() - began


async def timed(label: str, took: dict[str, list[float]], work: Any, expect: int) -> None:
    """Time `work`; it must return `expect` items (nothing is timed on an empty answer)."""
    t = time.perf_counter()
    got = await work
    took.setdefault(label, []).append((time.perf_counter() - t) * 1000)
    if expect and len(got) != expect:
        raise RuntimeError(f"{label}: {len(got)} items, expected {expect}")


async def _as_list(work: Any) -> list[Any]:
    return [await work]


async def operator_reads(
    uow: Callable[[], SqlAlchemyUnitOfWork], took: dict[str, list[float]], now: datetime
) -> None:
    """One round of the worker's claim and the operator's reads, timed into `took`."""
    stats, documents = GetStats(SystemClock()), Documents()
    async with uow() as u:
        await timed(
            "claim 16",
            took,
            u.jobs.claim(batch_size=16, worker_id="bench", lease_seconds=60, now=now),
            16,
        )
        await u.rollback()  # the queue stays as it was
    await timed("stats", took, _as_list(stats(uow())), 1)
    async with uow() as u:  # the parts of stats that grow with the queue
        await timed("  jobs by status", took, _as_list(u.jobs.counts_by_status()), 1)
        await timed("  ready count", took, _as_list(u.jobs.count_ready(now)), 1)
        await timed("  chunks by model", took, _as_list(u.chunks.models()), 1)
    await timed("list newest 50", took, documents.listing(DocumentFilter(), uow()), 50)
    await timed(
        "list PENDING 50",
        took,
        documents.listing(DocumentFilter(status=IngestionStatus.PENDING), uow()),
        50,
    )
    await timed(
        "list one collection 50",
        took,
        documents.listing(DocumentFilter(collection="colecao-3"), uow()),
        50,
    )
    await timed(
        "list by metadata 50",
        took,
        documents.listing(DocumentFilter(metadata={"orgao": "orgao-3"}), uow()),
        50,
    )


async def measure(database_url: str, sizes: list[int], pending: int) -> list[dict[str, Any]]:
    engine = create_engine(database_url, application_name="bench-queue-scale", pool_size=4)
    sessions = session_factory(engine)

    def uow() -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(sessions)

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    out, loaded = [], 0
    try:
        for size in sizes:
            seconds = await load(engine, loaded, size, min(pending, size), t0)
            loaded = size
            took: dict[str, list[float]] = {}
            for round_ in range(ROUNDS + 1):  # the first round warms the cache
                await operator_reads(uow, took, t0 + timedelta(days=30))
                if round_ == 0:
                    took.clear()
            out.append(
                {
                    "documents": size,
                    "pending": min(pending, size),
                    "load_seconds": seconds,
                    "latency": {
                        k: {
                            "p50_ms": float(np.percentile(v, 50)),
                            "p95_ms": float(np.percentile(v, 95)),
                        }
                        for k, v in took.items()
                    },
                }
            )
            console.print(f"{size:,} documents loaded in {seconds:.0f} s")
    finally:
        await engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--pending", type=int, default=100_000)
    args = parser.parse_args()
    with services() as (database_url, _redis):
        results = asyncio.run(measure(database_url, sorted(args.sizes), args.pending))
    rows = []
    for r in results:
        for op, v in r["latency"].items():
            rows.append([f"{r['documents']:,}", op, v["p50_ms"], v["p95_ms"]])
    table(
        f"The queue and the operator's reads ({args.pending:,} PENDING)",
        ["documents", "operation", "p50 ms", "p95 ms"],
        rows,
    )
    console.print(f"saved {save('queue_scale', {'sizes': results})}")


if __name__ == "__main__":
    main()
