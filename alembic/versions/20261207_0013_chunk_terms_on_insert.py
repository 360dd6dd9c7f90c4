"""chunk terms and BM25 length computed as a chunk is written, not by a second UPDATE

``search_vector`` was a generated column, and ``keyword_length`` (the BM25 length:
its lexemes counted with repetitions) was filled by an UPDATE of every chunk just
inserted (a generated column cannot read another). That UPDATE rewrote each new row:
with no room on the page for a HOT update (a chunk row is ~4 KB), every index took
every chunk twice, the HNSW graph and the GIN index included (measured: 2,400 updates,
8 of them HOT). A BEFORE trigger now computes both from the chunk's heading, context
and text as the row is written (COPY included); the expression is the generated
column's, unchanged, so the stored terms do not change.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 04:30:00.000000+00:00
"""

# ruff: noqa: S608 - the statements are built from the fixed expression above, no input

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FOLD = (
    "'ÀÁÂÃÄÅàáâãäåÈÉÊËèéêëÌÍÎÏìíîïÒÓÔÕÖòóôõöÙÚÛÜùúûüÇçÑñÝýÿ', "
    "'AAAAAAaaaaaaEEEEeeeeIIIIiiiiOOOOOoooooUUUUuuuuCcNnYyy'"
)


def _vector(row: str) -> str:
    return (
        f"to_tsvector('portuguese'::regconfig, translate(coalesce({row}heading, '') || ' ' || "
        f"coalesce({row}context, '') || ' ' || {row}text, {_FOLD}))"
    )


def upgrade() -> None:
    op.execute("ALTER TABLE ai.chunks ALTER COLUMN search_vector DROP EXPRESSION")
    op.execute(
        f"""
        CREATE FUNCTION ai.chunk_terms() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.search_vector := {_vector("NEW.")};
            NEW.keyword_length := coalesce(
                (SELECT sum(coalesce(cardinality(u.positions), 1))
                 FROM unnest(NEW.search_vector) AS u),
                0
            );
            RETURN NEW;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER chunk_terms BEFORE INSERT OR UPDATE OF heading, context, text "
        "ON ai.chunks FOR EACH ROW EXECUTE FUNCTION ai.chunk_terms()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER chunk_terms ON ai.chunks")
    op.execute("DROP FUNCTION ai.chunk_terms()")
    # a column cannot become generated again: it is made anew (same values)
    op.drop_index(
        "ix_chunks_search_vector", table_name="chunks", schema="ai", postgresql_using="gin"
    )
    op.drop_column("chunks", "search_vector", schema="ai")
    op.add_column(
        "chunks",
        sa.Column(
            "search_vector",
            postgresql.TSVECTOR(),
            sa.Computed(_vector(""), persisted=True),
            nullable=False,
        ),
        schema="ai",
    )
    op.create_index(
        "ix_chunks_search_vector",
        "chunks",
        ["search_vector"],
        unique=False,
        schema="ai",
        postgresql_using="gin",
    )
