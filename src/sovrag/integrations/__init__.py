"""sovrag inside other frameworks: LangChain and LlamaIndex retrievers and answerers, and an MCP server.

Each framework is an optional extra (`pip install 'sovrag[langchain]'`, `[llamaindex]`, `[mcp]`); the modules
import their framework only when imported themselves. All of them go through `sovrag.integrations.client`.
"""

from sovrag.integrations.client import Client, HTTPClient, LocalClient, Passage, connect

__all__ = ["Client", "HTTPClient", "LocalClient", "Passage", "connect"]
