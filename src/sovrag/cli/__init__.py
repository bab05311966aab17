"""The terminal interface: `sovrag models|ingest|search|ask|collections|serve|eval|check|bench|cost`."""

from sovrag.cli.app import app

__all__ = ["app"]
