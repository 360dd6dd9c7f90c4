"""ai.submit_document's plans made once, and a twin lookup no index's order can serve

Migration 0012 made the function plan its statements on every call
(``plan_cache_mode = force_custom_plan``) because a plan cached while a collection was
small walked the collection's (collection, created_at, id) index backwards for the twin
(the newest version with the same bytes) on every later upload; migration 0015 gave the
lookup an index in its own order. Neither holds when the statistics misjudge the
collection: one made after the last ANALYZE looks empty, so a plan made for the call's
own values rates every index that starts with the collection alike and may take one
that reads the whole collection (the suite's test read 5,010 rows for one upload), and
planning every call costs PostgreSQL CPU on every upload.

- The function's statements use generic plans (``force_generic_plan``): made once per
  session from the table's averages, where the index matching both the collection and
  the bytes is always the narrowest, never from a value the statistics have not seen.
- The twin lookup orders by ``ROW(created_at, id)``, an order no index gives: no plan
  can walk an index for it and stop at the first match; the rows with the upload's bytes
  are found through (collection, sha256, ...) and the newest taken (a handful: the same
  bytes stored under other keys). Same answer, same order.

``python -m bench.postgres_costs`` measures the three schemas (figures in decision 0008).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 06:40:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# the function of migration 0012, its plan settings and the twin lookup's order apart
FUNCTION = """
        CREATE OR REPLACE FUNCTION ai.submit_document(
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
{settings}        AS $$
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
                ORDER BY {order} LIMIT 1;
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

# an order no index gives: a top-1 sort over the rows the (collection, sha256) index finds
TWIN_ORDER = "ROW(d.created_at, d.id) DESC"
GENERIC_PLANS = "        SET plan_cache_mode = force_generic_plan\n"
# as 0012 had them
TWIN_ORDER_0012 = "d.created_at DESC, d.id DESC"
PLANNED_PER_CALL = "        SET plan_cache_mode = force_custom_plan\n"


def upgrade() -> None:
    op.execute(FUNCTION.format(settings=GENERIC_PLANS, order=TWIN_ORDER))


def downgrade() -> None:
    op.execute(FUNCTION.format(settings=PLANNED_PER_CALL, order=TWIN_ORDER_0012))
