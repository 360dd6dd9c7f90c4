"""ingest batches and the change feed

Documents carry the ingest batch they were uploaded in; jobs carry ``changed_at``, set
by a trigger from the database's clock when a job is created or its status, stage,
attempts or error change (not on lease renewals), with an index for the change feed's
cursor (changed_at, id).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 21:50:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("documents", sa.Column("batch", sa.String(100), nullable=True), schema="ai")
    op.create_index(
        "ix_documents_batch",
        "documents",
        ["batch"],
        schema="ai",
        postgresql_where=sa.text("batch IS NOT NULL"),
    )
    op.add_column(
        "ingestion_queue",
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        schema="ai",
    )
    op.execute("UPDATE ai.ingestion_queue SET changed_at = updated_at")
    op.create_index(
        "ix_ingestion_queue_changed_at_id",
        "ingestion_queue",
        ["changed_at", "id"],
        schema="ai",
    )
    op.execute(
        """
        CREATE FUNCTION ai.touch_changed_at() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            -- what a watcher sees (status, stage, attempts, error); a lease renewal
            -- alone is not a change
            IF TG_OP = 'INSERT' OR (NEW.status, NEW.stage, NEW.attempts, NEW.last_error)
                    IS DISTINCT FROM (OLD.status, OLD.stage, OLD.attempts, OLD.last_error)
            THEN
                NEW.changed_at := clock_timestamp();
            END IF;
            RETURN NEW;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER ingestion_queue_changed_at
        BEFORE INSERT OR UPDATE ON ai.ingestion_queue
        FOR EACH ROW EXECUTE FUNCTION ai.touch_changed_at()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER ingestion_queue_changed_at ON ai.ingestion_queue")
    op.execute("DROP FUNCTION ai.touch_changed_at()")
    op.drop_index("ix_ingestion_queue_changed_at_id", table_name="ingestion_queue", schema="ai")
    op.drop_column("ingestion_queue", "changed_at", schema="ai")
    op.drop_index("ix_documents_batch", table_name="documents", schema="ai")
    op.drop_column("documents", "batch", schema="ai")
