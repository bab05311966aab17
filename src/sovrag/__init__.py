"""sovrag: a self-hosted, sovereign RAG platform on open models."""

from sovrag import offline as _offline  # noqa: F401  (first: switches off telemetry before any dependency loads)

__version__ = "0.1.0"
