"""Retrieval: turn a question into ranked chunks of a collection."""

from sovrag.retrieve.search import parse_filters, search

__all__ = ["parse_filters", "search"]
