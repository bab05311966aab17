"""An MCP server (the official MCP Python SDK's `MCPServer`) exposing sovrag's search and verified answers.

Tools: `list_collections`, `search` (passages with source, page, headings and score) and `ask` (the answer,
each sentence with whether the sources support it, the numbered sources it cites). Run by `sovrag mcp` over stdio
(an assistant launches it) or streamable HTTP. What it reaches is one identity: a tenant of a sovrag server
(`--url` + its key), or this machine's data directory (its CLI collections).
"""

from __future__ import annotations

from typing import Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from sovrag import __version__
from sovrag.errors import SovragError
from sovrag.integrations.client import Client, answer_view

INSTRUCTIONS = (
    "sovrag answers from a team's own documents. Use `search` to find passages, `ask` for an answer whose every "
    "sentence was checked against the sources (cite them as [n]; if `abstained` is true the documents do not "
    "answer the question: say so rather than guessing). `list_collections` names the collections."
)


def build(client: Client, name: str = "sovrag") -> MCPServer:
    server = MCPServer(name, version=__version__, instructions=INSTRUCTIONS)

    @server.tool(description="The document collections that can be searched and asked.")
    async def list_collections() -> dict[str, Any]:
        try:
            return {"collections": client.collections()}
        except SovragError as e:
            raise ToolError(str(e)) from e

    @server.tool(description="Search a collection (hybrid BM25 + dense by default): the best passages with their "
                 "source file, page, headings and score.")
    async def search(collection: str, query: str, top_k: int = 5,
                     mode: Literal["hybrid", "dense", "bm25"] = "hybrid") -> dict[str, Any]:
        if not 1 <= top_k <= 50:
            raise ToolError(f"top_k: {top_k} is out of range; use 1 to 50")
        try:
            hits = await client.asearch(collection, query, top_k=top_k, mode=mode)
        except SovragError as e:
            raise ToolError(str(e)) from e
        return {"collection": collection, "query": query,
                "passages": [{"text": p.text, **p.describe()} for p in hits]}

    @server.tool(description="Answer a question from a collection's documents with an open LLM: every sentence is "
                 "verified against the retrieved sources and cites them as [n]; `abstained` is true when the "
                 "documents do not answer it.")
    async def ask(collection: str, question: str, top_k: int | None = None) -> dict[str, Any]:
        if top_k is not None and not 1 <= top_k <= 50:
            raise ToolError(f"top_k: {top_k} is out of range; use 1 to 50")
        try:
            answer = await client.aask(collection, question, top_k=top_k)
        except SovragError as e:
            raise ToolError(str(e)) from e
        return answer_view(answer)

    return server


def run(client: Client, transport: Literal["stdio", "http"] = "stdio", host: str = "127.0.0.1", port: int = 8765,
        path: str = "/mcp") -> None:
    server = build(client)
    if transport == "stdio":
        server.run("stdio")
    else:
        server.run("streamable-http", host=host, port=port, streamable_http_path=path)
