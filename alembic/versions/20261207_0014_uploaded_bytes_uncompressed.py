"""uploaded bytes stored as sent, without PostgreSQL's compression

``document_contents.data`` used the default storage: PostgreSQL tried pglz on every
upload over ~2 KB. Uploads are mostly DOCX (a zip), PDF (deflate streams), images and
other compressed containers, where the attempt finds nothing and still costs the CPU:
measured on the 117 law DOCX of the development corpus (``python -m
bench.postgres_costs``, two runs), 0.85-1.11 ms of PostgreSQL CPU per upload with
compression tried against 0.34-0.43 without, for the same 7.3 MB on disk (embedded PostgreSQL 16, the AMD
EPYC 2-core machine). EXTERNAL keeps the value out of
line without compressing it. What it costs: a large HTML, text or uncompressed PDF
takes its full size on disk. Rows stored before keep their compression (reading them
decompresses as before).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 04:50:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE ai.document_contents ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.execute("ALTER TABLE ai.document_contents ALTER COLUMN data SET STORAGE EXTENDED")
