"""collection-scoped API keys; the operator's error detail apart from the reason

``api_keys.collections``: the collections a key reaches (NULL, the default for every
existing key: all of them). ``ingestion_queue.error_detail``: the exception class and
text and the worker's host:pid of a failure, shown to admin keys only; ``last_error``
keeps the reason every reader of the document may see.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 02:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "api_keys",
        sa.Column("collections", postgresql.ARRAY(sa.String(100)), nullable=True),
        schema="ai",
    )
    op.add_column(
        "ingestion_queue", sa.Column("error_detail", sa.Text(), nullable=True), schema="ai"
    )


def downgrade() -> None:
    op.drop_column("ingestion_queue", "error_detail", schema="ai")
    op.drop_column("api_keys", "collections", schema="ai")
