"""job progress: pages read and chunks embedded

Jobs carry ``progress`` (JSONB: pages done/total, chunks done/total and when each
measured stage began), written by the worker about once a second while it works. A
change of progress is a change a watcher sees, so the change-feed trigger now compares
it too.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 23:20:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _trigger_function(compared: str) -> str:
    return f"""
        CREATE OR REPLACE FUNCTION ai.touch_changed_at() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            -- what a watcher sees; a lease renewal alone is not a change
            IF TG_OP = 'INSERT' OR ({", ".join("NEW." + c for c in compared.split())})
                    IS DISTINCT FROM ({", ".join("OLD." + c for c in compared.split())})
            THEN
                NEW.changed_at := clock_timestamp();
            END IF;
            RETURN NEW;
        END $$
        """


def upgrade() -> None:
    op.add_column(
        "ingestion_queue",
        sa.Column("progress", postgresql.JSONB(), nullable=True),
        schema="ai",
    )
    op.execute(_trigger_function("status stage attempts last_error progress"))


def downgrade() -> None:
    op.execute(_trigger_function("status stage attempts last_error"))
    op.drop_column("ingestion_queue", "progress", schema="ai")
