"""The CLI through a running server: when `sovrag serve` owns the data directory, commands go to it.

The way the `ollama` CLI talks to `ollama serve`: the server holds the data directory's lock, so opening the
embedded store here would fail; instead `ingest`, `search`, `ask` and `collections` send their request over
the server's Unix socket (`<data dir>/server.sock`, mode 0600: only the directory's owner can connect) and
print the same output as when they open the store themselves (`eval` too: the server answers and judges with
its model and saves the run where the CLI would). With no server running, `owner()` is None
and the commands open the store directly, as before.
"""

from __future__ import annotations

from sovrag.config import Settings
from sovrag.errors import SovragError
from sovrag.serve.localclient import ServerClient, owner

__all__ = ["ServerClient", "owner", "store_collection"]


def store_collection(settings: Settings, collection: str, tenant: str | None) -> str:
    """The store name of `collection`: the CLI's own, or (`--tenant NAME`) that server tenant's collection, the
    tenant looked up in the server's database."""
    if tenant is None:
        return collection
    import sqlite3

    from sovrag.tenancy import store_name

    db = settings.data_dir / "server.db"
    if not db.is_file():
        raise SovragError(f"--tenant {tenant!r}: this data directory ({settings.data_dir}) has no server tenants")
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT id FROM tenants WHERE name = ?", (tenant,)).fetchone()
    if row is None:
        raise SovragError(f"--tenant {tenant!r}: no such tenant in {db}")
    return store_name(int(row[0]), collection)
