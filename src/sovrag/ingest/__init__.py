"""Ingestion: load files, chunk them, and sync them into a collection by content hash."""
