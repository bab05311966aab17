"""Why an uploaded file could not be indexed (files.error) and keys that expire (api_keys.expires).

Servers before migrations added these columns in place at startup: a column already there is kept.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    if "error" not in _columns("files"):
        op.add_column("files", sa.Column("error", sa.Text, nullable=False, server_default=""))
    if "expires" not in _columns("api_keys"):
        op.add_column("api_keys", sa.Column("expires", sa.Float))
