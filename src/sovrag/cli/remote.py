"""The CLI through a running server: when `sovrag serve` owns the data directory, commands go to it.

The way the `ollama` CLI talks to `ollama serve`: the server holds the data directory's lock, so opening the
embedded store here would fail; instead `ingest`, `search`, `ask` and `collections` send their request over
the server's Unix socket (`<data dir>/server.sock`, mode 0600: only the directory's owner can connect) and
print the same output as when they open the store themselves (`eval` too: the server answers and judges with
its model and saves the run where the CLI would). With no server running, `owner()` is None
and the commands open the store directly, as before.
"""

from __future__ import annotations

from pathlib import Path

from sovrag.config import Settings, redact_url
from sovrag.errors import ConfigError, SovragError
from sovrag.serve.localclient import ServerClient, owner

__all__ = ["ServerClient", "owner", "store_collection"]


def store_collection(settings: Settings, collection: str, tenant: str | None,
                     config_file: Path | None = None) -> str:
    """The store name of `collection`: the CLI's own, or (`--tenant NAME`) that server tenant's collection, the
    tenant looked up in the server's database: SQLite in the data directory, or the PostgreSQL database of the
    [serve] settings (the config file's table, SOVRAG_SERVE_DATABASE) when the server runs on one."""
    if tenant is None:
        return collection
    from sovrag.serve.db import is_postgres
    from sovrag.serve.options import ServerOptions
    from sovrag.tenancy import store_name

    database = ServerOptions.from_env(config_file).database
    tenant_id = _pg_tenant(database, tenant) if is_postgres(database) else _sqlite_tenant(settings, tenant)
    return store_name(tenant_id, collection)


def _sqlite_tenant(settings: Settings, tenant: str) -> int:
    import sqlite3

    db = settings.data_dir / "server.db"
    if not db.is_file():
        raise SovragError(f"--tenant {tenant!r}: this data directory ({settings.data_dir}) has no server tenants")
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT id FROM tenants WHERE name = ?", (tenant,)).fetchone()
    if row is None:
        raise SovragError(f"--tenant {tenant!r}: no such tenant in {db}")
    return int(row[0])


def _pg_tenant(database: str, tenant: str) -> int:
    """Read only: the CLI neither migrates nor writes the server's database."""
    where = redact_url(database)
    try:
        import psycopg
    except ImportError as e:
        raise ConfigError(f"--tenant {tenant!r}: the server database is PostgreSQL ({where}), which needs its "
                          f"extra: pip install 'sovrag[postgres]'") from e
    try:
        with psycopg.connect(database, connect_timeout=10) as conn:
            row = conn.execute("SELECT id FROM tenants WHERE name = %s", (tenant,)).fetchone()
    except psycopg.errors.UndefinedTable as e:
        raise SovragError(f"--tenant {tenant!r}: the server database {where} has no tenants table (has "
                          "`sovrag serve` ever run on it?)") from e
    except psycopg.Error as e:
        lines = str(e).strip().splitlines()
        raise SovragError(f"--tenant {tenant!r}: cannot read the server database {where} "
                          f"({lines[-1] if lines else type(e).__name__})") from e
    if row is None:
        raise SovragError(f"--tenant {tenant!r}: no such tenant in {where}")
    return int(row[0])
