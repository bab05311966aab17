"""An MCP server (the official MCP Python SDK's `MCPServer`) exposing sovrag's search and verified answers.

Tools: `list_collections`, `search` (passages with source, page, headings and score) and `ask` (the answer,
each sentence with whether the sources support it, the numbered sources it cites). Run by `sovrag mcp` over stdio
(an assistant launches it) or streamable HTTP. What it reaches: a tenant of a sovrag server (`--url` with its
key), this machine's data directory (its CLI collections), or, over HTTP with `--url` and no key, the tenant of
whichever key each MCP client sends (`Authorization: Bearer <tenant key>`, passed on to the sovrag server, which
checks it): one MCP endpoint for many tenants, each seeing only its own collections.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from sovrag import __version__
from sovrag.errors import SovragError
from sovrag.integrations.client import Client, answer_view

INSTRUCTIONS = (
    "sovrag answers from a team's own documents. Use `search` to find passages, `ask` for an answer whose every "
    "sentence was checked against the sources (cite them as [n]; if `abstained` is true the documents do not "
    "answer the question: say so rather than guessing). `list_collections` names the collections."
)


def build(client: Client | None, name: str = "sovrag",
          for_key: Callable[[str, str], Client] | None = None) -> MCPServer:
    """The MCP server over `client`, or (client None) over `for_key(<the caller's bearer key>, <its address>)`."""
    if (client is None) == (for_key is None):
        raise ValueError("build: give a client or for_key")
    server = MCPServer(name, version=__version__, instructions=INSTRUCTIONS)
    clients: dict[str, Client] = {}

    def slot(ctx: Context) -> tuple[str, str, str]:
        """(cache slot, key, address) of the caller's bearer key."""
        request = ctx.request_context.request
        header = request.headers.get("authorization", "") if request is not None else ""
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ToolError("this MCP server passes each client's sovrag key on: send 'Authorization: Bearer "
                            "<tenant key>'")
        # The caller's address goes along (X-Forwarded-For, which sovrag's uvicorn trusts from loopback), so the
        # server throttles failed sign-ins per MCP client, not for everyone behind this one relay.
        addr = request.client.host if request is not None and request.client else "unknown"
        return f"{addr} {key.strip()}", key.strip(), addr

    def reach(ctx: Context) -> Client:
        if client is not None:
            return client
        name, key, addr = slot(ctx)
        if name not in clients:
            if len(clients) >= 256:  # bounded, whatever the number of keys tried
                for old in clients.values():
                    old.close()
                clients.clear()
            clients[name] = for_key(key, addr)  # type: ignore[misc]
        return clients[name]

    def failed(ctx: Context, e: SovragError) -> ToolError:
        """The tool's error; a relayed key the server refused is not kept."""
        if client is None and "(HTTP 401)" in str(e):
            gone = clients.pop(slot(ctx)[0], None)
            if gone is not None:
                gone.close()
        return ToolError(str(e))

    @server.tool(description="The document collections that can be searched and asked.")
    async def list_collections(ctx: Context) -> dict[str, Any]:
        try:
            return {"collections": await _collections(reach(ctx))}
        except SovragError as e:
            raise failed(ctx, e) from e

    @server.tool(description="Search a collection (hybrid BM25 + dense by default): the best passages with their "
                 "source file, page, headings and score.")
    async def search(collection: str, query: str, ctx: Context, top_k: int = 5,
                     mode: Literal["hybrid", "dense", "bm25"] = "hybrid") -> dict[str, Any]:
        if not 1 <= top_k <= 50:
            raise ToolError(f"top_k: {top_k} is out of range; use 1 to 50")
        try:
            hits = await reach(ctx).asearch(collection, query, top_k=top_k, mode=mode)
        except SovragError as e:
            raise failed(ctx, e) from e
        return {"collection": collection, "query": query,
                "passages": [{"text": p.text, **p.describe()} for p in hits]}

    @server.tool(description="Answer a question from a collection's documents with an open LLM: every sentence is "
                 "verified against the retrieved sources and cites them as [n]; `abstained` is true when the "
                 "documents do not answer it.")
    async def ask(collection: str, question: str, ctx: Context, top_k: int | None = None) -> dict[str, Any]:
        if top_k is not None and not 1 <= top_k <= 50:
            raise ToolError(f"top_k: {top_k} is out of range; use 1 to 50")
        try:
            answer = await reach(ctx).aask(collection, question, top_k=top_k)
        except SovragError as e:
            raise failed(ctx, e) from e
        return answer_view(answer)

    return server


async def _collections(client: Client) -> list[str]:
    import anyio

    return await anyio.to_thread.run_sync(client.collections)


def run(client: Client | None, transport: Literal["stdio", "http"] = "stdio", host: str = "127.0.0.1",
        port: int = 8765, path: str = "/mcp", for_key: Callable[[str, str], Client] | None = None) -> None:
    server = build(client, for_key=for_key)
    if transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host=host, port=port, streamable_http_path=path)
