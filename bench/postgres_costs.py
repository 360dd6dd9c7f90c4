"""What PostgreSQL spends on an upload and on a chunk set (decision 0008's figures).

Each figure is the CPU time of the PostgreSQL backend serving the statements, read
from this host's /proc (so the server runs here: the embedded one, or a DATABASE_URL
on this machine), in throwaway databases of their own migrated to head (changed as
each part says, dropped at the end):

1. ``ai.submit_document`` on one long-lived connection, as the API's pool keeps them:
   new 1 KB uploads while the collection grows (its first calls while it is small,
   when a session caches its plans), and uploads of bytes already stored (the twin
   found, no insert), under statistics that guess many rows per hash; backend CPU per
   call at each size. The function as shipped, and as migrations 0015 and 0014 left it.
2. Uploaded bytes: the development laws' DOCX (``../shared/corpus/leis-federais/``)
   stored one row per statement in a column with STORAGE EXTERNAL (what
   ``ai.document_contents`` uses, migration 0014) and in one with the default EXTENDED
   (pglz tried on every row): backend CPU per row and bytes on disk.
3. A chunk set: ``ChunkRepository.replace`` of 100-chunk documents of real law text
   with the real model's vectors (the platform's default embedder, computed once and
   cached in ``.cache/bench-scale``) into a table already holding ``--preload`` chunks;
   then again after dropping, in turn, the HNSW indexes, the GIN index over the
   chunks' terms, the postings' foreign key and their two secondary indexes. The
   differences say what each costs per chunk.

    python -m bench.postgres_costs [--sizes 100 2000 20000] [--preload 1000]

Writes ``bench/results/postgres_costs.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import numpy as np
import psutil
from alembic import command
from sqlalchemy import text

from adapters.embedding.blas import BlasE5Embedder
from adapters.extraction.formats import ParseLimits, extract
from adapters.postgres.database import create_engine, session_factory
from adapters.postgres.migrations import alembic_config
from adapters.postgres.unit_of_work import SqlAlchemyUnitOfWork
from bench.common import console, save, services, table
from bench.retrieval import CORPUS
from bench.scale_corpus import pg_url, real_vectors
from domain.model import Chunk, Document, DocumentType
from entrypoints.container import build_container
from entrypoints.settings import Settings

PER_DOCUMENT = 100
SUBMIT_CALLS = 1000  # the backend's CPU is read in 10 ms ticks
STORE_DOCUMENTS = 4  # per variant; the first warms the caches and is not counted
WARM_UP_ROWS = 5  # uploaded bytes stored before the measure

_SUBMIT = (
    "SELECT outcome FROM ai.submit_document($1, $6, 'a.txt', 'text/plain', $4, $2, "
    "'{}', 'sha256:' || $2, 'content', NULL, now(), $3, $5, 'queued', 3, now(), "
    "'ingest', NULL)"
)
_GROW = (
    "INSERT INTO ai.documents (id, collection, filename, content_type, size_bytes, sha256, "
    "source_key, key_origin) SELECT gen_random_uuid(), $3, 'f.txt', 'text/plain', 1000, "
    "md5('g' || g) || md5('h' || g), 'sha256:g' || g, 'content' "
    "FROM generate_series($1::int, $2::int) AS g"
)
# the function as shipped; as migrations 0015 and 0014 left it: planned per call with
# the lookup's ordered index, and before it. Each on a database of its own, under
# statistics that guess many rows per hash and have not seen the collection
_SUBMIT_VARIANTS: list[tuple[str, str]] = [
    ("as shipped (generic plans, 0016)", "head"),
    ("planned per call, ordered index (0015)", "0015"),
    ("planned per call, before 0015", "0014"),
]
# statistics taken while the table held many rows per hash (as a TRUNCATE or a young
# table leaves them), kept while the collection grows: autovacuum is off for the table
# during the measure, so they are the same for every variant
_MISLEADING_STATISTICS = [
    "ALTER TABLE ai.documents SET (autovacuum_enabled = false)",
    "INSERT INTO ai.documents (id, collection, filename, content_type, size_bytes, sha256, "
    "source_key, key_origin) SELECT gen_random_uuid(), 'stale', 'f.txt', 'text/plain', 1, "
    "repeat(chr(97 + g % 10), 64), 'stale:' || g, 'content' FROM generate_series(1, 2000) g",
    "ANALYZE ai.documents",
    "DELETE FROM ai.documents WHERE collection = 'stale'",
]


def backend_cpu(pid: int) -> float:
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess as exc:
        raise SystemExit(
            "the PostgreSQL backend is not a process of this host: run with the embedded "
            "server (no DATABASE_URL) or a server on this machine"
        ) from exc
    return float(t.user + t.system)


async def per_call_ms(pid: int, calls: int, call: Callable[[int], Awaitable[Any]]) -> float:
    before = backend_cpu(pid)
    for n in range(calls):
        await call(n)
    return (backend_cpu(pid) - before) * 1000 / calls


# -- 1. the upload's one statement ----------------------------------------------------


async def submit_costs(admin_url: str, sizes: list[int]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for label, revision in _SUBMIT_VARIANTS:
        async with throwaway_database(admin_url, revision) as url:
            conn = await asyncpg.connect(pg_url(url))
            try:
                for statement in _MISLEADING_STATISTICS:
                    await conn.execute(statement)
            finally:
                await conn.close()
            for row in await _submit_series(url, sizes, "rh"):
                rows.append({"variant": label, **row})
                console.print(rows[-1])
    return rows


async def _submit_series(url: str, sizes: list[int], collection: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(pg_url(url))
    rows: list[dict[str, Any]] = []
    try:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        body = b"x" * 1000
        stored = 0
        serial = 0

        async def new(_: int) -> None:
            nonlocal serial
            serial += 1
            digest = hashlib.sha256(f"new {serial}".encode()).hexdigest()
            outcome = await conn.fetchval(
                _SUBMIT, uuid.uuid4(), digest, body, 1000, uuid.uuid4(), collection
            )
            assert outcome == "created", outcome

        first = hashlib.sha256(b"new 1").hexdigest()

        async def twin(_: int) -> None:
            outcome = await conn.fetchval(
                _SUBMIT, uuid.uuid4(), first, body, 1000, uuid.uuid4(), collection
            )
            assert outcome == "existing", outcome

        for size in sizes:
            missing = size - stored - serial
            if missing > 0:  # the collection grows by rows as uploads leave them
                await conn.execute(_GROW, stored + 1, stored + missing, collection)
                stored += missing
            row = {
                "documents": stored + serial,
                "new_ms_per_call": await per_call_ms(pid, SUBMIT_CALLS, new),
                "twin_ms_per_call": await per_call_ms(pid, SUBMIT_CALLS, twin),
            }
            rows.append(row)
    finally:
        await conn.close()
    return rows


# -- 2. the uploaded bytes ------------------------------------------------------------


async def bytes_costs(url: str) -> list[dict[str, Any]]:
    files = [p.read_bytes() for p in sorted(CORPUS.glob("*.docx"))]
    conn = await asyncpg.connect(pg_url(url))
    rows: list[dict[str, Any]] = []
    try:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        for storage in ("EXTERNAL", "EXTENDED"):
            name = f"bench_bytes_{storage.lower()}"
            await conn.execute(f"CREATE TABLE {name} (id uuid PRIMARY KEY, data bytea NOT NULL)")
            await conn.execute(f"ALTER TABLE {name} ALTER COLUMN data SET STORAGE {storage}")
            for data in files[:WARM_UP_ROWS]:  # the statement, the relation's first pages
                await conn.execute(f"INSERT INTO {name} VALUES ($1, $2)", uuid.uuid4(), data)  # noqa: S608
            insert = f"INSERT INTO {name} VALUES ($1, $2)"  # noqa: S608 - fixed names

            async def one(n: int, insert: str = insert) -> None:
                await conn.execute(insert, uuid.uuid4(), files[n])

            ms = await per_call_ms(pid, len(files), one)
            size = await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", name)
            row = {  # the table holds the measured rows and the warm-up's
                "storage": storage,
                "rows": len(files),
                "warm_up_rows": WARM_UP_ROWS,
                "bytes_stored": sum(len(f) for f in [*files, *files[:WARM_UP_ROWS]]),
                "bytes_on_disk": int(size),
                "ms_per_row": ms,
            }
            rows.append(row)
            console.print(row)
    finally:
        await conn.close()
    return rows


# -- 3. a chunk set -------------------------------------------------------------------


def law_chunks(settings: Settings, count: int) -> tuple[list[str], np.ndarray]:
    container = build_container(settings)
    chunker = container.chunker()
    texts: list[str] = []
    for path in sorted(CORPUS.glob("*.docx")):
        doc = extract(path.read_bytes(), DocumentType.DOCX, ParseLimits())
        texts.extend(c.embedding_text for c in chunker.chunk(doc))
        if len(texts) >= count:
            break
    texts = texts[:count]
    embedder = container.embedder()
    assert isinstance(embedder, BlasE5Embedder), "the platform's local default runtime"
    return texts, real_vectors(embedder, texts, query=False)


# what part 3 takes away, in turn (each variant keeps the previous removals)
_REMOVALS: list[tuple[str, list[str]]] = [
    ("every index and constraint", []),
    (
        "without the HNSW indexes",
        [f"DROP INDEX ai.ix_chunks_embedding_{d}_hnsw" for d in (256, 384, 512, 768, 1024, 1536)],
    ),
    ("... and the GIN over the chunks' terms", ["DROP INDEX ai.ix_chunks_search_vector"]),
    (
        "... and the postings' foreign key",
        ["ALTER TABLE ai.keyword_postings DROP CONSTRAINT fk_keyword_postings_chunk_id_chunks"],
    ),
    (
        "... and the postings' two secondary indexes",
        [
            "DROP INDEX ai.ix_keyword_postings_term_impact",
            "DROP INDEX ai.ix_keyword_postings_chunk_id",
        ],
    ),
]


async def store_costs(
    url: str, texts: list[str], vectors: np.ndarray, preload: int
) -> list[dict[str, Any]]:
    engine = create_engine(url, application_name="bench-postgres-costs")
    sessions = session_factory(engine)
    model = "bench-model"
    cursor = 0

    async def store(count: int) -> tuple[float, int]:
        """One document of `count` chunks: the backend's CPU for replace and commit."""
        nonlocal cursor
        doc = Document(
            uuid.uuid4(),
            "rh",
            f"lei{cursor}.docx",
            DocumentType.DOCX,
            1,
            hashlib.sha256(f"store {cursor}".encode()).hexdigest(),
            {},
            datetime.now(UTC),
            is_current=True,
        )
        chunks = [
            Chunk(doc.id, i, texts[cursor + i], 1, None, vectors[cursor + i], model, 384)
            for i in range(count)
        ]
        cursor += count
        async with SqlAlchemyUnitOfWork(sessions) as uow:
            pid = (await uow.session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            await uow.documents.add(doc, b"x")
            before = backend_cpu(pid)
            await uow.chunks.replace(doc.id, chunks)
            await uow.commit()
            return backend_cpu(pid) - before, count

    rows: list[dict[str, Any]] = []
    try:
        while cursor < preload:
            await store(min(PER_DOCUMENT, preload - cursor))
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
        for label, statements in _REMOVALS:
            async with engine.begin() as conn:
                for statement in statements:
                    await conn.execute(text(statement))
            measured = [await store(PER_DOCUMENT) for _ in range(STORE_DOCUMENTS)][1:]
            ms = 1000 * sum(s for s, _ in measured) / sum(n for _, n in measured)
            row = {"variant": label, "chunks_before": cursor, "ms_per_chunk": ms}
            rows.append(row)
            console.print(row)
    finally:
        await engine.dispose()
    return rows


# -- the run ------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def throwaway_database(admin_url: str, revision: str = "head") -> AsyncIterator[str]:
    """A database of its own in the same server, migrated to `revision`, dropped after."""
    name = f"cogep_bench_costs_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_url(admin_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = admin_url.rsplit("/", 1)[0] + "/" + name
        try:
            await asyncio.to_thread(command.upgrade, alembic_config(url), revision)
            yield url
        finally:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def measure(
    admin_url: str, sizes: list[int], preload: int, texts: list[str], vectors: np.ndarray
) -> dict[str, Any]:
    submit = await submit_costs(admin_url, sizes)
    async with throwaway_database(admin_url) as url:
        stored_bytes = await bytes_costs(url)
    async with throwaway_database(admin_url) as url:
        chunk_sets = await store_costs(url, texts, vectors, preload)
    return {"submit": submit, "uploaded_bytes": stored_bytes, "chunk_sets": chunk_sets}


def run(sizes: list[int], preload: int) -> dict[str, Any]:
    with services() as (database_url, redis_url):
        settings = Settings(_env_file=None, database_url=database_url, redis_url=redis_url)
        needed = preload + len(_REMOVALS) * STORE_DOCUMENTS * PER_DOCUMENT
        texts, vectors = law_chunks(settings, needed)
        if len(texts) < needed:
            raise SystemExit(f"the corpus gives {len(texts)} chunks; {needed} needed")
        payload = asyncio.run(measure(database_url, sizes, preload, texts, vectors))
    submit = payload["submit"]
    stored_bytes = payload["uploaded_bytes"]
    chunk_sets = payload["chunk_sets"]
    table(
        "ai.submit_document on one long-lived connection: backend CPU per call",
        ["function", "documents in the collection", "new upload ms", "duplicate (twin) ms"],
        [
            [
                r["variant"],
                f"{r['documents']:,}",
                f"{r['new_ms_per_call']:.2f}",
                f"{r['twin_ms_per_call']:.2f}",
            ]
            for r in submit
        ],
    )
    table(
        "Uploaded bytes (the development laws' DOCX): backend CPU per row",
        ["storage", "rows measured", "ms per row", "MB on disk", "MB stored (with warm-up)"],
        [
            [
                r["storage"],
                r["rows"],
                f"{r['ms_per_row']:.2f}",
                r["bytes_on_disk"] / 1e6,
                r["bytes_stored"] / 1e6,
            ]
            for r in stored_bytes
        ],
    )
    table(
        f"A chunk set (100 real law chunks, real vectors) into {preload:,}+ chunks: backend CPU per chunk",
        ["variant", "chunks before", "ms per chunk"],
        [[r["variant"], f"{r['chunks_before']:,}", f"{r['ms_per_chunk']:.2f}"] for r in chunk_sets],
    )
    return payload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 2000, 20000])
    parser.add_argument("--preload", type=int, default=1000)
    args = parser.parse_args()
    payload = run(sorted(args.sizes), args.preload)
    console.print(f"saved {save('postgres_costs', payload)}")


if __name__ == "__main__":
    main()
