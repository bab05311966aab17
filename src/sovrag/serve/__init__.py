"""The HTTP server: OpenAI-compatible RAG, tenants and keys, collections and uploads, metrics."""

from sovrag.serve.app import create_app

__all__ = ["create_app"]
