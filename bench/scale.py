"""Search, ingest and the queue at 100k and 1M chunks (issue 19).

For each size, a database of its own in the same server, migrated to head (the real
schema, every index and trigger), is filled with:

- chunks of realistic Portuguese legal text: the chunks of the 117 development laws
  (``../shared/corpus/leis-federais/`` through the platform's extraction and chunker),
  copied with variations (about one word in seven replaced by a word drawn from the
  corpus' own word stream, so term frequencies stay Zipfian and no two chunks are
  equal), 100 per document, over 20 collections and 7 bodies (``metadata.orgao``);
  one document in 20 is a superseded version (``is_current`` false);
- vectors: the bulk is a fast stand-in made from real ones, each a normalised mix of
  two of 1,024 real e5 passage vectors of the same corpus plus noise (the real model's
  geometry, at no model cost); the questions are embedded by the real model;
- BM25 postings written by the repositories' own statements (``KeywordIndex.post``,
  per document), the term and corpus statistics summed once at the end;
- documents and jobs as ``bench.queue_scale`` writes them, plus 100,000 PENDING jobs.

Loading uses COPY with the indexes dropped, then builds each index (timed, and its
size) as an operator loading a corpus would (the timings are kept beside the data with
``--keep``). Then, through the real repositories and the search use case:

- latency p50 / p95 of vector, keyword and hybrid search (top 10), 100 queries (the 36
  development questions and 64 sentences of the corpus), unfiltered (current versions)
  and filtered by collection, metadata and one document; a first pass (cold: nothing
  of these queries in the caches) and three more (warm). Hybrid goes through
  ``SearchChunksHandler``; its query vectors are the real model's, computed before
  (the model's own time per query is printed apart);
- vector recall@10 against exact search (numpy over every stored vector);
- keyword: the bounded read's top 10 against BM25 scored over every match;
- insert throughput: ``ChunkRepository.replace`` stores 20 more documents of 100 chunks
  into the fully indexed table;
- the worker's claim with 100k PENDING, ``GetStats`` and the listings
  (``bench.queue_scale.operator_reads``).

Writes ``bench/results/scale.json``.

    python -m bench.scale [--sizes 100000 1000000] [--keep DIR]

``--keep DIR`` keeps the server's data in DIR: a second run finds the databases
loaded and only measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector
from sqlalchemy import text

from adapters.embedding.blas import BlasE5Embedder
from adapters.embedding.local import MODEL_NAMES
from adapters.postgres.database import create_engine, session_factory
from adapters.postgres.keyword_index import KeywordIndex, bm25_params, bm25_sql
from adapters.postgres.migrations import upgrade_head
from adapters.postgres.unit_of_work import SqlAlchemyUnitOfWork
from adapters.services.local import local_services
from application.use_cases.search import SearchChunks, SearchChunksHandler
from bench.common import ROOT, console, save, table
from bench.keyword_scale import corpus_texts
from bench.queue_scale import load as load_documents
from bench.queue_scale import operator_reads
from bench.retrieval import QUESTIONS, load_questions
from domain.model import Chunk, Document, DocumentType
from domain.search import SearchFilter, SearchMode, keyword_terms

MODEL = MODEL_NAMES["original"]
DIM = 384
PER_DOCUMENT = 100
PENDING = 100_000
BASES = 1024
TOP_K = 10
WARM_PASSES = 3
CACHE = ROOT / ".cache" / "bench-scale"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
WORD = re.compile(r"\w+|\W+")

# the indexes a bulk load builds after the rows are in (name -> statement)
INDEXES = {
    "pk_keyword_postings": (
        "ALTER TABLE ai.keyword_postings ADD CONSTRAINT pk_keyword_postings "
        "PRIMARY KEY (term, chunk_id)"
    ),
    "ix_keyword_postings_term_impact": (
        "CREATE INDEX ix_keyword_postings_term_impact ON ai.keyword_postings "
        "(term, impact DESC) INCLUDE (chunk_id, document_id)"
    ),
    "ix_keyword_postings_chunk_id": (
        "CREATE INDEX ix_keyword_postings_chunk_id ON ai.keyword_postings (chunk_id)"
    ),
    "ix_chunks_search_vector": (
        "CREATE INDEX ix_chunks_search_vector ON ai.chunks USING gin (search_vector)"
    ),
    "ix_chunks_embedding_384_hnsw": (
        "CREATE INDEX ix_chunks_embedding_384_hnsw ON ai.chunks USING hnsw "
        "((embedding::vector(384)) vector_cosine_ops) WITH (m = 16, ef_construction = 64) "
        "WHERE embedding_dim = 384"
    ),
}
_DROP = {
    "pk_keyword_postings": "ALTER TABLE ai.keyword_postings DROP CONSTRAINT pk_keyword_postings",
}


def doc_id(g: int) -> uuid.UUID:
    """The id bench.queue_scale gives document number g (md5('doc' || g))."""
    return uuid.UUID(hashlib.md5(f"doc{g}".encode()).hexdigest())  # noqa: S324 - an id


# -- the corpus ---------------------------------------------------------------------------


class Corpus:
    """Texts and stand-in vectors of chunk number j, the same for every run."""

    def __init__(self, texts: list[str], bases: np.ndarray) -> None:
        self.texts = texts
        self.bases = bases
        self.words = [w for t in texts for w in WORD.findall(t) if w[0].isalnum()]

    def chunk(self, j: int) -> tuple[str, np.ndarray]:
        rng = np.random.default_rng(j)
        base = self.texts[j % len(self.texts)]
        if j >= len(self.texts):  # the first copy is the real text
            parts = WORD.findall(base)
            for i in np.flatnonzero(rng.random(len(parts)) < 1 / 7):
                if parts[i][0].isalnum():
                    parts[i] = self.words[int(rng.integers(len(self.words)))]
            base = "".join(parts)
        a, b = rng.integers(len(self.bases), size=2)
        w = rng.uniform(0.5, 1.0)
        v = w * self.bases[a] + (1 - w) * self.bases[b] + rng.normal(0, 0.01, DIM)
        return base, (v / np.linalg.norm(v)).astype(np.float32)


def real_vectors(embedder: BlasE5Embedder, texts: Sequence[str], query: bool) -> np.ndarray:
    key = hashlib.sha256(("q" if query else "p").encode() + "\0".join(texts).encode())
    path = CACHE / f"{key.hexdigest()[:16]}.npy"
    if path.exists():
        return np.asarray(np.load(path), dtype=np.float32)
    CACHE.mkdir(parents=True, exist_ok=True)
    out = (
        np.stack([embedder.encode([t], query)[0] for t in texts])
        if query
        else (embedder.encode(list(texts), False))
    )
    np.save(path, np.asarray(out, dtype=np.float32))
    return np.asarray(out, dtype=np.float32)


# -- loading ------------------------------------------------------------------------------


def pg_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def load(url: str, corpus: Corpus, size: int) -> dict[str, Any]:
    """`size` chunks in size/100 documents, then the indexes; returns the timings."""
    docs = size // PER_DOCUMENT
    engine = create_engine(url, application_name="bench-scale")
    sessions = session_factory(engine)
    out: dict[str, Any] = {}
    conn = await asyncpg.connect(pg_url(url))
    await register_vector(conn)
    try:
        t = time.perf_counter()
        await load_documents(engine, 0, docs + PENDING, PENDING, T0)
        await conn.execute(
            "UPDATE ai.documents SET is_current = false WHERE id IN "
            "(SELECT md5('doc' || g)::uuid FROM generate_series(19, $1 - 1, 20) g)",
            docs,
        )
        out["documents_s"] = time.perf_counter() - t
        for name in INDEXES:
            await conn.execute(_DROP.get(name, f"DROP INDEX ai.{name}"))
        t, copied = time.perf_counter(), 0.0
        for first in range(0, docs, 50):
            batch = range(first, min(first + 50, docs))
            records = []
            for g in batch:
                for position in range(PER_DOCUMENT):
                    body, vector = corpus.chunk(g * PER_DOCUMENT + position)
                    records.append(
                        (doc_id(g), position, body, len(body.split()), MODEL, DIM, vector)
                    )
            c0 = time.perf_counter()
            await conn.copy_records_to_table(
                "chunks",
                schema_name="ai",
                columns=[
                    "document_id",
                    "position",
                    "text",
                    "token_count",
                    "model_name",
                    "embedding_dim",
                    "embedding",
                ],
                records=records,
            )
            async with SqlAlchemyUnitOfWork(sessions) as uow:  # the repository's SQL
                index = KeywordIndex(uow.session)
                for g in batch:
                    await index.post(doc_id(g))
                await uow.commit()
            copied += time.perf_counter() - c0
            if first % 1000 == 0:
                console.print(f"  {(first + len(batch)) * PER_DOCUMENT:,} chunks stored")
        out["rows_s"] = time.perf_counter() - t
        out["rows_db_s"] = copied
        t = time.perf_counter()
        await conn.execute(
            """
            INSERT INTO ai.keyword_terms (term, shard, df)
            SELECT term, ('x' || right(document_id::text, 1))::bit(4)::int, count(*)
            FROM ai.keyword_postings GROUP BY 1, 2;
            INSERT INTO ai.keyword_stats (shard, chunks, tokens)
            SELECT ('x' || right(document_id::text, 1))::bit(4)::int, count(*),
                   sum(keyword_length)
            FROM ai.chunks GROUP BY 1;
            """
        )
        out["statistics_s"] = time.perf_counter() - t
        await conn.execute("SET maintenance_work_mem = '6GB'")
        await conn.execute("SET max_parallel_maintenance_workers = 1")
        out["index_build_s"] = {}
        for name, statement in INDEXES.items():
            t = time.perf_counter()
            await conn.execute(statement)
            out["index_build_s"][name] = time.perf_counter() - t
            console.print(f"  {name}: {out['index_build_s'][name]:.0f} s")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
        await engine.dispose()
    return out


async def insert_throughput(url: str, corpus: Corpus, size: int) -> dict[str, float]:
    """20 more documents of 100 chunks through ChunkRepository.replace, every index on."""
    engine = create_engine(url, application_name="bench-scale-insert")
    sessions = session_factory(engine)
    run = uuid.uuid4().hex
    t, stored = time.perf_counter(), 0
    for k in range(20):
        doc = Document(
            uuid.uuid4(),
            "colecao-extra",
            f"extra-{k}.txt",
            DocumentType.TEXT,
            1,
            hashlib.sha256(f"extra{run}-{k}".encode()).hexdigest(),
            {},
            T0,
            is_current=True,
        )
        chunks = []
        for position in range(PER_DOCUMENT):
            body, vector = corpus.chunk(size + k * PER_DOCUMENT + position)
            chunks.append(
                Chunk(
                    doc.id,
                    position,
                    body,
                    len(body.split()),
                    None,
                    list(map(float, vector)),
                    MODEL,
                    DIM,
                )
            )
        async with SqlAlchemyUnitOfWork(sessions) as uow:
            await uow.documents.add(doc, b"x")
            await uow.chunks.replace(doc.id, chunks)
            await uow.commit()
        stored += len(chunks)
    took = time.perf_counter() - t
    await engine.dispose()
    return {"chunks": stored, "chunks_per_s": stored / took}


async def sizes_of(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(pg_url(url))
    try:
        rows = await conn.fetch(
            "SELECT c.relname, pg_relation_size(c.oid) AS bytes FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'ai' "
            "AND c.relkind IN ('r', 'i') ORDER BY 2 DESC"
        )
        return {r["relname"]: int(r["bytes"]) for r in rows if r["bytes"] > 1 << 20}
    finally:
        await conn.close()


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
    url: str, queries: list[str], vectors: dict[str, np.ndarray]
) -> dict[str, Any]:
    engine = create_engine(url, application_name="bench-scale-search", pool_size=2)
    sessions = session_factory(engine)
    handler = SearchChunksHandler(Precomputed(vectors))
    one_doc = doc_id(3)
    filters = {
        "current versions": SearchFilter(),
        "one collection": SearchFilter(collection="colecao-3"),
        "metadata": SearchFilter(metadata={"orgao": "orgao-3"}),
        "one document": SearchFilter(document_ids=(one_doc,)),
    }
    out: dict[str, Any] = {}

    async def vector(q: str, flt: SearchFilter) -> list[Any]:
        async with SqlAlchemyUnitOfWork(sessions) as uow:
            return await uow.chunks.search_by_vector(list(vectors[q]), MODEL, flt, TOP_K)

    async def keyword(q: str, flt: SearchFilter) -> list[Any]:
        async with SqlAlchemyUnitOfWork(sessions) as uow:
            return await uow.chunks.search_by_keywords(keyword_terms(q), None, flt, TOP_K)

    async def hybrid(q: str, flt: SearchFilter) -> list[Any]:
        cmd = SearchChunks(q, TOP_K, SearchMode.HYBRID, flt)
        return (await handler(cmd, SqlAlchemyUnitOfWork(sessions))).hits

    try:
        for label, flt in filters.items():
            for mode, run in (("vector", vector), ("keyword", keyword), ("hybrid", hybrid)):
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
    for q in queries:  # what the repository answers (ef_search 100 unfiltered)
        async with SqlAlchemyUnitOfWork(sessions) as uow:
            hits = await uow.chunks.search_by_vector(list(vectors[q]), MODEL, SearchFilter(), TOP_K)
        found += len(truth[q] & {(h.document_id, h.position) for h in hits})
    out["repository"] = found / (TOP_K * len(queries))
    conn = await asyncpg.connect(pg_url(url))  # and with a wider graph walk
    await register_vector(conn)
    try:
        for ef in (400, 1000):
            await conn.execute(f"SET hnsw.ef_search = {ef}")
            found, took = 0, []
            for q in queries:
                t = time.perf_counter()
                rows = await conn.fetch(
                    "SELECT c.document_id, c.position FROM (SELECT c.id, "
                    "(c.embedding::vector(384)) <=> $1::vector(384) AS distance "
                    "FROM ai.chunks c WHERE c.embedding_dim = 384 "
                    "ORDER BY (c.embedding::vector(384)) <=> $1::vector(384) LIMIT $2) n "
                    "JOIN ai.chunks c ON c.id = n.id JOIN ai.documents d ON d.id = c.document_id "
                    "WHERE d.is_current ORDER BY n.distance LIMIT 10",
                    vectors[q],
                    ef,
                )
                took.append((time.perf_counter() - t) * 1000)
                found += len(truth[q] & {(r["document_id"], r["position"]) for r in rows})
            out[f"ef_search {ef}"] = {"recall": found / (TOP_K * len(queries)), **percentiles(took)}
    finally:
        await conn.close()
    return out


async def keyword_exactness(engine: Any, sessions: Any, queries: list[str]) -> dict[str, Any]:
    """The bounded read's top 10 against BM25 over every match (no bound): the share of
    the same chunks (recall@10), and the BM25 mass of the answer against the exact
    one's (1.0 when equally good chunks were found: this corpus holds each law's
    text about 130 times with variations, so near-equal scores abound)."""
    every = text(bm25_sql("d.is_current").replace("{columns}", "c.id AS chunk_id"))
    same, total, took, mass = 0, 0, [], []
    for q in queries:
        async with SqlAlchemyUnitOfWork(sessions) as uow:
            hits = await uow.chunks.search_by_keywords(
                keyword_terms(q), None, SearchFilter(), TOP_K
            )
        t = time.perf_counter()
        async with engine.connect() as conn:
            await conn.execute(text("SET statement_timeout = 0"))
            unbounded = 2**31 - 1
            rows = [
                r
                for r in await conn.execute(
                    every,
                    {
                        **bm25_params(keyword_terms(q)),
                        "k": TOP_K,
                        "depth": unbounded,
                        "budget": unbounded,
                        "probes": unbounded,
                    },
                )
                if r.chunk_id is not None
            ]
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


@contextlib.contextmanager
def server(keep: Path | None) -> Iterator[str]:
    import tempfile

    with contextlib.ExitStack() as stack:
        data = keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cogep-scale-")))
        data.mkdir(parents=True, exist_ok=True)
        data.chmod(0o755)
        import os

        s = stack.enter_context(local_services(os.environ.get("DATABASE_URL"), None, data))
        yield s.database_url


async def _fetch(url: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(pg_url(url))
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(pg_url(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def database_for(admin_url: str, size: int) -> tuple[str, bool]:
    """The URL of the size's own database (migrated to head), and whether it is loaded."""
    name = f"cogep_scale_{size}"
    if not asyncio.run(_fetch(admin_url, "SELECT 1 FROM pg_database WHERE datname = $1", name)):
        asyncio.run(_execute(admin_url, f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    upgrade_head(url)
    return url, asyncio.run(_fetch(url, "SELECT count(*) FROM ai.chunks")) >= size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--keep", type=Path, default=None)
    args = parser.parse_args()
    console.print("chunking the development laws ...")
    texts = corpus_texts()
    embedder = BlasE5Embedder()
    rng = np.random.default_rng(1)
    sample = [texts[int(i)] for i in rng.choice(len(texts), BASES, replace=False)]
    t = time.perf_counter()
    bases = real_vectors(embedder, sample, query=False)
    console.print(f"{BASES} real passage vectors in {time.perf_counter() - t:.0f} s")
    corpus = Corpus(texts, bases)
    queries = queries_of(corpus)
    qv = real_vectors(embedder, queries, query=True)
    t = time.perf_counter()
    for q in queries[:20]:  # the model's own time per query, apart from the database's
        embedder.encode([q], True)
    model_ms = (time.perf_counter() - t) * 1000 / 20
    vectors = dict(zip(queries, qv, strict=True))
    results: list[dict[str, Any]] = []
    with server(args.keep) as admin_url:
        for size in sorted(args.sizes):
            url, loaded = database_for(admin_url, size)
            row: dict[str, Any] = {"chunks": size}
            record = (args.keep or CACHE) / f"load-{size}.json"
            if not loaded:
                console.print(f"loading {size:,} chunks ...")
                row["load"] = asyncio.run(load(url, corpus, size))
                record.write_text(json.dumps(row["load"]))
            elif record.exists():  # the load of an earlier run, kept with its data
                row["load"] = json.loads(record.read_text())
            row["bytes"] = asyncio.run(sizes_of(url))
            console.print(f"searching {size:,} chunks ...")
            row["search"] = asyncio.run(search_latency(url, queries, vectors))
            row["insert"] = asyncio.run(insert_throughput(url, corpus, size))
            row["queue"] = asyncio.run(queue_latency(url))
            results.append(row)
            console.print(row)
            save("scale", {"sizes": results, "model_query_ms": model_ms})
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
    console.print(f"saved {save('scale', {'sizes': results, 'model_query_ms': model_ms})}")


if __name__ == "__main__":
    main()
