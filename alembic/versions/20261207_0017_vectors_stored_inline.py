"""chunk vectors kept inside the row

pgvector's type asks for EXTERNAL storage: once a row passes PostgreSQL's ~2 KB
threshold, the toaster moves the vector out of line first, being the largest value. A
chunk's row is its vector (1,540 bytes at 384 dimensions), its text (about 600 bytes
on real laws), its lexemes and its legal reference, so most vectors lived in the TOAST
table: every distance computed from the table, not the index (the exact search under a
filter that keeps few chunks, and the distance of each of the HNSW index's `ef`
candidates), fetched it through the TOAST index first.

MAIN keeps the vector in the row: the toaster compresses and moves the text, lexemes
and legal reference first, and moves a vector out of line only when the row still
does not fit (a vector of several thousand dimensions). Rows stored before keep their
layout until they are rewritten (a re-embedding, a new version, or VACUUM FULL).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 10:15:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE ai.chunks ALTER COLUMN embedding SET STORAGE MAIN")


def downgrade() -> None:
    op.execute("ALTER TABLE ai.chunks ALTER COLUMN embedding SET STORAGE EXTERNAL")
