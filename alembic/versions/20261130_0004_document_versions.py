"""document identity and versions

Every document gets a source key in its collection, a version number under it, and
whether it is the current version (the one searches see). Existing documents become
version 1 of a key made from their content ("sha256:<hex>"), current when they have
a chunk set; a reprocess moves a legal act to its norm's key. Uniqueness of content
per collection gives way to uniqueness of (collection, key, version) and of the
current version per key.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 20:40:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("documents", sa.Column("source_key", sa.String(1000), nullable=True), schema="ai")
    op.add_column("documents", sa.Column("key_origin", sa.String(10), nullable=True), schema="ai")
    op.add_column(
        "documents",
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        schema="ai",
    )
    op.add_column(
        "documents",
        sa.Column("is_current", sa.Boolean(), server_default="false", nullable=False),
        schema="ai",
    )
    op.add_column("documents", sa.Column("superseded_by", sa.UUID(), nullable=True), schema="ai")
    op.add_column(
        "documents",
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
        schema="ai",
    )
    op.add_column(
        "documents", sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=True), schema="ai"
    )
    # existing documents: version 1 of their content's key; current when indexed
    op.execute(
        """
        UPDATE ai.documents d
        SET source_key = 'sha256:' || d.sha256,
            key_origin = 'content',
            is_current = (d.chunk_count > 0 OR EXISTS (
                SELECT 1 FROM ai.ingestion_queue q
                WHERE q.document_id = d.id AND q.status = CAST('COMPLETED' AS ai.ingestionstatus))),
            indexed_at = CASE WHEN d.chunk_count > 0 THEN d.updated_at END
        """
    )
    op.alter_column("documents", "source_key", nullable=False, schema="ai")
    op.alter_column("documents", "key_origin", nullable=False, schema="ai")
    op.drop_constraint("uq_documents_collection_sha256", "documents", schema="ai", type_="unique")
    op.create_unique_constraint(
        "uq_documents_collection_source_key_version",
        "documents",
        ["collection", "source_key", "version"],
        schema="ai",
    )
    op.create_index(
        "uq_documents_current_key",
        "documents",
        ["collection", "source_key"],
        unique=True,
        schema="ai",
        postgresql_where=sa.text("is_current"),
    )
    op.create_index(
        "ix_documents_collection_sha256", "documents", ["collection", "sha256"], schema="ai"
    )


def downgrade() -> None:
    # 0003 allows one document per (collection, content): refuse rather than delete
    # versions (and their BM25 statistics) behind the operator's back
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM ai.documents
                       GROUP BY collection, sha256 HAVING count(*) > 1) THEN
                RAISE EXCEPTION 'cannot step down to 0003: some collections hold the same '
                    'content more than once (versions); delete the extra versions first';
            END IF;
        END $$
        """
    )
    op.drop_index("ix_documents_collection_sha256", table_name="documents", schema="ai")
    op.drop_index("uq_documents_current_key", table_name="documents", schema="ai")
    op.drop_constraint(
        "uq_documents_collection_source_key_version", "documents", schema="ai", type_="unique"
    )
    op.create_unique_constraint(
        "uq_documents_collection_sha256", "documents", ["collection", "sha256"], schema="ai"
    )
    for column in (
        "indexed_at",
        "superseded_at",
        "superseded_by",
        "is_current",
        "version",
        "key_origin",
        "source_key",
    ):
        op.drop_column("documents", column, schema="ai")
