"""The schema comes from Alembic alone and matches the ORM module exactly."""

from __future__ import annotations

import asyncpg
import pytest

from tests.integration.conftest import alembic, create_database, drop_database
from tests.integration.services import Services, unique_database_name


@pytest.fixture
async def empty_database(services: Services):  # type: ignore[no-untyped-def]
    name = unique_database_name("cogep_migrations")
    url = await create_database(services, name)
    yield url
    await drop_database(services, name)


async def test_upgrade_on_an_empty_database_then_autogenerate_finds_no_drift(
    empty_database: str,
) -> None:
    up = alembic(empty_database, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    check = alembic(empty_database, "check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr


async def test_alembic_check_reports_drift_when_the_database_differs(empty_database: str) -> None:
    assert alembic(empty_database, "upgrade", "head").returncode == 0
    conn = await asyncpg.connect(empty_database)
    try:  # a manual change: exactly what the rules forbid, and what check must catch
        await conn.execute("ALTER TABLE ai.documents ADD COLUMN rogue text")
    finally:
        await conn.close()
    check = alembic(empty_database, "check")
    assert check.returncode != 0
    assert "rogue" in check.stdout + check.stderr


async def test_downgrade_to_base_and_upgrade_again(empty_database: str) -> None:
    assert alembic(empty_database, "upgrade", "head").returncode == 0
    down = alembic(empty_database, "downgrade", "base")
    assert down.returncode == 0, down.stderr
    conn = await asyncpg.connect(empty_database)
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = 'ai'") == 0
    finally:
        await conn.close()
    assert alembic(empty_database, "upgrade", "head").returncode == 0


async def test_the_status_domain_accepts_the_statuses_and_refuses_anything_else(
    database_url: str,
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        for status in ("PENDING", "PROCESSING", "COMPLETED", "FAILED"):
            assert await conn.fetchval("SELECT CAST($1 AS ai.ingestionstatus)", status) == status
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.fetchval("SELECT CAST($1 AS ai.ingestionstatus)", "DONE")
        column_type = await conn.fetchval(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'ai.ingestion_queue'::regclass AND attname = 'status'"
        )
        assert column_type == "ai.ingestionstatus"
        assert await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    finally:
        await conn.close()


async def test_0003_backfills_bm25_for_chunks_stored_before_it_and_steps_down_with_data(
    empty_database: str,
) -> None:
    assert alembic(empty_database, "upgrade", "0002").returncode == 0
    conn = await asyncpg.connect(empty_database)
    try:
        doc = await conn.fetchval(
            "INSERT INTO ai.documents (id, collection, filename, content_type, size_bytes, "
            "sha256) VALUES (gen_random_uuid(), 'rh', 'lei.txt', 'text/plain', 1, 'x') "
            "RETURNING id"
        )
        for position, body in enumerate(
            ["O servidor fará jus a trinta dias de férias.", "Férias do servidor."]
        ):
            await conn.execute(
                "INSERT INTO ai.chunks (document_id, position, text, token_count, model_name, "
                "embedding_dim, embedding) VALUES ($1, $2, $3, 5, 'm', 384, $4::vector)",
                doc,
                position,
                body,
                "[" + ",".join(["0.1"] * 384) + "]",
            )
        assert alembic(empty_database, "upgrade", "head").returncode == 0
        stats = await conn.fetchrow(
            "SELECT sum(chunks) AS n, sum(tokens) AS t FROM ai.keyword_stats"
        )
        lengths = await conn.fetchval("SELECT sum(keyword_length) FROM ai.chunks")
        assert stats["n"] == 2 and stats["t"] == lengths > 0
        assert (
            await conn.fetchval("SELECT sum(df) FROM ai.keyword_terms WHERE term = 'fer'") == 2
        )  # "férias" in both chunks: folded and stemmed, the lexeme 'fer'
        postings = await conn.fetchval("SELECT count(*) FROM ai.keyword_postings")
        lexemes = await conn.fetchval("SELECT count(*) FROM ai.chunks c, unnest(c.search_vector)")
        assert postings == lexemes > 0
        down = alembic(empty_database, "downgrade", "0002")
        assert down.returncode == 0, down.stderr
        assert await conn.fetchval("SELECT count(*) FROM ai.chunks") == 2
        assert await conn.fetchval("SELECT to_regclass('ai.keyword_postings')") is None
    finally:
        await conn.close()


async def test_0004_and_0005_key_existing_documents_and_step_down_only_without_versions(
    empty_database: str,
) -> None:
    assert alembic(empty_database, "upgrade", "0003").returncode == 0
    conn = await asyncpg.connect(empty_database)
    try:
        ids = [
            await conn.fetchval(
                "INSERT INTO ai.documents (id, collection, filename, content_type, size_bytes, "
                "sha256, chunk_count) VALUES (gen_random_uuid(), 'rh', $1, 'text/plain', 1, "
                "$2, $3) RETURNING id",
                name,
                sha,
                chunks,
            )
            for name, sha, chunks in (("a.txt", "a" * 64, 3), ("b.txt", "b" * 64, 0))
        ]
        await conn.execute(
            "INSERT INTO ai.ingestion_queue (id, document_id, status, last_error) VALUES "
            "(gen_random_uuid(), $1, 'FAILED', 'extracting: gave up after 3 attempts: x'), "
            "(gen_random_uuid(), $2, 'FAILED', 'extracting: no text')",
            *ids,
        )
        assert alembic(empty_database, "upgrade", "head").returncode == 0
        rows = await conn.fetch(
            "SELECT d.filename, d.source_key, d.key_origin, d.version, d.is_current, "
            "d.indexed_at IS NOT NULL AS indexed, q.failure_kind FROM ai.documents d "
            "JOIN ai.ingestion_queue q ON q.document_id = d.id ORDER BY d.filename"
        )
        assert [tuple(r) for r in rows] == [
            ("a.txt", "sha256:" + "a" * 64, "content", 1, True, True, "gave_up"),
            ("b.txt", "sha256:" + "b" * 64, "content", 1, False, False, "document"),
        ]
        # a second version of a.txt's content under a client key: 0003 cannot hold it
        await conn.execute(
            "INSERT INTO ai.documents (id, collection, filename, content_type, size_bytes, "
            "sha256, source_key, key_origin, version) VALUES (gen_random_uuid(), 'rh', "
            "'a2.txt', 'text/plain', 1, $1, 'pasta/a.txt', 'client', 1)",
            "a" * 64,
        )
        down = alembic(empty_database, "downgrade", "0003")
        assert down.returncode != 0 and "same content more than once" in down.stderr
        await conn.execute("DELETE FROM ai.documents WHERE filename = 'a2.txt'")
        down = alembic(empty_database, "downgrade", "0003")
        assert down.returncode == 0, down.stderr
        assert await conn.fetchval("SELECT count(*) FROM ai.documents") == 2
    finally:
        await conn.close()


async def test_every_migration_steps_down_and_up_one_at_a_time_with_data_in_the_tables(
    empty_database: str,
) -> None:
    assert alembic(empty_database, "upgrade", "head").returncode == 0
    conn = await asyncpg.connect(empty_database)
    try:
        doc = await conn.fetchval(
            "INSERT INTO ai.documents (id, collection, filename, content_type, size_bytes, "
            "sha256, chunk_count, source_key, key_origin) VALUES (gen_random_uuid(), 'rh', "
            "'lei.txt', 'text/plain', 5, $1, 0, 'lei-8112-1990', 'norm') RETURNING id",
            "c" * 64,
        )
        await conn.execute(
            "INSERT INTO ai.document_contents (document_id, data) VALUES ($1, 'dados')", doc
        )
        await conn.execute(
            "INSERT INTO ai.ingestion_queue (id, document_id, status, stage, attempts, "
            "progress) VALUES (gen_random_uuid(), $1, 'PROCESSING', 'embedding', 1, "
            """'{"chunks_done": 3, "chunks_total": 9}')""",
            doc,
        )
        revisions = []
        while (current := await conn.fetchval("SELECT version_num FROM alembic_version")) != (
            "0001"
        ):
            revisions.append(current)
            down = alembic(empty_database, "downgrade", "-1")
            assert down.returncode == 0, (current, down.stderr)
            # the document and its job live through every step down
            assert await conn.fetchval("SELECT count(*) FROM ai.documents") == 1, current
            assert await conn.fetchval("SELECT status FROM ai.ingestion_queue") == "PROCESSING"
        assert revisions == [f"{n:04d}" for n in range(len(revisions) + 1, 1, -1)]
        for _ in revisions:
            up = alembic(empty_database, "upgrade", "+1")
            assert up.returncode == 0, up.stderr
            assert await conn.fetchval("SELECT count(*) FROM ai.documents") == 1
        assert alembic(empty_database, "check").returncode == 0  # back at head, no drift
    finally:
        await conn.close()
