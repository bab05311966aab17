"""`sovrag serve`: the OpenAI-compatible API and web UI under uvicorn."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sovrag.cli.common import StderrHandler, fail, settings
from sovrag.config import load_settings
from sovrag.errors import SovragError

if TYPE_CHECKING:
    from sovrag.serve.owner import DataDirOwner


def _owned_server(cfg: Any, owner: DataDirOwner) -> Any:
    """uvicorn's Server, releasing the data directory as its shutdown ends: uvicorn re-raises SIGTERM after
    shutting down, so code after run() never sees a signalled exit."""
    import uvicorn

    class OwnedServer(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            try:
                await super().shutdown(sockets)
            finally:
                owner.release()

    return OwnedServer(cfg)


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

    from sovrag.embed import create_embedder
    from sovrag.serve import create_app
    from sovrag.serve.metrics import JsonFormatter, ThrottleFilter
    from sovrag.serve.owner import DataDirOwner
    from sovrag.serve.protocol import raise_fd_limit, uvicorn_config

    handler = StderrHandler()
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
        create_embedder(s)  # a missing or broken model is one line here, not a traceback from uvicorn's startup
        application = create_app(s, options=opts)
        owner = DataDirOwner.acquire(s.data_dir, url=f"http://{host}:{port}")  # one server per data directory
    except SovragError as e:
        fail(e)
        return
    try:
        raise_fd_limit()
        cfg = uvicorn_config(application, host, port, opts, log_level=log_level.lower(), access_log=False,
                             log_config=None, timeout_graceful_shutdown=60)
        try:
            tcp = cfg.bind_socket()
        except SystemExit:  # uvicorn exits when the address is taken; say so as sovrag does
            fail(SovragError(f"--host {host} --port {port}: cannot listen there (in use, or not allowed)"))
            return
        _owned_server(cfg, owner).run(sockets=[tcp, owner.sock])  # TCP for clients, the Unix socket for the owner
    finally:
        owner.release()
