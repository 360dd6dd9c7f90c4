"""failure kind of FAILED jobs

Whether a FAILED job failed because of the document itself (retrying cannot help),
because transient errors used up its attempts, or because someone cancelled it.
Existing FAILED jobs are classified from their recorded reason.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 21:10:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "ingestion_queue", sa.Column("failure_kind", sa.String(20), nullable=True), schema="ai"
    )
    op.execute(
        """
        UPDATE ai.ingestion_queue
        SET failure_kind = CASE
            WHEN last_error LIKE 'cancelled%' THEN 'cancelled'
            WHEN last_error LIKE '%gave up after%' THEN 'gave_up'
            ELSE 'document'
        END
        WHERE status = CAST('FAILED' AS ai.ingestionstatus)
        """
    )


def downgrade() -> None:
    op.drop_column("ingestion_queue", "failure_kind", schema="ai")
