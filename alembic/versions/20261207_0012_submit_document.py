"""ai.submit_document: an upload's version, bytes and job in one round trip

An upload of new content took seven round trips from the API: the pool's ping, BEGIN,
the key's advisory lock, the version lookup, the document row with its bytes, the job,
COMMIT. On two cores shared with the embedding model the API's CPU per upload went
mostly to those round trips (decision 0008). This function does the lock, the lookup
and the inserts in one call; called on its own (autocommit) it is its own transaction,
so an upload is the ping and this call.

It keeps the rules of the Python path (application/use_cases/enqueue_document.py,
domain/versions.py) and its concurrency exactly:
- the key's lock is the one ``DocumentRepository.lock_keys`` takes, released at
  commit; the lookups after it run in a VOLATILE function, so each reads a snapshot
  taken after the wait and sees a version committed meanwhile;
- with a client key, the key's latest version with the same bytes is that version;
  without one, the newest version not superseded uploaded without a key with the same
  bytes is;
- otherwise the document is the key's next version, with its bytes and its PENDING job;
  a client-keyed version sent without metadata keeps its predecessor's, less the keys
  the worker finds again (``p_inherit_except``, NULL: none inherited).

Its statements are planned for each call (``plan_cache_mode``): a session caches
PL/pgSQL's plans, and a plan cached while the table was small scanned a collection's
documents for the twin on every later upload of that session (measured: 0.6 ms a call
at 100 documents, 6.3 ms at 20,000 on one connection, 0.7 ms on a new one; planned per
call, 0.8-1.0 ms whatever the size).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 04:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = (
    "uuid, text, text, text, bigint, text, jsonb, text, text, text, timestamptz, bytea, "
    "uuid, text, integer, timestamptz, text, text[]"
)


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION ai.submit_document(
            p_id uuid,
            p_collection text,
            p_filename text,
            p_content_type text,
            p_size_bytes bigint,
            p_sha256 text,
            p_metadata jsonb,
            p_source_key text,
            p_key_origin text,
            p_batch text,
            p_created_at timestamptz,
            p_data bytea,
            p_job_id uuid,
            p_job_stage text,
            p_job_max_attempts integer,
            p_job_next_attempt_at timestamptz,
            p_job_kind text,
            p_inherit_except text[]
        ) RETURNS TABLE (outcome text, document_id uuid, version integer, metadata jsonb)
        LANGUAGE plpgsql VOLATILE
        -- planned for each call: a session caches PL/pgSQL's plans, and one made while
        -- the table was small (a new install, a bulk load before autovacuum's ANALYZE)
        -- scanned the whole collection for the twin on every later upload
        SET plan_cache_mode = force_custom_plan
        AS $$
        #variable_conflict use_column
        DECLARE
            latest ai.documents%ROWTYPE;
            twin ai.documents%ROWTYPE;
            kept jsonb := p_metadata;
            next_version integer := 1;
            stored uuid;
        BEGIN
            PERFORM pg_advisory_xact_lock(
                hashtextextended(p_collection || chr(31) || p_source_key, 0)
            );
            SELECT d.* INTO latest FROM ai.documents d
            WHERE d.collection = p_collection AND d.source_key = p_source_key
            ORDER BY d.version DESC LIMIT 1;
            IF p_key_origin = 'client' THEN
                twin := latest;
            ELSE
                SELECT d.* INTO twin FROM ai.documents d
                WHERE d.collection = p_collection AND d.sha256 = p_sha256
                  AND d.key_origin <> 'client' AND d.superseded_at IS NULL
                ORDER BY d.created_at DESC, d.id DESC LIMIT 1;
            END IF;
            IF twin.id IS NOT NULL AND twin.sha256 = p_sha256 THEN
                RETURN QUERY SELECT 'existing'::text, twin.id, twin.version, twin.metadata;
                RETURN;
            END IF;
            IF latest.id IS NOT NULL THEN
                next_version := latest.version + 1;
                IF p_inherit_except IS NOT NULL THEN
                    kept := latest.metadata - p_inherit_except;
                END IF;
            END IF;
            INSERT INTO ai.documents AS d (
                id, collection, filename, content_type, size_bytes, sha256, metadata,
                source_key, key_origin, version, batch, created_at, updated_at
            ) VALUES (
                p_id, p_collection, p_filename, p_content_type, p_size_bytes, p_sha256,
                kept, p_source_key, p_key_origin, next_version, p_batch, p_created_at,
                p_created_at
            )
            ON CONFLICT (collection, source_key, version) DO NOTHING
            RETURNING d.id INTO stored;
            IF stored IS NULL THEN  -- the key's lock prevents it; said, never hidden
                RETURN QUERY SELECT 'taken'::text, NULL::uuid, next_version, NULL::jsonb;
                RETURN;
            END IF;
            INSERT INTO ai.document_contents (document_id, data) VALUES (p_id, p_data);
            INSERT INTO ai.ingestion_queue (
                id, document_id, status, stage, attempts, max_attempts, next_attempt_at,
                kind, created_at, updated_at
            ) VALUES (
                p_job_id, p_id, CAST('PENDING' AS ai.ingestionstatus), p_job_stage, 0,
                p_job_max_attempts, p_job_next_attempt_at, p_job_kind, p_created_at,
                p_created_at
            );
            RETURN QUERY SELECT 'created'::text, p_id, next_version, kept;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute(f"DROP FUNCTION ai.submit_document({SIGNATURE})")
