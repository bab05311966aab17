"""sovrag: a self-hosted, sovereign RAG platform on open models."""

__version__ = "0.1.0"
