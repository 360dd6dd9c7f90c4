"""How an HNSW graph's parameters trade recall for latency on a kept scale database.

``bench.scale --keep DIR`` leaves its databases loaded in DIR. This bench opens the one
of ``--size`` chunks and, for each graph asked for (``m`` / ``ef_construction``),
builds the HNSW index beside the schema's own (timed, and its size; kept for the next
run; ``--rebuild`` builds each again, the schema's own included: another random draw of
levels), then, in a transaction that drops every other HNSW index on ``ai.chunks`` (rolled
back afterwards, so the database is left as it was), asks the 100 queries of
``bench.scale`` for their top 10 current chunks at each ``ef_search`` and compares them
with exact search over every stored vector:

- strict recall@10: the share of the exact ten returned;
- near-tie recall: a returned chunk counts when its score is within 0.001 (or 0.005) of
  the exact tenth's (the corpus holds each passage several times with variations, so
  many chunks score nearly alike and the exact ten are partly a matter of noise);
- passage recall: of the distinct passages the exact ten come from (a passage and its
  variants are one, ``scale_corpus.Corpus``), the share that the answer holds a copy of;
- latency p50 / p95 (a first pass warms the index, the second is timed).

    python -m bench.hnsw_graph --keep DIR [--size 1000000] [--graph 16 64 --graph 32 128]
        [--ef 400 600] [--rebuild]

Writes ``bench/results/hnsw_graph.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector

from adapters.embedding.blas import BlasE5Embedder
from bench.common import console, save, table
from bench.keyword_scale import corpus_texts
from bench.scale import NEAREST_CURRENT, TOP_K, percentiles, queries_of
from bench.scale_corpus import (
    COPIES,
    DIM,
    HNSW_GRAPH,
    PER_DOCUMENT,
    Corpus,
    database_for,
    doc_id,
    hnsw_index,
    hnsw_index_name,
    pg_url,
    real_vectors,
    server,
    server_settings,
    shared_buffers_argument,
)

TIES = (0.001, 0.005)


async def ensure(
    conn: asyncpg.Connection, m: int, ef_construction: int, rebuild: bool = False
) -> dict[str, Any]:
    """The graph's index, built when missing, or built again (a new random draw of
    levels) when `rebuild`; timed when built."""
    name = hnsw_index_name(m, ef_construction)
    out: dict[str, Any] = {}
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"ai.{name}")
    if rebuild or not exists:
        console.print(f"building {name} ...")
        await conn.execute("SET maintenance_work_mem = '8GB'")
        await conn.execute("SET max_parallel_maintenance_workers = 1")
        build = f"REINDEX INDEX ai.{name}" if exists else hnsw_index(m, ef_construction)
        t = time.perf_counter()
        await conn.execute(build, timeout=None)
        out["build_s"] = time.perf_counter() - t
    out["bytes"] = await conn.fetchval("SELECT pg_relation_size($1::regclass)", f"ai.{name}")
    return out


async def measure(
    url: str,
    size: int,
    graphs: list[tuple[int, int]],
    efs: list[int],
    qv: np.ndarray,
    corpus: Corpus,
    rebuild: bool = False,
) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(pg_url(url), command_timeout=None)
    await register_vector(conn)
    try:
        built = {g: await ensure(conn, *g, rebuild) for g in graphs}
        rows = await conn.fetch(
            "SELECT c.id, c.document_id, d.filename, c.position, c.embedding FROM ai.chunks c "
            "JOIN ai.documents d ON d.id = c.document_id WHERE d.is_current AND c.embedding_dim = 384"
        )
        number = {doc_id(g): g for g in range(len(rows) // PER_DOCUMENT * 2)}
        stored = np.empty((len(rows), DIM), dtype=np.float32)
        passage = np.empty(len(rows), dtype=np.int64)
        at: dict[Any, int] = {}
        for i, r in enumerate(rows):
            stored[i] = r["embedding"]
            if r["document_id"] in number:
                j = number[r["document_id"]] * PER_DOCUMENT + r["position"]
            else:  # "extra-K.txt": the documents bench.scale's insert measure adds
                k = int(r["filename"].removeprefix("extra-").removesuffix(".txt"))
                j = size + k * PER_DOCUMENT + r["position"]
            passage[i] = corpus.passage_of(j)
            at[r["id"]] = i
        del rows
        scores = [stored @ q for q in qv]
        del stored
        truth = [np.argsort(-s)[:TOP_K] for s in scores]
        indexes = [hnsw_index_name(*g) for g in graphs]
        out = []
        for g in graphs:
            tx = conn.transaction()
            await tx.start()
            try:
                for other in indexes:
                    if other != hnsw_index_name(*g):
                        await conn.execute(f"DROP INDEX ai.{other}")  # this transaction only
                for ef in efs:
                    await conn.execute(f"SET LOCAL hnsw.ef_search = {ef}")
                    strict, near, passages, took = 0.0, dict.fromkeys(TIES, 0.0), 0.0, []
                    for s, top, q in zip(scores, truth, qv, strict=True):
                        await conn.fetch(NEAREST_CURRENT, q, ef)  # warm
                        t = time.perf_counter()
                        got = [at[r["id"]] for r in await conn.fetch(NEAREST_CURRENT, q, ef)]
                        took.append((time.perf_counter() - t) * 1000)
                        tenth = s[top[-1]]
                        strict += len(set(top.tolist()) & set(got)) / TOP_K
                        for e in TIES:
                            near[e] += sum(1 for i in got if s[i] >= tenth - e) / TOP_K
                        wanted = set(passage[top].tolist())
                        passages += len(wanted & set(passage[got].tolist())) / len(wanted)
                    k = len(qv)
                    out.append(
                        {
                            "m": g[0],
                            "ef_construction": g[1],
                            **built[g],
                            "ef_search": ef,
                            "recall_at_10": strict / k,
                            **{f"recall_within_{e}": v / k for e, v in near.items()},
                            "passage_recall": passages / k,
                            **percentiles(took),
                        }
                    )
                    console.print(out[-1])
            finally:
                await tx.rollback()
        return out
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", type=Path, required=True)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument(
        "--graph", type=int, nargs=2, action="append", metavar=("M", "EF_CONSTRUCTION")
    )
    parser.add_argument("--ef", type=int, nargs="+", default=[100, 400, 1000])
    parser.add_argument("--copies", type=int, default=COPIES, help="as bench.scale was run")
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="build each graph again first (HNSW draws levels at random: another build)",
    )
    shared_buffers_argument(parser)
    parser.add_argument("--save-as", default="hnsw_graph", help="bench/results/NAME.json")
    args = parser.parse_args()
    graphs = [tuple(g) for g in (args.graph or [list(HNSW_GRAPH), [32, 128]])]
    texts = corpus_texts()
    embedder = BlasE5Embedder()
    corpus = Corpus(texts, real_vectors(embedder, texts, query=False), args.copies)
    corpus.sized(args.size)
    qv = real_vectors(embedder, queries_of(corpus), query=True)
    with server(args.keep, args.shared_buffers_mb) as admin_url:
        url, loaded = database_for(admin_url, args.size, args.copies)
        if not loaded:
            raise SystemExit(
                f"{args.keep} holds no loaded database of {args.size:,} chunks: run bench.scale --keep first"
            )
        settings = server_settings(url)
        console.print(f"server settings: {settings}")
        results = asyncio.run(measure(url, args.size, graphs, args.ef, qv, corpus, args.rebuild))
    table(
        f"HNSW graphs at {args.size:,} chunks: recall@10 against exact search (100 queries)",
        [
            "m / ef_construction",
            "ef_search",
            "strict",
            "within 0.001",
            "within 0.005",
            "passages",
            "p50 ms",
            "p95 ms",
        ],
        [
            [
                f"{r['m']} / {r['ef_construction']}",
                str(r["ef_search"]),
                f"{r['recall_at_10']:.3f}",
                f"{r['recall_within_0.001']:.3f}",
                f"{r['recall_within_0.005']:.3f}",
                f"{r['passage_recall']:.3f}",
                r["p50_ms"],
                r["p95_ms"],
            ]
            for r in results
        ],
    )
    saved = save(
        args.save_as,
        {"chunks": args.size, "copies": args.copies, "server": settings, "graphs": results},
    )
    console.print(f"saved {saved}")


if __name__ == "__main__":
    main()
