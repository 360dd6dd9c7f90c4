"""What "current versions only" costs search: the same queries, in the same database,
with the filter searches apply by default and without it (include_superseded).

Real chunk texts of the development corpus are stored through the repositories (BM25
postings and statistics, HNSW and GIN indexes; random vectors, as bench/keyword_scale
does), then the 36 questions run in keyword mode and 36 random vectors in vector mode,
top 50, alternating the two filters over three rounds (the first one only warms the
cache). Prints p50/p95 per mode and filter and the plan of the vector query.

    python -m bench.current_filter [--chunks 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import numpy as np
from sqlalchemy import text

from adapters.postgres.database import create_engine, session_factory
from adapters.postgres.unit_of_work import SqlAlchemyUnitOfWork
from bench.common import console, save, services, table
from bench.keyword_scale import MODEL, corpus_texts, grow
from bench.retrieval import QUESTIONS, load_questions
from domain.search import SearchFilter, keyword_terms

FILTERS = {
    "current only (default)": SearchFilter(),
    "all versions": SearchFilter(include_superseded=True),
}


async def measure(database_url: str, chunks: int) -> dict[str, Any]:
    engine = create_engine(database_url, application_name="bench-current-filter")
    sessions = session_factory(engine)
    rng = np.random.default_rng(3)
    try:
        await grow(sessions, corpus_texts(), 0, chunks, rng)
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
        queries = [keyword_terms(q.query) for q in load_questions(QUESTIONS)]
        vectors = rng.normal(size=(len(queries), 384)).astype(np.float32)
        took: dict[tuple[str, str], list[float]] = {}
        for round_ in range(3):
            for label, flt in FILTERS.items():
                for mode in ("vector", "keyword"):
                    for i, query in enumerate(queries):
                        t0 = time.perf_counter()
                        async with SqlAlchemyUnitOfWork(sessions) as uow:
                            if mode == "vector":
                                await uow.chunks.search_by_vector(vectors[i], MODEL, flt, 50)
                            else:
                                await uow.chunks.search_by_keywords(query, MODEL, flt, 50)
                        if round_:
                            took.setdefault((label, mode), []).append(
                                (time.perf_counter() - t0) * 1000
                            )
        async with engine.connect() as conn:
            plan = (
                (
                    await conn.execute(
                        text(
                            "EXPLAIN SELECT c.id FROM ai.chunks c JOIN ai.documents d "
                            "ON d.id = c.document_id WHERE c.embedding_dim = 384 "
                            "AND c.model_name = :m AND d.is_current ORDER BY "
                            "(c.embedding::vector(384)) <=> CAST(:q AS vector(384)) LIMIT 50"
                        ),
                        {"m": MODEL, "q": "[" + ",".join(["0.1"] * 384) + "]"},
                    )
                )
                .scalars()
                .all()
            )
    finally:
        await engine.dispose()
    rows = {
        f"{label} / {mode}": {
            "p50_ms": float(np.percentile(v, 50)),
            "p95_ms": float(np.percentile(v, 95)),
        }
        for (label, mode), v in took.items()
    }
    uses_hnsw = any("ix_chunks_embedding_384_hnsw" in line for line in plan)
    return {"chunks": chunks, "latency": rows, "vector_plan_uses_hnsw": uses_hnsw}


def run(chunks: int) -> dict[str, Any]:
    with services() as (database_url, _redis):
        result = asyncio.run(measure(database_url, chunks))
    table(
        f"Search with and without the current-version filter ({chunks:,} chunks, top 50)",
        ["filter / mode", "p50 ms", "p95 ms"],
        [[k, f"{v['p50_ms']:.1f}", f"{v['p95_ms']:.1f}"] for k, v in result["latency"].items()],
    )
    console.print(f"vector plan uses the HNSW index: {result['vector_plan_uses_hnsw']}")
    console.print(f"saved {save('current_filter', result)}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=10_000)
    run(parser.parse_args().chunks)


if __name__ == "__main__":
    main()
