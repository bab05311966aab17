"""What every command shares: the consoles, the settings of this invocation, and the one error exit."""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console

from sovrag.config import Settings

out = Console()
err = Console(stderr=True)


def settings(ctx: typer.Context) -> Settings:
    """The settings the root callback loaded for this invocation (file, env vars, global flags)."""
    return ctx.obj  # type: ignore[no-any-return]


def fail(e: Exception) -> None:
    """Print a sovrag error as one line and exit 1 (never a traceback)."""
    err.print(f"[bold red]error:[/] {e}", highlight=False)
    raise typer.Exit(1)


class StderrHandler(logging.StreamHandler):
    """A log handler writing to whatever `sys.stderr` is when a record is emitted, not the stream of the moment
    logging was set up: the CLI run in-process (a test's CliRunner, a notebook) swaps stderr for a buffer it
    closes afterwards, and a handler holding that buffer would fail on every later record."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # the base class assigns it; the current stderr always wins
        pass
