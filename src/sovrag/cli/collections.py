"""`sovrag collections list|delete`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from sovrag.cli.common import fail, out, settings
from sovrag.errors import SovragError

collections_app = typer.Typer(help="List and delete collections.", no_args_is_help=True)


@collections_app.command("list")
def collections_list(ctx: typer.Context) -> None:
    from sovrag.collection import list_collections

    try:
        rows = list_collections(settings(ctx))
    except SovragError as e:
        fail(e)
        return
    table = Table("name", "chunks", "embedder", "created")
    for name, meta, count in rows:
        table.add_row(name, str(count), str(meta.get("embedder")), str(meta.get("created")))
    out.print(table)


@collections_app.command("delete")
def collections_delete(ctx: typer.Context, name: str,
                       yes: Annotated[bool, typer.Option("--yes", help="Do not ask")] = False) -> None:
    from sovrag.collection import drop_collection

    if not yes and not typer.confirm(f"Delete collection {name!r} and all its chunks?"):
        raise typer.Exit(1)
    try:
        drop_collection(settings(ctx), name)
    except SovragError as e:
        fail(e)
    out.print(f"deleted collection {name}")
