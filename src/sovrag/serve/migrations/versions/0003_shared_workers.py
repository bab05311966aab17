"""Several workers on one database: who runs a job and when it last said so (a worker that stops saying so
loses the job to another), and rate-limit buckets every worker draws from.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.add_column("jobs", sa.Column("worker", sa.Text, nullable=False, server_default=""))
    op.add_column("jobs", sa.Column("heartbeat", sa.Float))
    op.create_index("jobs_queue", "jobs", ["state", "created"])
    op.create_table(
        "rate_buckets",
        sa.Column("bucket", sa.Text, primary_key=True),
        sa.Column("tokens", sa.Float, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
    )
