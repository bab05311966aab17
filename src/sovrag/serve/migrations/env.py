"""Alembic's environment for the server database: runs on the connection `sovrag.serve.db.migrate` opened (and,
on PostgreSQL, holds an advisory lock on), so workers starting together migrate once."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
