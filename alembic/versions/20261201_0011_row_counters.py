"""counters of jobs by status and chunks by model, kept by triggers

``GET /v1/stats`` counted jobs by status and chunks by model with a scan of every row:
85 ms at a million jobs (bench/queue_scale.py). Statement-level triggers on
``ingestion_queue`` and ``chunks`` now append each statement's net change to
``row_count_deltas`` (insert-only: writers never wait on each other, and never
deadlock); the sweeper folds the deltas into ``row_counts`` every interval; a read sums
the two. Existing rows are counted once here, under the triggers' table locks.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 08:30:00.000000+00:00
"""

# ruff: noqa: S608 - the statements are built from the fixed names above, no input

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# counter -> (table, the key of a row as text)
COUNTED = {
    "jobs": ("ingestion_queue", "status::text"),
    "chunks": ("chunks", "embedding_dim::text || ':' || model_name"),
}
EVENTS = ("insert", "delete", "update")


def upgrade() -> None:
    op.create_table(
        "row_counts",
        sa.Column("counter", sa.String(20), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("counter", "key", name=op.f("pk_row_counts")),
        schema="ai",
    )
    op.create_table(
        "row_count_deltas",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("counter", sa.String(20), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_row_count_deltas")),
        schema="ai",
    )
    for counter, (table, key) in COUNTED.items():
        for event in EVENTS:
            rows = {
                "insert": f"SELECT {key} AS k, 1 AS n FROM changed",
                "delete": f"SELECT {key} AS k, -1 AS n FROM gone",
                "update": f"SELECT {key} AS k, 1 AS n FROM changed "
                f"UNION ALL SELECT {key} AS k, -1 AS n FROM gone",
            }[event]
            op.execute(
                f"""
                CREATE FUNCTION ai.count_{counter}_{event}() RETURNS trigger
                LANGUAGE plpgsql AS $$
                BEGIN
                    INSERT INTO ai.row_count_deltas (counter, key, n)
                    SELECT '{counter}', k, sum(n) FROM ({rows}) AS r
                    GROUP BY k HAVING sum(n) <> 0;
                    RETURN NULL;
                END $$
                """
            )
            referencing = {
                "insert": "NEW TABLE AS changed",
                "delete": "OLD TABLE AS gone",
                "update": "NEW TABLE AS changed OLD TABLE AS gone",
            }[event]
            op.execute(
                f"CREATE TRIGGER count_{counter}_{event} AFTER {event.upper()} ON ai.{table} "
                f"REFERENCING {referencing} FOR EACH STATEMENT "
                f"EXECUTE FUNCTION ai.count_{counter}_{event}()"
            )
        op.execute(
            f"INSERT INTO ai.row_counts (counter, key, n) "
            f"SELECT '{counter}', {key}, count(*) FROM ai.{table} GROUP BY 2"
        )


def downgrade() -> None:
    for counter, (table, _key) in COUNTED.items():
        for event in EVENTS:
            op.execute(f"DROP TRIGGER count_{counter}_{event} ON ai.{table}")
            op.execute(f"DROP FUNCTION ai.count_{counter}_{event}()")
    op.drop_table("row_count_deltas", schema="ai")
    op.drop_table("row_counts", schema="ai")
