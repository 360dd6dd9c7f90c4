"""BM25 keyword search latency as the index grows.

Real chunk texts (the laws of ``../shared/corpus/leis-federais/`` through the
platform's extraction and chunker) are stored again and again through the real
ChunkRepository.replace (chunks, postings, document frequencies, corpus statistics,
HNSW and GIN indexes), 100 chunks per document, up to each size; vectors are random
(keyword search never reads them). At each size every development question is asked
in keyword mode through the real repository, unfiltered and filtered by collection;
p50 / p95 / max latency are printed and written to ``bench/results/keyword_scale.json``.

    python -m bench.keyword_scale [--sizes 10000 50000 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import text

from adapters.chunking.structured import StructuredChunker
from adapters.embedding.blas import BlasE5TokenCounter
from adapters.extraction.formats import ParseLimits, extract
from adapters.postgres.database import create_engine, session_factory
from adapters.postgres.unit_of_work import SqlAlchemyUnitOfWork
from bench.common import ROOT, console, save, services, table
from bench.retrieval import CORPUS, QUESTIONS, load_questions
from domain.model import Chunk, Document, DocumentType
from domain.search import SearchFilter, keyword_terms

MODEL = "bench-model"
PER_DOCUMENT = 100


def corpus_texts() -> list[str]:
    chunker = StructuredChunker(BlasE5TokenCounter())
    texts: list[str] = []
    for path in sorted(CORPUS.glob("*.docx")):
        doc = extract(path.read_bytes(), DocumentType.DOCX, ParseLimits())
        texts.extend(d.text for d in chunker.chunk(doc))
    return texts


async def grow(sessions: Any, texts: list[str], start: int, target: int, rng: Any) -> None:
    n = start
    while n < target:
        k = min(PER_DOCUMENT, target - n)
        doc = Document(
            uuid.uuid4(),
            f"c{(n // PER_DOCUMENT) % 20}",
            f"d{n}.txt",
            DocumentType.TEXT,
            1,
            hashlib.sha256(str(n).encode()).hexdigest(),
            {},
            datetime.now(UTC),
            is_current=True,
        )
        vectors = rng.normal(size=(k, 384)).astype(np.float32)
        chunks = [
            Chunk(doc.id, i, texts[(n + i) % len(texts)], 1, None, vectors[i], MODEL, 384)
            for i in range(k)
        ]
        async with SqlAlchemyUnitOfWork(sessions) as uow:
            await uow.documents.add(doc, b"x")
            await uow.chunks.replace(doc.id, chunks)
            await uow.commit()
        n += k


async def ask(sessions: Any, queries: list[str], flt: SearchFilter) -> list[float]:
    took: list[float] = []
    for q in queries:
        t0 = time.perf_counter()
        async with SqlAlchemyUnitOfWork(sessions) as uow:
            await uow.chunks.search_by_keywords(q, MODEL, flt, 50)
        took.append((time.perf_counter() - t0) * 1000)
    return took


async def measure(database_url: str, sizes: list[int]) -> list[dict[str, Any]]:
    texts = corpus_texts()
    queries = [keyword_terms(q.query) for q in load_questions(QUESTIONS)]
    engine = create_engine(database_url, application_name="bench-keyword")
    sessions = session_factory(engine)
    rng = np.random.default_rng(7)
    rows: list[dict[str, Any]] = []
    try:
        current = 0
        for size in sizes:
            t0 = time.perf_counter()
            await grow(sessions, texts, current, size, rng)
            load_s = time.perf_counter() - t0
            current = size
            async with engine.begin() as conn:
                await conn.execute(text("ANALYZE"))
                postings = (
                    await conn.execute(text("SELECT count(*) FROM ai.keyword_postings"))
                ).scalar_one()
            await ask(sessions, queries[:5], SearchFilter())  # warm the cache
            plain = await ask(sessions, queries, SearchFilter())
            filtered = await ask(sessions, queries, SearchFilter(collection="c3"))
            row = {
                "chunks": size,
                "postings": int(postings),
                "store_chunks_per_s": (size - (rows[-1]["chunks"] if rows else 0)) / load_s,
                "p50_ms": float(np.percentile(plain, 50)),
                "p95_ms": float(np.percentile(plain, 95)),
                "max_ms": float(max(plain)),
                "filtered_p50_ms": float(np.percentile(filtered, 50)),
                "filtered_p95_ms": float(np.percentile(filtered, 95)),
            }
            rows.append(row)
            console.print(row)
    finally:
        await engine.dispose()
    return rows


def run(sizes: list[int]) -> dict[str, Any]:
    with services() as (database_url, _redis):
        rows = asyncio.run(measure(database_url, sizes))
    table(
        "BM25 keyword search latency (36 questions, top 50)",
        ["chunks", "postings", "p50 ms", "p95 ms", "max ms", "filtered p50", "filtered p95"],
        [
            [
                f"{r['chunks']:,}",
                f"{r['postings']:,}",
                r["p50_ms"],
                r["p95_ms"],
                r["max_ms"],
                r["filtered_p50_ms"],
                r["filtered_p95_ms"],
            ]
            for r in rows
        ],
    )
    payload = {"sizes": rows}
    path = save("keyword_scale", payload)
    console.print(f"wrote {path.relative_to(ROOT)}")
    return payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    args = parser.parse_args()
    run(sorted(args.sizes))


if __name__ == "__main__":
    main()
