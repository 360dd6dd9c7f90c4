"""The oracle of the end-to-end tests, and what they share to drive real processes.

Every accepted document ends COMPLETED, with exactly one chunk set (chunk_count rows
at positions 0..n-1, each with a vector of the model), or FAILED with a reason and no
chunks, unless an earlier attempt stored a chunk set (``indexed_at``): a failed or
cancelled reprocess leaves that set answering (docs/decisions/0011-versions.md).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from application.ports import UnitOfWorkFactory
from tests.integration.conftest import auth
from tests.integration.live import Process, start_process

MODEL = "multilingual-e5-small-q4"


async def upload(
    client: httpx.AsyncClient, key: str, name: str, data: bytes, collection: str = "default"
) -> uuid.UUID:
    response = await client.post(
        "/v1/documents",
        headers=auth(key),
        files={"file": (name, data)},
        data={"collection": collection},
    )
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["id"])


async def statuses(engine: AsyncEngine) -> dict[uuid.UUID, tuple[str, int, str | None]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT document_id, status, attempts, last_error FROM ai.ingestion_queue")
        )
        return {r.document_id: (r.status, r.attempts, r.last_error) for r in rows}


async def wait_for_terminal(
    engine: AsyncEngine, expected: int, within_s: float, processes: Sequence[Process] = ()
) -> dict[uuid.UUID, tuple[str, int, str | None]]:
    deadline = time.monotonic() + within_s
    while True:
        state = await statuses(engine)
        done = [s for s in state.values() if s[0] in ("COMPLETED", "FAILED")]
        if len(state) == expected and len(done) == expected:
            return state
        for p in processes:
            assert p.proc.poll() is None, f"{p.name} died:\n{p.log()[-3000:]}"
        if time.monotonic() > deadline:
            counts: dict[str, int] = {}
            for s in state.values():
                counts[s[0]] = counts.get(s[0], 0) + 1
            logs = "\n".join(f"--- {p.name}\n{p.log()[-2000:]}" for p in processes)
            raise AssertionError(f"not finished after {within_s:.0f}s: {counts}\n{logs}")
        await asyncio.sleep(0.2)


async def assert_one_chunk_set_each(engine: AsyncEngine) -> int:
    """Every COMPLETED document has exactly one chunk set with vectors of the model."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    """
                    SELECT d.id, d.chunk_count, q.status, d.indexed_at,
                           count(c.id) AS n,
                           coalesce(min(c.position), 0) AS lo,
                           coalesce(max(c.position), -1) AS hi,
                           count(DISTINCT c.position) AS distinct_positions,
                           bool_and(c.model_name = :model AND c.embedding_dim = 384
                                    AND vector_dims(c.embedding) = 384) AS model_ok
                    FROM ai.documents d
                    JOIN ai.ingestion_queue q ON q.document_id = d.id
                    LEFT JOIN ai.chunks c ON c.document_id = d.id
                    GROUP BY d.id, d.chunk_count, q.status, d.indexed_at
                    """
                ),
                {"model": MODEL},
            )
        ).all()
    total = 0
    for r in rows:
        if r.status == "COMPLETED" or r.indexed_at is not None:
            assert r.n > 0 and r.n == r.chunk_count == r.distinct_positions, r
            assert (r.lo, r.hi) == (0, r.n - 1), r
            assert r.model_ok, r
            assert r.indexed_at is not None, r  # the store recorded when
            total += r.n
        else:
            assert r.n == 0, r  # a failed document leaves no chunks behind
    return total


def worker_env(**overrides: str) -> dict[str, str]:
    env = {
        "COGEP_EMBEDDING_THREADS": "1",
        "COGEP_BATCH_SIZE": "8",
        "COGEP_LEASE_SECONDS": "30",
        "COGEP_EXTRACTION_TIMEOUT_S": "20",
        "COGEP_SWEEP_INTERVAL_S": "0.5",
        "COGEP_WORKER_METRICS_PORT": "0",  # tests that scrape one give it a free port
    }
    env.update(overrides)
    return env


def start_worker(name: str, url: str, redis_url: str, tmp_path: Path, **env: str) -> Process:
    return start_process(name, "worker", url, redis_url, tmp_path, **worker_env(**env))


def start_beat(url: str, redis_url: str, tmp_path: Path, **env: str) -> Process:
    return start_process("beat", "beat", url, redis_url, tmp_path, **worker_env(**env))


def chunks_expected(files: Sequence[tuple[bytes, str]]) -> int:
    """How many chunks the worker's own pipeline (extraction with the legal pass, the
    chunker with the model's tokenizer) makes of these (data, media type) files, in this
    process: a fleet that loses or duplicates nothing stores exactly that many."""
    from adapters.extraction.formats import ParseLimits, extract
    from domain.model import DocumentType
    from entrypoints.container import build_container
    from entrypoints.settings import Settings

    chunker = build_container(Settings(_env_file=None)).chunker()
    return sum(
        len(chunker.chunk(extract(data, DocumentType(kind), ParseLimits()))) for data, kind in files
    )


async def plant_expired_lease(uow_factory: UnitOfWorkFactory, claimed_ago_s: float) -> uuid.UUID:
    """A document whose job is PROCESSING under a one-second lease taken `claimed_ago_s`
    ago by a worker that no longer exists (the sweeper's work). Returns the document id."""
    import hashlib
    from datetime import UTC, datetime, timedelta

    from domain.model import Document, DocumentType, IngestionJob, Stage

    now = datetime.now(UTC)
    claimed = now - timedelta(seconds=claimed_ago_s)
    data = f"Art. 1º Aviso {uuid.uuid4().hex} de um trabalhador que caiu.".encode()
    doc = Document(
        id=uuid.uuid4(),
        collection="orfaos",
        filename="orfao.txt",
        content_type=DocumentType.TEXT,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        metadata={},
        created_at=now,
    )
    job = IngestionJob.new(doc.id, claimed, max_attempts=3)
    job.claim("gone-host:1:x", claimed, timedelta(seconds=1))
    job.advance(Stage.EMBEDDING, now)
    async with uow_factory() as uow:
        await uow.documents.add(doc, data)
        await uow.jobs.add(job)
        await uow.commit()
    return doc.id


async def worker_metrics(port: int) -> dict[str, float]:
    """A worker's /metrics as {"name" or "name{label=value,...}": value}."""
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient() as http:
        scraped = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(scraped):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out
