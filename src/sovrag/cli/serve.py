"""`sovrag serve`: the OpenAI-compatible API and web UI under uvicorn."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from sovrag.cli.common import fail, settings
from sovrag.config import load_settings
from sovrag.errors import SovragError


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
            s = load_settings(config, **ctx.meta["overrides"], llm=llm)
        else:
            s = settings(ctx).with_overrides(llm=llm)
        opts = ServerOptions.from_env(config or ctx.meta["config_file"])
        application = create_app(s, options=opts)
    except SovragError as e:
        fail(e)
        return
    raise_fd_limit()
    server = uvicorn.Server(uvicorn_config(application, host, port, opts, log_level=log_level.lower(),
                                           access_log=False, log_config=None, timeout_graceful_shutdown=60))
    server.run()
