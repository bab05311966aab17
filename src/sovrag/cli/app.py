"""The root of the terminal interface: global options, then one module per command group (no circles:
every command module imports `common` only, and this module imports them all)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from sovrag.cli.ask import ask, chat, search
from sovrag.cli.bench import bench, cost
from sovrag.cli.collections import collections_app
from sovrag.cli.common import StderrHandler, fail
from sovrag.cli.evaluate import check, eval_
from sovrag.cli.ingest import ingest
from sovrag.cli.mcp import mcp
from sovrag.cli.models import models_app
from sovrag.cli.serve import serve
from sovrag.cli.tune import tune
from sovrag.config import load_settings
from sovrag.errors import SovragError

app = typer.Typer(help="sovrag: grounded answers from your documents with open models, on your hardware.",
                  no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None)
app.add_typer(models_app, name="models")
app.add_typer(collections_app, name="collections")
app.command()(ingest)
app.command()(search)
app.command()(ask)
app.command()(chat)
app.command()(serve)
app.command("eval")(eval_)
app.command("check")(check)
app.command()(bench)
app.command()(cost)
app.command()(mcp)
app.command()(tune)


def _version(value: bool) -> None:
    if value:
        from sovrag import __version__

        print(f"sovrag {__version__}")
        raise typer.Exit()


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
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version,
                                          help="Print sovrag's version and exit")] = False,
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[StderrHandler()],
                        format="%(levelname)s %(name)s: %(message)s")
    overrides = {"data_dir": data_dir, "store": store, "embedder": embedder}
    config = config or (Path(os.environ["SOVRAG_CONFIG"]) if os.environ.get("SOVRAG_CONFIG") else None)
    ctx.meta.update(config_file=config, overrides=overrides)
    try:
        ctx.obj = load_settings(config, **overrides)
    except SovragError as e:
        fail(e)
