"""BM25 postings in impact order: a keyword query reads each term's best postings first

``keyword_postings`` gains ``impact`` (the posting's share of a BM25 score before the
term's idf, computed from tf and the chunk's length against a fixed average length)
and ``document_id`` (so filters on documents apply to postings as they are read), and
loses ``length`` (now inside ``impact``). A new index ``(term, impact DESC) INCLUDE
(chunk_id, document_id)`` serves the bounded top-k read (keyword_index.bm25_sql).
Stored postings are backfilled from their chunks.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 08:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# frozen here (keyword_index.IMPACT_SQL): other constants are a migration of their own
K1, B, AVGDL = 1.2, 0.75, 92.0
IMPACT = f"(p.tf * {K1 + 1} / (p.tf + {K1} * (1 - {B} + {B} * c.keyword_length / {AVGDL})))"


def upgrade() -> None:
    op.add_column(
        "keyword_postings",
        sa.Column("document_id", postgresql.UUID(as_uuid=True), nullable=True),
        schema="ai",
    )
    op.add_column(
        "keyword_postings", sa.Column("impact", postgresql.REAL(), nullable=True), schema="ai"
    )
    backfill = (
        f"UPDATE ai.keyword_postings AS p SET document_id = c.document_id, impact = {IMPACT} "  # noqa: S608 - frozen constants
        "FROM ai.chunks AS c WHERE c.id = p.chunk_id"
    )
    op.execute(backfill)
    op.alter_column("keyword_postings", "document_id", nullable=False, schema="ai")
    op.alter_column("keyword_postings", "impact", nullable=False, schema="ai")
    op.drop_column("keyword_postings", "length", schema="ai")
    op.create_index(
        "ix_keyword_postings_term_impact",
        "keyword_postings",
        ["term", sa.text("impact DESC")],
        schema="ai",
        postgresql_include=["chunk_id", "document_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_keyword_postings_term_impact", table_name="keyword_postings", schema="ai")
    op.add_column("keyword_postings", sa.Column("length", sa.Integer(), nullable=True), schema="ai")
    op.execute(
        "UPDATE ai.keyword_postings AS p SET length = c.keyword_length "
        "FROM ai.chunks AS c WHERE c.id = p.chunk_id"
    )
    op.alter_column("keyword_postings", "length", nullable=False, schema="ai")
    op.drop_column("keyword_postings", "impact", schema="ai")
    op.drop_column("keyword_postings", "document_id", schema="ai")
