"""`sovrag mcp`: sovrag's search and verified answers as tools for MCP clients (assistants, IDEs, agents)."""

from __future__ import annotations

from typing import Annotated

import typer

from sovrag.cli.common import err, fail, settings
from sovrag.errors import SovragError


def mcp(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option(help="A sovrag server to serve a tenant's collections from (else "
                                            "this machine's data directory) [env SOVRAG_URL]",
                                            envvar="SOVRAG_URL", show_envvar=False)] = None,
    api_key: Annotated[str | None, typer.Option(help="The tenant's key for --url [env SOVRAG_API_KEY]; without "
                                                "one, over http, each MCP client's own bearer key is passed on",
                                                envvar="SOVRAG_API_KEY", show_envvar=False)] = None,
    transport: Annotated[str, typer.Option(help="stdio (launched by the MCP client) or http (streamable HTTP)")]
    = "stdio",
    host: Annotated[str, typer.Option(help="Address for --transport http; anyone who can reach it can use the "
                                      "collections this server reaches")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port for --transport http")] = 8765,
    path: Annotated[str, typer.Option(help="URL path of the MCP endpoint for --transport http")] = "/mcp",
) -> None:
    """Serve search and verified answers over the Model Context Protocol (stdio or streamable HTTP)."""
    if transport not in ("stdio", "http"):
        fail(SovragError(f"--transport {transport!r}: use stdio or http"))
    try:
        from sovrag.integrations.client import connect
        from sovrag.integrations.mcp_server import run
    except ImportError as e:
        fail(SovragError(f"sovrag mcp needs the MCP SDK: pip install 'sovrag[mcp]' ({e})"))
        return
    per_client = bool(url) and not api_key and transport == "http"
    try:
        client = None if per_client else connect(url, api_key=api_key, settings=settings(ctx))
    except SovragError as e:
        fail(e)
        return
    if transport == "http":
        who = (f"each client's own key passed on to {url}" if per_client else
               f"{client!r} with one fixed key (--api-key / SOVRAG_API_KEY) for every client" if url else
               f"{client!r}: no authentication, anyone who reaches this address uses these collections")
        err.print(f"sovrag MCP server on http://{host}:{port}{path} ({who})", highlight=False)
    try:
        run(client, transport, host=host, port=port, path=path,  # type: ignore[arg-type]
            for_key=(lambda key, addr: connect(url, api_key=key, headers={"X-Forwarded-For": addr}))
            if per_client else None)
    except KeyboardInterrupt:
        pass
    finally:
        if client is not None:
            client.close()
