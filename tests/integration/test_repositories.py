"""The SQLAlchemy/pgvector adapters against real PostgreSQL."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from application.ports import DocumentFilter, Submission, SubmitOutcome, UnitOfWorkFactory
from domain.model import (
    Chunk,
    ClaimedJob,
    Document,
    DocumentType,
    IngestionJob,
    IngestionStatus,
)
from domain.search import SearchFilter
from domain.versions import KeyOrigin

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)  # every job added at T0 + n seconds is ready by then


def make_document(n: int = 0, collection: str = "rh", at: datetime = T0) -> Document:
    return Document(
        id=uuid.uuid4(),
        collection=collection,
        filename=f"lei-{n}.txt",
        content_type=DocumentType.TEXT,
        size_bytes=10,
        sha256=f"{n:064x}",
        metadata={"orgao": "COGEP", "n": n},
        created_at=at,
    )


async def add_documents(
    uow_factory: UnitOfWorkFactory, count: int, start: datetime = T0
) -> list[tuple[Document, IngestionJob]]:
    out = []
    async with uow_factory() as uow:
        for n in range(count):
            at = start + timedelta(seconds=n)
            doc = make_document(n, at=at)
            job = IngestionJob.new(doc.id, at, max_attempts=3)
            assert await uow.documents.add(doc, f"conteudo {n}".encode())
            await uow.jobs.add(job)
            out.append((doc, job))
        await uow.commit()
    return out


def new_job(doc: Document) -> IngestionJob:
    return IngestionJob.new(doc.id, doc.created_at, max_attempts=3)


def vector(seed: float) -> list[float]:
    return [seed] + [0.0] * 383


class TestUnitOfWork:
    async def test_nothing_is_kept_unless_committed(self, uow_factory: UnitOfWorkFactory) -> None:
        doc = make_document()
        async with uow_factory() as uow:
            await uow.documents.add(doc, b"bytes")
        async with uow_factory() as uow:
            assert await uow.documents.get(doc.id) is None

    async def test_an_exception_rolls_back_even_after_writes(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        doc = make_document()
        with pytest.raises(RuntimeError):
            async with uow_factory() as uow:
                await uow.documents.add(doc, b"bytes")
                raise RuntimeError("boom")
        async with uow_factory() as uow:
            assert await uow.documents.get(doc.id) is None

    async def test_committed_work_is_visible_to_the_next_unit(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        [(doc, job)] = await add_documents(uow_factory, 1)
        async with uow_factory() as uow:
            stored = await uow.documents.get(doc.id)
            assert stored == doc
            assert await uow.documents.content(doc.id) == b"conteudo 0"
            assert await uow.jobs.get_for_document(doc.id) == job


class TestDocuments:
    async def test_a_key_and_version_are_taken_once(self, uow_factory: UnitOfWorkFactory) -> None:
        first = make_document(1)
        twin = make_document(1)  # same content: same key (its hash), same version
        async with uow_factory() as uow:
            assert await uow.documents.add(first, b"a")
            assert not await uow.documents.add(twin, b"a")
            assert (await uow.documents.latest_version("rh", first.source_key)) == first
            assert await uow.documents.content(first.id) == b"a"  # the twin wrote no bytes
            await uow.commit()

    async def test_submit_stores_new_bytes_and_finds_an_unkeyed_twin_in_its_collection(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        first = make_document(1)
        twin, elsewhere = make_document(1), make_document(1, collection="outra")
        async with uow_factory() as uow:
            got = await uow.documents.submit(first, b"a", new_job(first), None)
            assert got == Submission(SubmitOutcome.CREATED, first.id, 1, first.metadata)
            assert await uow.documents.get(first.id) == first
            assert await uow.documents.content(first.id) == b"a"
            job = await uow.jobs.get_for_document(first.id)
            assert job is not None and job.status is IngestionStatus.PENDING
            got = await uow.documents.submit(twin, b"a", new_job(twin), None)
            assert got == Submission(SubmitOutcome.EXISTING, first.id, 1, first.metadata)
            assert await uow.documents.get(twin.id) is None  # nothing stored for the twin
            got = await uow.documents.submit(elsewhere, b"a", new_job(elsewhere), None)
            assert (got.outcome, got.document_id) == (SubmitOutcome.CREATED, elsewhere.id)
            await uow.commit()

    async def test_submit_under_a_client_key_numbers_versions_and_keeps_metadata(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        v1, v2, again = (make_document(n) for n in (1, 2, 2))
        for doc in (v1, v2, again):
            doc.source_key, doc.key_origin = "notas/ferias.txt", KeyOrigin.CLIENT
        v1.metadata = {"orgao": "COGEP", "norm": "lei-8112-1990"}
        v2.metadata = again.metadata = {}
        async with uow_factory() as uow:
            assert (await uow.documents.submit(v1, b"a", new_job(v1), None)).version == 1
            # sent without metadata: the predecessor's, less what the worker finds again
            got = await uow.documents.submit(v2, b"b", new_job(v2), frozenset({"norm"}))
            assert got == Submission(SubmitOutcome.CREATED, v2.id, 2, {"orgao": "COGEP"})
            stored = await uow.documents.get(v2.id)
            assert stored is not None and stored.version == 2
            assert stored.metadata == {"orgao": "COGEP"}
            # the latest version's bytes again: that version, nothing stored
            got = await uow.documents.submit(again, b"b", new_job(again), None)
            assert (got.outcome, got.document_id, got.version) == (
                SubmitOutcome.EXISTING,
                v2.id,
                2,
            )
            # v1's bytes again are a new version: only the latest one is compared
            back = make_document(1)
            back.source_key, back.key_origin = v1.source_key, KeyOrigin.CLIENT
            got = await uow.documents.submit(back, b"a", new_job(back), None)
            assert (got.outcome, got.version) == (SubmitOutcome.CREATED, 3)
            await uow.commit()

    @pytest.mark.parametrize("plans", ["auto", "force_generic_plan", "force_custom_plan"])
    @pytest.mark.parametrize("stale", ["rh", "elsewhere"])
    async def test_submit_finds_the_twin_by_index_after_the_collection_grew(
        self, clean_db: AsyncEngine, database_url: str, plans: str, stale: str
    ) -> None:
        """One long-lived connection, as the API's pool keeps them: its first calls come
        while the collection is small, the next after it grew by thousands of rows, with
        statistics that mislead: many rows per hash, taken on the collection itself or
        elsewhere (then the collection looks empty, as one made after the last ANALYZE).
        The call still reads only the rows it looks for, whatever plans the session
        asks for (the function makes its own generic ones, migration 0016)."""
        call = (
            "SELECT outcome FROM ai.submit_document($1, 'rh', 'a.txt', 'text', 1, $2, "
            "'{}', 'sha256:' || $2, 'content', NULL, now(), 'x', $3, 'queued', 3, now(), "
            "'ingest', NULL)"
        )
        conn = await asyncpg.connect(database_url, server_settings={"plan_cache_mode": plans})
        try:
            # statistics that guess many rows per hash (taken on other data, kept by
            # the DELETE): what made the planner walk the collection on a fresh clone
            await conn.execute(
                "INSERT INTO ai.documents (id, collection, filename, content_type, "
                "size_bytes, sha256, source_key, key_origin) "
                "SELECT gen_random_uuid(), $1, 'f.txt', 'text', 1, repeat(chr(97 + g % 10), "
                "64), 'stale:' || g, 'content' FROM generate_series(1, 2000) AS g",
                stale,
            )
            await conn.execute("ANALYZE ai.documents")
            await conn.execute("DELETE FROM ai.documents WHERE source_key LIKE 'stale:%'")
            for n in range(8):  # enough calls for a session to cache a generic plan
                assert await conn.fetchval(call, uuid.uuid4(), f"{n:064x}", uuid.uuid4())
            await conn.execute(
                "INSERT INTO ai.documents (id, collection, filename, content_type, "
                "size_bytes, sha256, source_key, key_origin) "
                "SELECT gen_random_uuid(), 'rh', 'f.txt', 'text', 1, md5(g::text) || "
                "md5(g::text), 'sha256:' || g, 'content' FROM generate_series(1, 5000) AS g"
            )
            rows_read = (  # by this session, not yet reported to the statistics
                "SELECT seq_tup_read + idx_tup_fetch FROM pg_stat_xact_user_tables "
                "WHERE schemaname = 'ai' AND relname = 'documents'"
            )
            async with conn.transaction():
                before = await conn.fetchval(rows_read)
                outcome = await conn.fetchval(call, uuid.uuid4(), "f" * 64, uuid.uuid4())
                read = await conn.fetchval(rows_read) - before
            # the lookups read the key's and the bytes' rows only (none here) and the
            # foreign keys their document, not the collection's 5,000 in an index's order
            assert outcome == "created" and read < 10
        finally:
            await conn.close()

    async def test_a_unit_in_autocommit_commits_each_statement_on_its_own(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        doc = make_document(1)
        async with uow_factory() as uow:
            await uow.autocommit()
            await uow.documents.submit(doc, b"a", new_job(doc), None)
            await uow.rollback()  # nothing to roll back: the statement committed
        async with uow_factory() as uow:
            assert await uow.documents.get(doc.id) == doc
            with pytest.raises(RuntimeError):
                await uow.autocommit()  # too late: the unit has run a statement

    async def test_merge_metadata_adds_keys_to_what_the_row_holds_now(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        [(doc, _)] = await add_documents(uow_factory, 1)
        async with uow_factory() as uow:
            await uow.documents.set_metadata(doc.id, {"orgao": "SEGEP", "ano": 2026})
            merged = await uow.documents.merge_metadata(doc.id, {"ano": 2027, "tema": "férias"})
            assert merged == {"orgao": "SEGEP", "ano": 2027, "tema": "férias"}
            assert await uow.documents.merge_metadata(uuid.uuid4(), {"a": 1}) is None
            await uow.commit()

    async def test_uploaded_bytes_are_stored_as_sent_without_compression(
        self, uow_factory: UnitOfWorkFactory, clean_db: AsyncEngine
    ) -> None:
        doc = make_document(1)
        data = ("Art. 1º O servidor fará jus a trinta dias de férias. " * 2000).encode()
        async with uow_factory() as uow:
            assert await uow.documents.add(doc, data)
            await uow.commit()
        async with clean_db.connect() as conn:
            method, size = (
                await conn.execute(
                    text(
                        "SELECT pg_column_compression(data), pg_column_size(data) "
                        "FROM ai.document_contents WHERE document_id = :d"
                    ),
                    {"d": doc.id},
                )
            ).one()
        # compressible as it is, it was not compressed: uploads are mostly compressed
        # containers, where trying only cost CPU (migration 0014)
        assert method is None and size >= len(data)
        async with uow_factory() as uow:
            assert await uow.documents.content(doc.id) == data

    async def test_the_database_holds_one_current_version_per_key(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        v1, v2 = make_document(1), make_document(2, at=T0 + timedelta(seconds=1))
        v2.source_key = v1.source_key
        v2.version = 2
        async with uow_factory() as uow:
            assert await uow.documents.add(v1, b"a")
            assert await uow.documents.add(v2, b"b")
            v1.is_current = v2.is_current = True
            with pytest.raises(IntegrityError):
                await uow.documents.save_versions([v1, v2])
        v1.is_current = v2.is_current = False
        async with uow_factory() as uow:  # demotion and promotion in one call are fine
            assert await uow.documents.add(v1, b"a")
            assert await uow.documents.add(v2, b"b")
            v1.is_current, v2.is_current = True, False
            await uow.documents.save_versions([v1])
            v1.is_current, v2.is_current = False, True
            await uow.documents.save_versions([v2, v1])
            versions = await uow.documents.versions("rh", v1.source_key)
            assert [(d.id, d.is_current) for d in versions] == [(v2.id, True), (v1.id, False)]

    async def test_delete_removes_bytes_job_and_chunks_in_one_transaction(
        self, uow_factory: UnitOfWorkFactory, clean_db: AsyncEngine
    ) -> None:
        [(doc, _)] = await add_documents(uow_factory, 1)
        async with uow_factory() as uow:
            await uow.chunks.replace(doc.id, [chunk(doc.id, 0)])
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.documents.delete(doc.id)
            assert not await uow.documents.delete(uuid.uuid4())
            await uow.commit()
        async with clean_db.connect() as conn:
            for table in ("documents", "document_contents", "ingestion_queue", "chunks"):
                assert (await conn.execute(text(f"SELECT count(*) FROM ai.{table}"))).scalar() == 0

    async def test_listing_filters_and_pages_with_a_stable_cursor(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        added = await add_documents(uow_factory, 5)
        async with uow_factory() as uow:
            job = await uow.jobs.get(added[1][1].id)
            assert job is not None
            later = T0 + timedelta(minutes=1)
            job.claim("w", later, timedelta(minutes=1))
            job.complete(later)
            await uow.jobs.save(job)
            await uow.commit()
        seen: list[uuid.UUID] = []
        after = None
        async with uow_factory() as uow:
            while True:
                page = await uow.documents.list(DocumentFilter(limit=2, after=after))
                if not page:
                    break
                seen += [v.document.id for v in page]
                last = page[-1].document
                after = (last.created_at, last.id)
            completed = await uow.documents.list(DocumentFilter(status=IngestionStatus.COMPLETED))
            other = await uow.documents.list(DocumentFilter(collection="nope"))
        assert seen == [d.id for d, _ in reversed(added)]
        assert [v.document.id for v in completed] == [added[1][0].id]
        assert completed[0].job is not None and completed[0].job.status is IngestionStatus.COMPLETED
        assert other == []


class TestQueue:
    async def test_claims_take_the_oldest_ready_jobs_and_mark_them_processing(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        added = await add_documents(uow_factory, 4)
        async with uow_factory() as uow:
            claims = await uow.jobs.claim(batch_size=3, worker_id="w1:t", lease_seconds=60, now=NOW)
            await uow.commit()
        assert [c.job_id for c in claims] == [j.id for _, j in added[:3]]
        async with uow_factory() as uow:
            job = await uow.jobs.get(claims[0].job_id)
        assert job is not None
        assert job.status is IngestionStatus.PROCESSING
        assert job.attempts == 1 and job.locked_by == "w1:t"
        assert job.locked_until == NOW + timedelta(seconds=60)

    async def test_concurrent_claims_skip_each_others_rows(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        await add_documents(uow_factory, 6)
        async with uow_factory() as first, uow_factory() as second:
            a = await first.jobs.claim(batch_size=4, worker_id="a", lease_seconds=60, now=NOW)
            # `first` still holds its row locks: SKIP LOCKED must hand `second` the others
            b = await second.jobs.claim(batch_size=4, worker_id="b", lease_seconds=60, now=NOW)
            await first.commit()
            await second.commit()
        assert len(a) == 4 and len(b) == 2
        assert not {c.job_id for c in a} & {c.job_id for c in b}

    async def test_a_job_waiting_for_its_retry_time_is_not_claimed_early(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        [(_, job)] = await add_documents(uow_factory, 1)
        async with uow_factory() as uow:
            stored = await uow.jobs.get(job.id)
            assert stored is not None
            stored.next_attempt_at = T0 + timedelta(minutes=5)
            await uow.jobs.save(stored)
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.jobs.claim(batch_size=5, worker_id="w", lease_seconds=60, now=T0) == []
            assert await uow.jobs.count_ready(T0) == 0
            assert await uow.jobs.count_ready(T0 + timedelta(minutes=5)) == 1
            later = await uow.jobs.claim(
                batch_size=5, worker_id="w", lease_seconds=60, now=T0 + timedelta(minutes=5)
            )
        assert [c.job_id for c in later] == [job.id]

    async def test_only_the_lease_holder_renews_and_expired_leases_are_found(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        await add_documents(uow_factory, 2)
        async with uow_factory() as uow:
            claims = await uow.jobs.claim(batch_size=2, worker_id="w1", lease_seconds=10, now=NOW)
            await uow.commit()
        impostor = [ClaimedJob(c.job_id, c.document_id, 1, 3, "w2") for c in claims]
        later = NOW + timedelta(seconds=8)
        async with uow_factory() as uow:
            assert await uow.jobs.renew_leases(impostor, 60, later) == 0
            assert await uow.jobs.renew_leases(claims[:1], 60, later) == 1
            await uow.commit()
        async with uow_factory() as uow:
            expired = await uow.jobs.expired(NOW + timedelta(seconds=11), limit=10)
        assert [j.id for j in expired] == [claims[1].job_id]

    async def test_counts_by_status_and_oldest_pending(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        await add_documents(uow_factory, 3)
        async with uow_factory() as uow:
            await uow.jobs.claim(batch_size=1, worker_id="w", lease_seconds=60, now=NOW)
            await uow.commit()
        async with uow_factory() as uow:
            counts = await uow.jobs.counts_by_status()
            oldest = await uow.jobs.oldest_pending_created_at()
        assert counts[IngestionStatus.PENDING] == 2
        assert counts[IngestionStatus.PROCESSING] == 1
        assert counts[IngestionStatus.COMPLETED] == 0
        assert oldest == T0 + timedelta(seconds=1)


def chunk(document_id: uuid.UUID, position: int, body: str = "texto", seed: float = 1.0) -> Chunk:
    return Chunk(
        document_id=document_id,
        position=position,
        text=body,
        token_count=len(body.split()),
        heading="Capítulo I",
        embedding=vector(seed),
        model_name="multilingual-e5-small",
        embedding_dim=384,
    )


class TestChunks:
    async def test_replacing_twice_leaves_exactly_one_chunk_set(
        self, uow_factory: UnitOfWorkFactory
    ) -> None:
        [(doc, _)] = await add_documents(uow_factory, 1)
        for bodies in (["a", "b", "c"], ["x", "y"]):
            async with uow_factory() as uow:
                await uow.chunks.replace(
                    doc.id, [chunk(doc.id, i, b) for i, b in enumerate(bodies)]
                )
                await uow.commit()
        async with uow_factory() as uow:
            assert await uow.chunks.count(doc.id) == 2
            assert await uow.chunks.models() == {("multilingual-e5-small", 384): 2}

    async def test_vectors_round_trip_and_rank_by_cosine(
        self, uow_factory: UnitOfWorkFactory, clean_db: AsyncEngine
    ) -> None:
        [(doc, _)] = await add_documents(uow_factory, 1)
        near = [1.0, 0.1] + [0.0] * 382
        far = [0.0, 1.0] + [0.0] * 382
        async with uow_factory() as uow:
            await uow.chunks.replace(
                doc.id,
                [
                    Chunk(doc.id, 0, "perto", 1, None, near, "m", 384),
                    Chunk(doc.id, 1, "longe", 1, None, far, "m", 384),
                ],
            )
            await uow.commit()
        query = [1.0, 0.0] + [0.0] * 382
        everything = SearchFilter(include_superseded=True)
        async with uow_factory() as uow:
            hits = await uow.chunks.search_by_vector(query, "m", everything, 10)
            other_model = await uow.chunks.search_by_vector(query, "outro", everything, 10)
        assert [h.text for h in hits] == ["perto", "longe"]
        assert hits[0].score == pytest.approx(1 / (1.01**0.5), abs=1e-4)  # cosine, read back
        assert hits[1].score == pytest.approx(0.0, abs=1e-4)
        assert other_model == []  # vectors of another model are never compared
        async with clean_db.connect() as conn:
            stored = (
                await conn.execute(text("SELECT embedding FROM ai.chunks ORDER BY position"))
            ).scalars()
            # pgvector's text form, parsed: exactly what went in
            assert [json.loads(v) for v in stored] == [near, far]

    async def test_a_chunks_vector_stays_in_its_row_beside_a_real_length_text(
        self, uow_factory: UnitOfWorkFactory, clean_db: AsyncEngine
    ) -> None:
        # a chunk of real law text (~600 characters) with its 384 dimensions passes
        # the ~2 KB row threshold; the vector must stay in the row (migration 0017), so
        # a distance computed from the table reads no TOAST
        [(doc, _)] = await add_documents(uow_factory, 1)
        body = (
            "Art. 77. O servidor fará jus a trinta dias de férias, que podem ser "
            "acumuladas, até o máximo de dois períodos, no caso de necessidade do "
            "serviço, ressalvadas as hipóteses em que haja legislação específica. "
        ) * 3
        rng = random.Random(77)
        chunks_in = [
            replace(
                chunk(doc.id, i, f"{i} {body}"),
                embedding=[rng.uniform(-0.1, 0.1) for _ in range(384)],  # incompressible
            )
            for i in range(5)
        ]

        async def toast_values() -> dict[int, int]:
            """The bytes of each value in the chunks' TOAST table, by value."""
            async with clean_db.connect() as conn:
                toast = (
                    await conn.execute(
                        text(
                            "SELECT reltoastrelid::regclass::text FROM pg_class "
                            "WHERE oid = 'ai.chunks'::regclass"
                        )
                    )
                ).scalar_one()
                got = await conn.execute(
                    text(f"SELECT chunk_id, sum(length(chunk_data)) FROM {toast} GROUP BY 1")
                )
                return {int(value): int(size) for value, size in got}

        before = await toast_values()
        async with uow_factory() as uow:
            await uow.chunks.replace(doc.id, chunks_in)
            await uow.commit()
        # what went out of line for these rows (the text or lexemes may: they are
        # compressed and moved before the vector is)
        toasted = [n for value, n in (await toast_values()).items() if value not in before]
        async with clean_db.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT pg_column_size(embedding) AS size, embedding FROM ai.chunks "
                        "WHERE document_id = :d ORDER BY position"
                    ),
                    {"d": doc.id},
                )
            ).all()
        assert len(body) > 600 and [r.size for r in rows] == [8 + 4 * 384] * 5
        assert all(n < 4 * 384 for n in toasted), toasted  # no vector among them
        for r, c in zip(rows, chunks_in, strict=True):  # float32, read back whole
            assert json.loads(r.embedding) == pytest.approx(c.embedding, abs=1e-6)

    async def test_full_text_search_is_portuguese_and_ignores_accents(
        self, uow_factory: UnitOfWorkFactory, clean_db: AsyncEngine
    ) -> None:
        [(doc, _)] = await add_documents(uow_factory, 1)
        async with uow_factory() as uow:
            await uow.chunks.replace(
                doc.id,
                [
                    chunk(doc.id, 0, "O servidor tem direito a FÉRIAS anuais remuneradas."),
                    chunk(doc.id, 1, "Licença para capacitação profissional."),
                ],
            )
            await uow.commit()
        everything = SearchFilter(include_superseded=True)
        async with uow_factory() as uow:  # the adapter's own keyword search, not a copy
            for q, expected in (
                ("ferias", 0),
                ("férias remuneradas", 0),
                ("FERIAS", 0),
                ("licenca capacitacao", 1),
                ("licença", 1),
            ):
                hits = await uow.chunks.search_by_keywords(
                    q, "multilingual-e5-small", everything, 10
                )
                assert [h.position for h in hits] == [expected], q
            assert (
                await uow.chunks.search_by_keywords(
                    "aposentadoria", "multilingual-e5-small", everything, 10
                )
                == []
            )
