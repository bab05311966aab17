"""The server's records as first released: tenants, API keys, ingestion jobs, feedback, uploaded files.

A server.db made before migrations existed already has these tables: only missing ones are created.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    have = set(sa.inspect(op.get_bind()).get_table_names())
    if "tenants" not in have:
        op.create_table(
            "tenants",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("name", sa.Text, nullable=False, unique=True),
            sa.Column("created", sa.Float, nullable=False),
            sqlite_autoincrement=True,  # ids of deleted tenants are never handed out again
        )
    if "api_keys" not in have:
        op.create_table(
            "api_keys",
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
            sa.Column("key_hash", sa.Text, nullable=False, unique=True),
            sa.Column("prefix", sa.Text, nullable=False),
            sa.Column("name", sa.Text, nullable=False, server_default=""),
            sa.Column("rate_limit_rpm", sa.Integer),
            sa.Column("created", sa.Float, nullable=False),
            sa.Column("revoked", sa.Float),
        )
    if "jobs" not in have:
        op.create_table(
            "jobs",
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("tenant_id", sa.Integer, nullable=False),
            sa.Column("collection", sa.Text, nullable=False),
            sa.Column("state", sa.Text, nullable=False),
            sa.Column("files_total", sa.Integer, nullable=False),
            sa.Column("files_done", sa.Integer, nullable=False, server_default="0"),
            sa.Column("report", sa.Text, nullable=False, server_default="{}"),
            sa.Column("error", sa.Text, nullable=False, server_default=""),
            sa.Column("paths", sa.Text, nullable=False),
            sa.Column("created", sa.Float, nullable=False),
            sa.Column("started", sa.Float),
            sa.Column("finished", sa.Float),
        )
        op.create_index("jobs_tenant", "jobs", ["tenant_id", "collection", "state"])
    if "feedback" not in have:
        op.create_table(
            "feedback",
            sa.Column("id", sa.Text, primary_key=True),
            sa.Column("tenant_id", sa.Integer, nullable=False),
            sa.Column("collection", sa.Text, nullable=False),
            sa.Column("question", sa.Text, nullable=False),
            sa.Column("answer", sa.Text, nullable=False),
            sa.Column("rating", sa.Text, nullable=False),
            sa.Column("comment", sa.Text, nullable=False, server_default=""),
            sa.Column("sources", sa.Text, nullable=False, server_default="[]"),
            sa.Column("answer_id", sa.Text, nullable=False, server_default=""),
            sa.Column("key_id", sa.Text, nullable=False, server_default=""),
            sa.Column("created", sa.Float, nullable=False),
            sa.Column("updated", sa.Float, nullable=False),
        )
        op.create_index("feedback_by_collection", "feedback", ["tenant_id", "collection", "created"])
    if "files" not in have:
        op.create_table(
            "files",
            sa.Column("tenant_id", sa.Integer, primary_key=True),
            sa.Column("collection", sa.Text, primary_key=True),
            sa.Column("doc_id", sa.Text, primary_key=True),
            sa.Column("name", sa.Text, nullable=False),
            sa.Column("bytes", sa.Integer, nullable=False),
            sa.Column("uploaded", sa.Float, nullable=False),
            sa.Column("title", sa.Text, nullable=False, server_default=""),
            sa.Column("format", sa.Text, nullable=False, server_default=""),
        )
