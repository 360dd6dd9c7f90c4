"""Search, ingest and the queue at 100k and 1M chunks (issue 19).

For each size, a database of its own in the same server, migrated to head (the real
schema, every index and trigger), is filled with:

- chunks of realistic Portuguese legal text, 100 per document, over 20 collections and
  7 bodies (``metadata.orgao``); one document in 20 is a superseded version
  (``is_current`` false). The text is made of passages, each stored 8 times (the
  passage and 7 variants, ``--copies``): the chunks of the 117 development laws
  (``../shared/corpus/leis-federais/`` through the platform's extraction and chunker),
  then splices (the opening of one law chunk and the ending of another, cut at
  sentence ends) until there are size / 8 passages; a variant replaces about one word
  in seven by a word drawn from the corpus' own word stream, so term frequencies stay
  Zipfian and no two chunks are equal. ``--copies 0`` has the shape of the corpus
  before 2026-12-07, every chunk a copy of one of the 7,609 law chunks (about 130
  copies of each at a million: islands of near-duplicates, docs/decisions/0018);
- vectors: every law chunk carries its real e5 vector, and so do two real-model
  slices, 2,048 variants and 2,048 splices; the bulk gets fast stand-ins (a splice:
  the length-weighted mix of its two sources' real vectors moved by a residual drawn
  from the Gaussian fitted to the slice's real residuals; a variant: its passage's
  vector moved by a displacement drawn from the Gaussian fitted to the slice's real
  displacements; ``scale_corpus.Corpus``), and the run prints how the stand-ins
  compare with the real slices; the questions are embedded by the real model;
- BM25 postings written by the repositories' own statements (``KeywordIndex.post``,
  per document), the term and corpus statistics summed once at the end;
- documents and jobs as ``bench.queue_scale`` writes them, plus 100,000 PENDING jobs.

Loading uses COPY with the indexes dropped, then builds each index (timed, and its
size) as an operator loading a corpus would (the timings are kept beside the data with
``--keep``). Then, through the real repositories and the search use case:

- latency p50 / p95 of vector, keyword and hybrid search (top 10), 100 queries (the 36
  development questions and 64 sentences of the corpus), unfiltered (current versions)
  and filtered by collection, metadata, one document and 90 documents (just under the
  exact search's cap); a first pass (cold: nothing of these queries in the caches) and
  three more (warm). Hybrid goes through
  ``SearchChunksHandler`` with side reads, as the API wires it (its vector and keyword
  lists read at once on two connections); its query vectors are the real model's,
  computed before (the model's own time per query is printed apart); and once more
  unfiltered with the real model embedding each question, as the API serves it (the
  model runs while the keyword list is read);
- vector recall@10 against exact search (numpy over every stored vector);
- keyword: the bounded read's top 10 against BM25 scored over every match;
- insert throughput: ``ChunkRepository.replace`` stores 20 more documents of 100 chunks
  into the fully indexed table;
- the worker's claim with 100k PENDING, ``GetStats`` and the listings
  (``bench.queue_scale.operator_reads``).

Writes ``bench/results/scale.json``.

    python -m bench.scale [--sizes 100000 1000000] [--keep DIR] [--copies 8]

``--keep DIR`` keeps the server's data in DIR: a second run finds the databases
loaded and only measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector
from sqlalchemy import text

from adapters.embedding.blas import BlasE5Embedder
from adapters.postgres.chunks import EF_SEARCH_STEPS
from adapters.postgres.database import create_engine, session_factory
from adapters.postgres.keyword_index import bm25_every_match_sql, bm25_params
from adapters.postgres.unit_of_work import SqlAlchemyUnitOfWork
from application.use_cases.search import SearchChunks, SearchChunksHandler
from bench.common import console, save, table
from bench.keyword_scale import corpus_texts
from bench.queue_scale import operator_reads
from bench.retrieval import QUESTIONS, load_questions
from bench.scale_corpus import (
    CACHE,
    COPIES,
    DIM,
    MODEL,
    PER_DOCUMENT,
    SLICE,
    T0,
    Corpus,
    database_for,
    doc_id,
    insert_throughput,
    load,
    pg_url,
    real_vectors,
    server,
    server_settings,
    shared_buffers_argument,
    sizes_of,
)
from domain.search import SearchFilter, SearchMode, keyword_terms

TOP_K = 10
WARM_PASSES = 3

# -- measuring ----------------------------------------------------------------------------


class Precomputed:
    """The query vectors the real model made before the clock started, by query."""

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors
        self.model_name = MODEL
        self.dimension = DIM

    async def embed_query(self, query: str) -> Sequence[float]:
        return list(map(float, self.vectors[query]))

    async def embed_passages(self, texts: Sequence[str]) -> list[Sequence[float]]:
        raise NotImplementedError  # searching embeds no passage


def percentiles(values: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": float(np.percentile(values, 50)),
        "p95_ms": float(np.percentile(values, 95)),
        "max_ms": float(max(values)),
    }


async def search_latency(
    url: str,
    size: int,
    queries: list[str],
    vectors: dict[str, np.ndarray],
    model: BlasE5Embedder,
) -> dict[str, Any]:
    engine = create_engine(url, application_name="bench-scale-search", pool_size=3)
    sessions = session_factory(engine)

    def reads() -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(sessions)

    one_doc = doc_id(3)
    # documents spread over the corpus whose chunks stay just under the exact search's
    # cap: the graph is skipped and every one of their chunks is scored
    documents = size // PER_DOCUMENT
    near_cap = tuple(doc_id(g) for g in range(5, documents, documents // 90)[:90])
    filters = {
        "current versions": SearchFilter(),
        "one collection": SearchFilter(collection="colecao-3"),
        "metadata": SearchFilter(metadata={"orgao": "orgao-3"}),
        "one document": SearchFilter(document_ids=(one_doc,)),
        "90 documents": SearchFilter(document_ids=near_cap),
    }
    out: dict[str, Any] = {}

    async def vector(q: str, flt: SearchFilter) -> list[Any]:
        async with reads() as uow:
            return await uow.chunks.search_by_vector(list(vectors[q]), MODEL, flt, TOP_K)

    async def keyword(q: str, flt: SearchFilter) -> list[Any]:
        async with reads() as uow:
            return await uow.chunks.search_by_keywords(keyword_terms(q), None, flt, TOP_K)

    def hybrid_by(handler: SearchChunksHandler) -> Any:
        async def hybrid(q: str, flt: SearchFilter) -> list[Any]:
            cmd = SearchChunks(q, TOP_K, SearchMode.HYBRID, flt)
            return (await handler(cmd, reads())).hits

        return hybrid

    # as the API wires it: a hybrid search reads its two lists at once (side reads)
    hybrid = hybrid_by(SearchChunksHandler(Precomputed(vectors), side_reads=reads))
    # the question embedded by the real model, as the API serves a hybrid search
    as_served = hybrid_by(SearchChunksHandler(model, side_reads=reads))

    try:
        for label, flt in filters.items():
            modes = [("vector", vector), ("keyword", keyword), ("hybrid", hybrid)]
            if label == "current versions":
                modes.append(("hybrid with the model", as_served))
            for mode, run in modes:
                cold: list[float] = []
                warm: list[float] = []
                empty = 0
                for p in range(1 + WARM_PASSES):
                    for q in queries:
                        t = time.perf_counter()
                        hits = await run(q, flt)
                        (cold if p == 0 else warm).append((time.perf_counter() - t) * 1000)
                        empty += p == 0 and not hits
                out[f"{mode} / {label}"] = {
                    "cold": percentiles(cold),
                    "warm": percentiles(warm),
                    "empty_answers": empty,
                }
                console.print(
                    f"  {mode} / {label}: warm p50 {np.percentile(warm, 50):.1f} "
                    f"p95 {np.percentile(warm, 95):.1f} ms"
                )
        out["vector_recall_at_10"] = await vector_recall(url, sessions, queries, vectors)
        out["keyword_exactness"] = await keyword_exactness(engine, sessions, queries)
    finally:
        await engine.dispose()
    return out


# the top 10 current chunks among the `$2` nearest by the HNSW graph (ef_search >= $2)
NEAREST_CURRENT = (
    "SELECT c.id, c.document_id, c.position FROM (SELECT c.id, "
    "(c.embedding::vector(384)) <=> $1::vector(384) AS distance "
    "FROM ai.chunks c WHERE c.embedding_dim = 384 "
    "ORDER BY (c.embedding::vector(384)) <=> $1::vector(384) LIMIT $2) n "
    "JOIN ai.chunks c ON c.id = n.id JOIN ai.documents d ON d.id = c.document_id "
    "WHERE d.is_current ORDER BY n.distance LIMIT 10"
)


async def vector_recall(
    url: str, sessions: Any, queries: list[str], vectors: dict[str, np.ndarray]
) -> dict[str, Any]:
    """HNSW's top 10 (current versions) against the exact top 10 over every vector."""
    conn = await asyncpg.connect(pg_url(url))  # binary vectors, no statement timeout
    await register_vector(conn)
    try:
        rows = await conn.fetch(
            "SELECT c.document_id, c.position, c.embedding FROM ai.chunks c "
            "JOIN ai.documents d ON d.id = c.document_id WHERE d.is_current"
        )
    finally:
        await conn.close()
    stored = np.empty((len(rows), DIM), dtype=np.float32)
    keys = []
    for i, r in enumerate(rows):
        stored[i] = r["embedding"]
        keys.append((r["document_id"], r["position"]))
    del rows
    truth = {
        q: {keys[i] for i in np.argpartition(-(stored @ vectors[q]), TOP_K)[:TOP_K]}
        for q in queries
    }
    del stored
    out: dict[str, Any] = {}
    found = 0
    for q in queries:  # what the repository answers (its first step, unfiltered)
        async with SqlAlchemyUnitOfWork(sessions) as uow:
            hits = await uow.chunks.search_by_vector(list(vectors[q]), MODEL, SearchFilter(), TOP_K)
        found += len(truth[q] & {(h.document_id, h.position) for h in hits})
    out["repository"] = found / (TOP_K * len(queries))
    conn = await asyncpg.connect(pg_url(url))  # and at each step by itself
    await register_vector(conn)
    try:
        for ef in EF_SEARCH_STEPS:  # the repository's steps, each alone
            await conn.execute(f"SET hnsw.ef_search = {ef}")
            found, took = 0, []
            for q in queries:
                t = time.perf_counter()
                rows = await conn.fetch(NEAREST_CURRENT, vectors[q], ef)
                took.append((time.perf_counter() - t) * 1000)
                found += len(truth[q] & {(r["document_id"], r["position"]) for r in rows})
            out[f"ef_search {ef}"] = {"recall": found / (TOP_K * len(queries)), **percentiles(took)}
    finally:
        await conn.close()
    return out


async def keyword_exactness(engine: Any, sessions: Any, queries: list[str]) -> dict[str, Any]:
    """The bounded read's top 10 against BM25 over every match (no bound): the share of
    the same chunks (recall@10), and the BM25 mass of the answer against the exact
    one's (1.0 when equally good chunks were found: this corpus holds each passage
    several times with variations, so near-equal scores abound)."""
    every = text(bm25_every_match_sql("d.is_current"))
    same, total, took, mass = 0, 0, [], []
    for q in queries:
        async with SqlAlchemyUnitOfWork(sessions) as uow:
            hits = await uow.chunks.search_by_keywords(
                keyword_terms(q), None, SearchFilter(), TOP_K
            )
        t = time.perf_counter()
        async with engine.connect() as conn:
            await conn.execute(text("SET statement_timeout = 0"))
            rows = list(await conn.execute(every, {**bm25_params(keyword_terms(q)), "k": TOP_K}))
        took.append((time.perf_counter() - t) * 1000)
        if rows:
            same += len({r.chunk_id for r in rows} & {h.chunk_id for h in hits})
            total += len(rows)
            mass.append(sum(h.score for h in hits) / sum(float(r.rank) for r in rows))
    return {
        "recall_at_10": same / max(total, 1),
        "score_mass": {"mean": float(np.mean(mass)), "min": float(np.min(mass))},
        "every_match": percentiles(took),
    }


async def queue_latency(url: str) -> dict[str, Any]:
    engine = create_engine(url, application_name="bench-scale-queue", pool_size=4)
    sessions = session_factory(engine)
    took: dict[str, list[float]] = {}
    try:
        for round_ in range(21):
            await operator_reads(
                lambda: SqlAlchemyUnitOfWork(sessions), took, T0 + timedelta(days=30)
            )
            if round_ == 0:
                took.clear()
    finally:
        await engine.dispose()
    return {k: percentiles(v) for k, v in took.items()}


# -- the run ------------------------------------------------------------------------------


def fitted_corpus(embedder: BlasE5Embedder, texts: list[str], copies: int) -> Corpus:
    """The corpus with its stand-ins fitted to the real model's slices (cached)."""
    corpus = Corpus(texts, real_vectors(embedder, texts, query=False), copies)
    corpus.fit(real_vectors(embedder, corpus.slice_texts(SLICE), query=False))
    if copies:
        corpus.fit_splices(real_vectors(embedder, corpus.splice_slice_texts(SLICE), query=False))
    return corpus


def queries_of(corpus: Corpus) -> list[str]:
    questions = [q.query for q in load_questions(QUESTIONS)]
    rng = np.random.default_rng(19)
    sentences = [
        " ".join(s.split())  # as the search use case reads a query
        for t in corpus.texts
        for s in re.split(r"(?<=[.;:])\s+", t)
        if 40 <= len(s.strip()) <= 160
    ]
    picked = [
        sentences[int(i)] for i in rng.choice(len(sentences), 100 - len(questions), replace=False)
    ]
    return questions + picked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--keep", type=Path, default=None)
    parser.add_argument(
        "--copies",
        type=int,
        default=COPIES,
        help="chunks per passage (0: every chunk a copy of a real one, the corpus before "
        "2026-12-07)",
    )
    shared_buffers_argument(parser)
    parser.add_argument("--save-as", default="scale", help="bench/results/NAME.json")
    args = parser.parse_args()
    console.print("chunking the development laws ...")
    texts = corpus_texts()
    embedder = BlasE5Embedder()
    t = time.perf_counter()
    corpus = fitted_corpus(embedder, texts, args.copies)
    console.print(
        f"{len(texts):,} real passage vectors and real-model slices of {SLICE:,} variants "
        f"and {len(corpus.splice_real):,} splices in {time.perf_counter() - t:.0f} s "
        f"(cached in {CACHE})"
    )
    queries = queries_of(corpus)
    qv = real_vectors(embedder, queries, query=True)
    fidelity = corpus.fidelity(qv)
    table(
        "Stand-in vectors against the real model's, on the same texts",
        [
            "vectors",
            "cosine to base (mean, p5, p95)",
            "query score shift sd",
            "nearest real chunk is its own",
        ],
        [
            [
                name,
                ", ".join(f"{f['cosine_to_base'][k]:.4f}" for k in ("mean", "p5", "p95")),
                f"{f['query_score_shift_sd']:.4f}",
                f"{f['nearest_is_own']:.3f}",
            ]
            for name, f in fidelity.items()
        ],
    )
    dup = corpus.near_duplicates()
    console.print(
        f"near-duplicates (cosine >= {dup['at']}) of a law chunk among the {len(texts):,}: "
        f"{dup['share_with_one']:.1%} have one, {dup['mean']:.2f} on average (p99 "
        f"{dup['p99']:.0f}); each passage of this corpus has {max(args.copies - 1, 0)} variants "
        "(--copies 0: about size / 7,609)"
    )
    t = time.perf_counter()
    for q in queries[:20]:  # the model's own time per query, apart from the database's
        embedder.encode([q], True)
    model_ms = (time.perf_counter() - t) * 1000 / 20
    vectors = dict(zip(queries, qv, strict=True))
    results: list[dict[str, Any]] = []
    with server(args.keep, args.shared_buffers_mb) as admin_url:
        for size in sorted(args.sizes):
            url, loaded = database_for(admin_url, size, args.copies)
            corpus.sized(size)
            row: dict[str, Any] = {
                "chunks": size,
                "copies": args.copies,
                "passages": corpus.passages,
            }
            record = (args.keep or CACHE) / f"load-{size}-c{args.copies}.json"
            if not loaded:
                console.print(f"loading {size:,} chunks ...")
                row["load"] = asyncio.run(load(url, corpus, size))
                record.write_text(json.dumps(row["load"]))
            elif record.exists():  # the load of an earlier run, kept with its data
                row["load"] = json.loads(record.read_text())
            row["bytes"] = asyncio.run(sizes_of(url))
            row["server"] = server_settings(url)
            console.print(f"server settings: {row['server']}")
            console.print(f"searching {size:,} chunks ...")
            row["search"] = asyncio.run(search_latency(url, size, queries, vectors, embedder))
            row["insert"] = asyncio.run(insert_throughput(url, corpus, size))
            row["queue"] = asyncio.run(queue_latency(url))
            results.append(row)
            console.print(row)
            save(
                args.save_as,
                {
                    "sizes": results,
                    "model_query_ms": model_ms,
                    "stand_in": fidelity,
                    "law_near_duplicates": dup,
                },
            )
    rows = []
    for r in results:
        for op, v in r["search"].items():
            if isinstance(v, dict) and "warm" in v:
                rows.append(
                    [
                        f"{r['chunks']:,}",
                        op,
                        v["cold"]["p95_ms"],
                        v["warm"]["p50_ms"],
                        v["warm"]["p95_ms"],
                    ]
                )
        for op, v in r["queue"].items():
            rows.append([f"{r['chunks']:,}", op, "", v["p50_ms"], v["p95_ms"]])
    table(
        "Search and the queue at scale (top 10, 100 queries)",
        ["chunks", "operation", "cold p95 ms", "warm p50 ms", "warm p95 ms"],
        rows,
    )
    console.print(f"query embedding by the real model: {model_ms:.1f} ms per query")
    saved = save(
        args.save_as,
        {
            "sizes": results,
            "model_query_ms": model_ms,
            "stand_in": fidelity,
            "law_near_duplicates": dup,
        },
    )
    console.print(f"saved {saved}")


if __name__ == "__main__":
    main()
