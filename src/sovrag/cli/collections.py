"""`sovrag collections list|delete`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from sovrag.cli.common import fail, out, settings
from sovrag.errors import SovragError

collections_app = typer.Typer(help="List and delete collections.", no_args_is_help=True)


@collections_app.command("list")
def collections_list(ctx: typer.Context, tenant: Annotated[str | None, typer.Option(
        help="List a server tenant's collections instead of the CLI's")] = None) -> None:
    """The collections with their chunk counts (through the server when one owns the data directory)."""
    from sovrag import tenancy
    from sovrag.cli.remote import owner, store_collection
    from sovrag.collection import list_collections

    try:
        s = settings(ctx)
        server = owner(s)
        if server is not None:
            rows = [(r["name"], r["meta"], r["chunks"]) for r in server.collections(tenant)]
        else:
            prefix = store_collection(s, "", tenant, ctx.meta.get("config_file")) if tenant else None
            rows = []
            for name, meta, count in list_collections(s):
                split = tenancy.split_store_name(name)
                if prefix is None and split is None:
                    rows.append((name, meta, count))
                elif prefix is not None and name.startswith(prefix):
                    rows.append((name[len(prefix):], meta, count))
    except SovragError as e:
        fail(e)
        return
    table = Table("name", "chunks", "embedder", "created")
    for name, meta, count in rows:
        table.add_row(name, str(count), str(meta.get("embedder")), str(meta.get("created")))
    out.print(table)


@collections_app.command("delete")
def collections_delete(ctx: typer.Context, name: str,
                       yes: Annotated[bool, typer.Option("--yes", help="Do not ask")] = False,
                       tenant: Annotated[str | None, typer.Option(help="A server tenant's collection")] = None) -> None:
    """Delete a collection and all its chunks."""
    from sovrag.cli.remote import owner, store_collection
    from sovrag.collection import drop_collection

    if not yes and not typer.confirm(f"Delete collection {name!r} and all its chunks?"):
        raise typer.Exit(1)
    try:
        s = settings(ctx)
        server = owner(s)
        if server is not None:
            server.delete_collection(name, tenant)
        else:
            drop_collection(s, store_collection(s, name, tenant, ctx.meta.get("config_file")))
    except SovragError as e:
        fail(e)
    out.print(f"deleted collection {name}")
