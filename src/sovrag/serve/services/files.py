"""The uploaded-files table: the one owner of what a tenant uploaded, and how its ingestion went.

Chunks live in the store; this table remembers what the store cannot: the file's upload name, size and time,
its title and format once indexed, and the reason when it could not be indexed, so an upload is never
invisible to its tenant. Rows are keyed by the document id the store uses (`ingest.files.document_id`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sovrag.ingest.files import document_id
from sovrag.serve.db import Database, now


class UploadedFiles:
    def __init__(self, db: Database) -> None:
        self.db = db

    def saved(self, tenant_id: int, collection: str, path: Path, name: str) -> str:
        """Record (or replace) an uploaded file saved at `path`; its document id."""
        doc_id = document_id(path)
        self.db.run("INSERT INTO files(tenant_id, collection, doc_id, name, bytes, uploaded) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (tenant_id, collection, doc_id) DO UPDATE SET name = excluded.name, "
                    "bytes = excluded.bytes, uploaded = excluded.uploaded, title = '', format = '', error = ''",
                    (tenant_id, collection, doc_id, name, path.stat().st_size, now()))
        return doc_id

    def indexed(self, tenant_id: int, collection: str, doc_id: str, title: str, fmt: str) -> None:
        self.db.run("UPDATE files SET title = ?, format = ?, error = '' WHERE tenant_id = ? AND collection = ? "
                    "AND doc_id = ?", (title, fmt, tenant_id, collection, doc_id))

    def failed(self, tenant_id: int, collection: str, doc_id: str, reason: str) -> None:
        self.db.run("UPDATE files SET error = ? WHERE tenant_id = ? AND collection = ? AND doc_id = ?",
                    (reason, tenant_id, collection, doc_id))

    def rows(self, tenant_id: int, collection: str) -> dict[str, dict[str, Any]]:
        """doc_id -> the file's row, for one collection."""
        return {r["doc_id"]: r for r in self.db.all("SELECT * FROM files WHERE tenant_id = ? AND collection = ?",
                                                    (tenant_id, collection))}

    def delete(self, tenant_id: int, collection: str, doc_id: str) -> None:
        self.db.run("DELETE FROM files WHERE tenant_id = ? AND collection = ? AND doc_id = ?",
                    (tenant_id, collection, doc_id))

    def delete_collection(self, tenant_id: int, collection: str) -> None:
        self.db.run("DELETE FROM files WHERE tenant_id = ? AND collection = ?", (tenant_id, collection))
