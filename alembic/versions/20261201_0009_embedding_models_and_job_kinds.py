"""chunk sets of several embedding models side by side; re-embedding jobs

``chunks.embedding`` loses its fixed dimension: each dimension an embedding model may
have (orm.INDEXED_DIMENSIONS) gets a partial HNSW index over
``embedding::vector(N) WHERE embedding_dim = N``, and the old single index goes. No
row is rewritten (dropping a type modifier is a relabel); the 384 index is built again
over the stored chunks. ``ingestion_queue.kind``: "ingest" or "reembed"; the claim
takes PENDING jobs in ``kind, created_at`` order through a partial index, so uploads
go before a collection being re-embedded.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 06:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# frozen here: a later change of the ORM's list is a migration of its own
DIMENSIONS = (256, 384, 512, 768, 1024, 1536)


def upgrade() -> None:
    op.add_column(
        "ingestion_queue",
        sa.Column("kind", sa.String(20), server_default="ingest", nullable=False),
        schema="ai",
    )
    op.create_index(
        "ix_ingestion_queue_pending_kind_created_at",
        "ingestion_queue",
        ["kind", "created_at"],
        schema="ai",
        postgresql_where=sa.text("status = CAST('PENDING' AS ai.ingestionstatus)"),
    )
    op.drop_index("ix_chunks_embedding_hnsw", table_name="chunks", schema="ai")
    op.execute("ALTER TABLE ai.chunks ALTER COLUMN embedding TYPE vector")
    for dim in DIMENSIONS:
        op.execute(
            f"CREATE INDEX ix_chunks_embedding_{dim}_hnsw ON ai.chunks "
            f"USING hnsw ((embedding::vector({dim})) vector_cosine_ops) "
            f"WITH (m = 16, ef_construction = 64) WHERE embedding_dim = {dim}"
        )


def downgrade() -> None:
    # only chunks of 384 dimensions fit the old column: others must be deleted first
    for dim in DIMENSIONS:
        op.drop_index(f"ix_chunks_embedding_{dim}_hnsw", table_name="chunks", schema="ai")
    op.execute("ALTER TABLE ai.chunks ALTER COLUMN embedding TYPE vector(384)")
    op.execute(
        "CREATE INDEX ix_chunks_embedding_hnsw ON ai.chunks USING hnsw "
        "(embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
    )
    op.drop_index(
        "ix_ingestion_queue_pending_kind_created_at", table_name="ingestion_queue", schema="ai"
    )
    op.drop_column("ingestion_queue", "kind", schema="ai")
