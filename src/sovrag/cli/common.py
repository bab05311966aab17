"""What every command shares: the consoles, the settings of this invocation, and the one error exit."""

from __future__ import annotations

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
