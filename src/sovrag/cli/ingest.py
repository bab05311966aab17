"""`sovrag ingest`: a document's journey (load -> chunk -> embed -> store), with a progress bar and a report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sovrag.cli.common import err, fail, out, settings
from sovrag.config import Settings
from sovrag.errors import SovragError

if TYPE_CHECKING:
    from sovrag.ingest.sync import IngestReport


def ingest(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (walked recursively)")],
    collection: Annotated[str, typer.Option("--collection", "-c", help="Collection name (created if new)")],
    include: Annotated[list[str] | None, typer.Option(help="Only files matching this glob (repeatable)")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Skip files matching this glob (repeatable)")] = None,
    sync: Annotated[bool, typer.Option(help="Also delete documents whose files vanished from these paths")]
    = False,
    chunk_mode: Annotated[str | None, typer.Option(help="recursive, or document: keep each document "
                                                   "whole when it fits --document-max-tokens")] = None,
    chunk_tokens: Annotated[int | None, typer.Option(help="Max tokens per chunk")] = None,
    document_max_tokens: Annotated[int | None, typer.Option(help="Context size for document mode")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    tenant: Annotated[str | None, typer.Option(help="A server tenant's collection of this name")] = None,
    ray: Annotated[str | None, typer.Option(help="Parse, chunk and embed on a Ray cluster: its address "
                                            "(host:port), or auto (the cluster this machine belongs to)")] = None,
) -> None:
    """Ingest documents: only new and changed files are (re)indexed. Exit 3 if some files failed."""
    from sovrag.cli.remote import owner, store_collection
    from sovrag.ingest.sync import IngestReport

    try:
        s = settings(ctx).with_overrides(chunk_mode=chunk_mode, chunk_tokens=chunk_tokens,
                                          document_max_tokens=document_max_tokens)
        server = owner(s)
        if server is not None and ray:
            raise SovragError(f"--ray: the server (process {server.pid}) owns this data directory; a Ray ingestion "
                              "runs in this process: stop the server, or give this command another --data-dir "
                              "with a shared --store")
        if server is not None:  # the running server owns the data directory: it ingests for us
            with err.status(f"ingesting through the server (process {server.pid})…", spinner="dots"):
                report = IngestReport.from_dict(server.ingest({
                    "paths": [str(p) for p in paths], "collection": collection, "tenant": tenant,
                    "include": include or [], "exclude": exclude or [], "sync": sync, "chunk_mode": chunk_mode,
                    "chunk_tokens": chunk_tokens, "document_max_tokens": document_max_tokens}))
        else:
            name = store_collection(s, collection, tenant, ctx.meta.get("config_file"))
            report = _ingest_here(s, name, paths, include or [], exclude or [], sync, quiet=as_json, ray=ray)
    except SovragError as e:
        fail(e)
        return
    _print_report(report, collection, as_json)


def _ingest_here(s: Settings, name: str, paths: list[Path], include: list[str], exclude: list[str], sync: bool,
                 quiet: bool, ray: str | None = None) -> IngestReport:
    """The ingest itself, in this process, with a progress bar."""
    from sovrag.collection import open_collection
    from sovrag.ingest.sync import ingest as run_ingest

    with open_collection(s, name, create=True) as col:
        with Progress(TextColumn("[bold]ingest[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=True, disable=quiet) as bar:
            task = bar.add_task("", total=None)

            def progress(path: str, status: str) -> None:
                bar.update(task, advance=1, description=f"{status}: {Path(path).name}")

            return run_ingest(s, col, paths, include, exclude, sync, progress, ray=ray)


def _print_report(report: IngestReport, collection: str, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps({**report.summary(), "failures": [
            {"source": src, "reason": why} for src, why in report.failed], "skipped_files": [
            {"source": src, "reason": why} for src, why in report.skipped]}))
    else:
        sm = report.summary()
        out.print(f"collection [bold]{collection}[/]: {sm['added']} added, {sm['updated']} updated, "
                  f"{sm['unchanged']} unchanged, {sm['deleted']} deleted, {sm['failed']} failed, "
                  f"{sm['skipped']} skipped; "
                  f"{sm['chunks']} chunks written, {sm['chunks_deleted']} removed in {sm['seconds']} s")
        for src, why in report.failed:
            out.print(f"  [red]failed[/] {escape(src)}: {escape(why)}", highlight=False)
        for src, why in report.skipped:
            out.print(f"  [dim]skipped[/] {escape(src)}: {escape(why)}", highlight=False)
    if report.failed:
        raise typer.Exit(3)
