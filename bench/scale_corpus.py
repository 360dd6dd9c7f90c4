"""The corpora of bench/scale.py: realistic legal text and stand-in vectors at 100k and
1M chunks, loaded into the real schema (COPY, the repositories' posting statements,
indexes built after), each size in a database of its own on one server."""

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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector

from adapters.embedding.blas import BlasE5Embedder
from adapters.embedding.local import MODEL_NAMES
from adapters.postgres.database import create_engine, session_factory
from adapters.postgres.keyword_index import KeywordIndex
from adapters.postgres.migrations import upgrade_head
from adapters.postgres.unit_of_work import SqlAlchemyUnitOfWork
from adapters.services.local import local_services
from bench.common import ROOT, console
from bench.queue_scale import load as load_documents
from domain.model import Chunk, Document, DocumentType

MODEL = MODEL_NAMES["original"]
DIM = 384
PER_DOCUMENT = 100
PENDING = 100_000
SLICE = 2048  # variants embedded by the real model
CACHE = ROOT / ".cache" / "bench-scale"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
WORD = re.compile(r"\w+|\W+")
SENTENCE_END = re.compile(r"(?<=[.;:])\s+")
COPIES = 8  # chunks per passage: the passage and 7 variants (Corpus)

HNSW_INDEX = "ix_chunks_embedding_384_hnsw"
HNSW_GRAPH = (16, 64)  # the schema's m / ef_construction (migration 0009)


def hnsw_index_name(m: int, ef_construction: int) -> str:
    """The schema's HNSW index, or one over another graph (bench.hnsw_graph)."""
    if (m, ef_construction) == HNSW_GRAPH:
        return HNSW_INDEX
    return f"{HNSW_INDEX}_m{m}_ef{ef_construction}"


def hnsw_index(m: int = HNSW_GRAPH[0], ef_construction: int = HNSW_GRAPH[1]) -> str:
    return (
        f"CREATE INDEX {hnsw_index_name(m, ef_construction)} ON ai.chunks USING hnsw "
        "((embedding::vector(384)) vector_cosine_ops) "
        f"WITH (m = {m}, ef_construction = {ef_construction}) WHERE embedding_dim = 384"
    )


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
    HNSW_INDEX: hnsw_index(),
}
_DROP = {
    "pk_keyword_postings": "ALTER TABLE ai.keyword_postings DROP CONSTRAINT pk_keyword_postings",
}


def doc_id(g: int) -> uuid.UUID:
    """The id bench.queue_scale gives document number g (md5('doc' || g))."""
    return uuid.UUID(hashlib.md5(f"doc{g}".encode()).hexdigest())  # noqa: S324 - an id


# -- the corpus ---------------------------------------------------------------------------


class Corpus:
    """Texts and vectors of chunk number j, the same for every run of one size.

    The corpus is made of passages, each stored `copies` times (the passage and
    `copies - 1` variants), so a size of N chunks holds N / copies passages:

    - passage p < n (n = len(texts)) is a real chunk of the development laws with its
      real e5 vector;
    - passage p >= n is a splice: the opening of one real chunk and the ending of
      another, cut at sentence ends (legal text on two subjects, as an amended
      article or a chunk across two articles reads). Its vector is the real one for
      the first `len(self.splice_real)` splices (a real-model slice); every other
      splice gets a stand-in: the length-weighted mix of its two sources' real
      vectors, moved by a residual drawn from the Gaussian fitted to the slice's real
      residuals (real vector minus mix), renormalised;
    - a variant replaces about one word in seven by a word of the corpus' own word
      stream. The first variant of the first `len(self.real)` real passages carries
      the model's vector of its text (the second real-model slice); every other
      variant gets its passage's vector moved by a displacement drawn from the
      Gaussian fitted to that slice's real displacements (variant minus original).

    `copies = 0` has the shape of the corpus before 2026-12-07: no splices, every chunk
    a copy of one of the n real chunks (about 130 copies of each at a million chunks:
    islands of near-duplicates an HNSW graph does not leave, docs/decisions/0018).
    `fidelity` measures how closely the stand-ins follow the real model.
    """

    def __init__(self, texts: list[str], vectors: np.ndarray, copies: int = COPIES) -> None:
        self.texts = texts
        self.vectors = vectors
        self.copies = copies
        self.passages = len(texts)
        self.words = [w for t in texts for w in WORD.findall(t) if w[0].isalnum()]
        self.real = np.zeros((0, DIM), dtype=np.float32)
        self.mean = np.zeros(DIM)
        self.factor = np.zeros((DIM, DIM))
        self.splice_real = np.zeros((0, DIM), dtype=np.float32)
        self.splice_mean = np.zeros(DIM)
        self.splice_factor = np.zeros((DIM, DIM))

    def sized(self, size: int) -> Corpus:
        """Set the number of passages for a corpus of `size` chunks: size / copies (the
        first of the real chunks only, when that is fewer than there are)."""
        self.passages = -(-size // self.copies) if self.copies else len(self.texts)
        return self

    @staticmethod
    def _gaussian(shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values, axes = np.linalg.eigh(np.cov(shift, rowvar=False))
        # z @ factor ~ N(0, covariance) for z ~ N(0, I)
        return shift.mean(axis=0), (axes * np.sqrt(np.clip(values, 0, None))).T

    def fit(self, slice_vectors: np.ndarray) -> None:
        """Take the real-model slice of variants (the vectors of `slice_texts`) and fit
        the variants' displacement to it."""
        self.real = slice_vectors
        self.mean, self.factor = self._gaussian(slice_vectors - self.vectors[: len(slice_vectors)])

    def fit_splices(self, slice_vectors: np.ndarray) -> None:
        """Take the real-model slice of splices (the vectors of `splice_slice_texts`)
        and fit the splices' residual to it."""
        self.splice_real = slice_vectors
        n = len(self.texts)
        mixes = np.stack([self._splice(n + i)[1] for i in range(len(slice_vectors))])
        self.splice_mean, self.splice_factor = self._gaussian(slice_vectors - mixes)

    def _sources(self, p: int) -> tuple[int, int, float]:
        """The two real chunks splice p is cut from, and where (a share of each)."""
        rng = np.random.default_rng([p, 1])
        n = len(self.texts)
        a = int(rng.integers(n))
        b = int(rng.integers(n - 1))
        return a, b + (b >= a), float(rng.uniform(0.3, 0.7))

    def _splice(self, p: int) -> tuple[str, np.ndarray]:
        """Splice p's text, and the mix of its sources' real vectors, weighted by the
        share of the text each gave."""
        a, b, at = self._sources(p)
        head = self.texts[a][: _cut(self.texts[a], at)].rstrip()
        tail = self.texts[b][_cut(self.texts[b], at) :].lstrip()
        w = len(head) / max(len(head) + len(tail), 1)
        v = w * self.vectors[a] + (1 - w) * self.vectors[b]
        return f"{head} {tail}", np.asarray(v / np.linalg.norm(v))

    def _splice_stand_in(self, p: int, mix: np.ndarray) -> np.ndarray:
        z = np.random.default_rng([p, 2]).standard_normal(DIM)
        v = mix + self.splice_mean + z @ self.splice_factor
        return np.asarray(v / np.linalg.norm(v), dtype=np.float32)

    def passage(self, p: int) -> tuple[str, np.ndarray]:
        n = len(self.texts)
        if p < n:
            return self.texts[p], self.vectors[p]
        body, mix = self._splice(p)
        if p - n < len(self.splice_real):
            return body, self.splice_real[p - n]
        return body, self._splice_stand_in(p, mix)

    def passage_of(self, j: int) -> int:
        return j % self.passages

    def _variant(self, base: str, rng: np.random.Generator) -> str:
        parts = WORD.findall(base)
        for i in np.flatnonzero(rng.random(len(parts)) < 1 / 7):
            if parts[i][0].isalnum():
                parts[i] = self.words[int(rng.integers(len(self.words)))]
        return "".join(parts)

    def _drawn_variant(
        self, p: int, k: int, body: str, vector: np.ndarray
    ) -> tuple[str, np.ndarray]:
        """Variant k of passage p: its text, and the passage's vector moved by a
        displacement drawn from the variants' Gaussian (the stand-in)."""
        rng = np.random.default_rng([p, k, 3])
        text = self._variant(body, rng)
        v = vector + self.mean + rng.standard_normal(DIM) @ self.factor
        return text, np.asarray(v / np.linalg.norm(v), dtype=np.float32)

    def chunk(self, j: int) -> tuple[str, np.ndarray]:
        p, k = j % self.passages, j // self.passages
        body, vector = self.passage(p)
        if k == 0:
            return body, vector
        text, stand_in = self._drawn_variant(p, k, body, vector)
        if k == 1 and p < len(self.real):
            return text, self.real[p]
        return text, stand_in

    def slice_texts(self, count: int) -> list[str]:
        """The varied texts of the real-model slice of variants (the first variant of
        the first `count` real chunks)."""
        return [self._drawn_variant(p, 1, self.texts[p], self.vectors[p])[0] for p in range(count)]

    def splice_slice_texts(self, count: int) -> list[str]:
        """The texts of the real-model slice of splices (the first `count`)."""
        n = len(self.texts)
        return [self._splice(n + i)[0] for i in range(count)]

    def near_duplicates(self, at: float = 0.95) -> dict[str, float]:
        """How many near-duplicates (cosine >= `at`) each real law chunk has among the
        others: what the real corpus shows, against the `copies - 1` variants at about
        0.96 that every passage of the bench has."""
        sims = self.vectors @ self.vectors.T
        np.fill_diagonal(sims, -1.0)
        count = (sims >= at).sum(axis=1)
        return {
            "at": at,
            "share_with_one": float(np.mean(count > 0)),
            "mean": float(count.mean()),
            "p99": float(np.percentile(count, 99)),
        }

    def fidelity(self, queries: np.ndarray) -> dict[str, Any]:
        """Each real slice against stand-ins drawn for the same texts: how far a variant
        lies from its original, or a splice from the mix of its sources (cosine), how
        much that moves a query's score (the spread of query . vector - query . base
        over every query and vector), and whether the vector's nearest real chunk is
        its own original (variants) or one of its two sources (splices)."""
        n, k = len(self.texts), len(self.real)
        out: dict[str, Any] = {}
        drawn = np.stack(
            [self._drawn_variant(i, 1, self.texts[i], self.vectors[i])[1] for i in range(k)]
        )
        bases = self.vectors[:k]
        for name, variants in (("variants real", self.real), ("variants stand-in", drawn)):
            out[name] = _closeness(variants, bases, queries, self.vectors, [[i] for i in range(k)])
        s = len(self.splice_real)
        if s:
            mixes = np.stack([self._splice(n + i)[1] for i in range(s)])
            drawn = np.stack([self._splice_stand_in(n + i, m) for i, m in enumerate(mixes)])
            sources = [list(self._sources(n + i)[:2]) for i in range(s)]
            for name, splices in (("splices real", self.splice_real), ("splices stand-in", drawn)):
                out[name] = _closeness(splices, mixes, queries, self.vectors, sources)
        return out


def _closeness(
    vectors: np.ndarray,
    bases: np.ndarray,
    queries: np.ndarray,
    originals: np.ndarray,
    own: list[list[int]],
) -> dict[str, Any]:
    cos = np.sum(vectors * bases, axis=1)
    nearest = np.argmax(vectors @ originals.T, axis=1)
    return {
        "cosine_to_base": {
            "mean": float(cos.mean()),
            "p5": float(np.percentile(cos, 5)),
            "p95": float(np.percentile(cos, 95)),
        },
        "query_score_shift_sd": float((queries @ (vectors - bases).T).std()),
        "nearest_is_own": float(np.mean([int(x) in o for x, o in zip(nearest, own, strict=True)])),
    }


def _cut(text: str, share: float) -> int:
    """The sentence end (else the word boundary) nearest to `share` of the text."""
    target = int(len(text) * share)
    ends = [m.end() for m in SENTENCE_END.finditer(text) if 0 < m.end() < len(text)]
    if not ends:
        ends = [m.start() for m in re.finditer(r"\s", text)] or [target]
    return min(ends, key=lambda e: abs(e - target))


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


@contextlib.contextmanager
def server(keep: Path | None, shared_buffers_mb: int | None = None) -> Iterator[str]:
    import tempfile

    with contextlib.ExitStack() as stack:
        data = keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cogep-scale-")))
        data.mkdir(parents=True, exist_ok=True)
        data.chmod(0o755)
        import os

        s = stack.enter_context(
            local_services(os.environ.get("DATABASE_URL"), None, data, shared_buffers_mb)
        )
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


def server_settings(url: str) -> dict[str, str]:
    """The server settings a run's figures depend on, as the server reports them."""
    names = ["shared_buffers", "effective_cache_size", "work_mem"]
    sql = "SELECT json_object_agg(n, current_setting(n)) FROM unnest($1::text[]) AS n"
    settings: dict[str, str] = json.loads(asyncio.run(_fetch(url, sql, names)))
    return settings


def shared_buffers_argument(parser: argparse.ArgumentParser) -> None:
    """``--shared-buffers-mb``, for ``server``."""
    parser.add_argument(
        "--shared-buffers-mb",
        type=int,
        default=None,
        help="the embedded server's shared_buffers (default: a quarter of memory, as the platform)",
    )


def database_for(admin_url: str, size: int, copies: int = COPIES) -> tuple[str, bool]:
    """The URL of the size's own database (migrated to head), and whether it is loaded."""
    name = f"cogep_scale_{size}" if copies == 0 else f"cogep_scale_{size}_c{copies}"
    if not asyncio.run(_fetch(admin_url, "SELECT 1 FROM pg_database WHERE datname = $1", name)):
        asyncio.run(_execute(admin_url, f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    upgrade_head(url)
    return url, asyncio.run(_fetch(url, "SELECT count(*) FROM ai.chunks")) >= size
