"""Incremental ingestion: load -> chunk -> embed -> upsert, keyed by content hashes.

A document's id is the absolute path it was found by (`files.document_id`); its version is a hash of its
bytes and of everything that shapes its chunks (chunking settings, embedder). Chunk ids derive from
(document id, version, index), so:
- an unchanged file is recognised from the store alone and nothing is written;
- a changed file's new chunks are written first, then every chunk of its other versions is deleted;
- a run killed at any point is completed by the next run, which rewrites the same ids (no duplicates).
The store is the only record of what is indexed: there is no side manifest to drift out of step.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sovrag.collection import Collection
from sovrag.config import Settings
from sovrag.errors import LoadError, SovragError
from sovrag.ingest import isolate
from sovrag.ingest.distributed import Prepared, Task, prepare_file
from sovrag.ingest.files import display, document_id, read_bytes
from sovrag.ingest.loaders import SUPPORTED_EXTENSIONS
from sovrag.ingest.walk import walk
from sovrag.store import DocumentState
from sovrag.types import Chunk

if TYPE_CHECKING:
    from sovrag.ingest.distributed import RayPreparer

log = logging.getLogger(__name__)


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # left out by rule (hidden, duplicate path...)
    chunks_written: int = 0
    chunks_deleted: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, float | int]:
        return {
            "added": len(self.added), "updated": len(self.updated), "unchanged": len(self.unchanged),
            "deleted": len(self.deleted), "failed": len(self.failed), "skipped": len(self.skipped),
            "chunks": self.chunks_written,
            "chunks_deleted": self.chunks_deleted, "seconds": round(self.seconds, 2),
        }

    def to_dict(self) -> dict[str, Any]:
        """Every list and count, as JSON (what a server hands the CLI, which rebuilds it with from_dict)."""
        return {"added": self.added, "updated": self.updated, "unchanged": self.unchanged, "deleted": self.deleted,
                "failed": [list(f) for f in self.failed], "skipped": [list(f) for f in self.skipped],
                "chunks_written": self.chunks_written, "chunks_deleted": self.chunks_deleted, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IngestReport:
        return cls(added=list(d["added"]), updated=list(d["updated"]), unchanged=list(d["unchanged"]),
                   deleted=list(d["deleted"]), failed=[(a, b) for a, b in d["failed"]],
                   skipped=[(a, b) for a, b in d["skipped"]], chunks_written=int(d["chunks_written"]),
                   chunks_deleted=int(d["chunks_deleted"]), seconds=float(d["seconds"]))


def fingerprint(settings: Settings, embedder_name: str) -> str:
    """Everything besides a file's bytes that changes its chunks or vectors."""
    shape = {
        "mode": settings.chunk_mode, "tokens": settings.chunk_tokens, "overlap": settings.chunk_overlap,
        "doc_max": settings.document_max_tokens if settings.chunk_mode == "document" else None,
        "embedder": embedder_name, "schema": 1,
    }
    return json.dumps(shape, sort_keys=True)


@dataclass
class _Pending:
    doc_id: str
    version: str
    chunks: list[Chunk]
    is_new: bool
    replaced: int  # chunks of other versions that this write removes


class Ingestor:
    """Runs one sync of paths into a collection; `progress(path, status)` is called once per file."""

    def __init__(self, settings: Settings, collection: Collection,
                 progress: Callable[[str, str], None] | None = None, remote: RayPreparer | None = None) -> None:
        self.settings = settings
        self.col = collection
        self.progress = progress or (lambda path, status: None)
        self.fp = fingerprint(settings, collection.embedder.name)
        self.count_tokens = collection.embedder.count_tokens
        self.max_bytes = int(settings.max_file_mb * 1024 * 1024)
        self.parser = isolate.worker(settings.parse_memory_mb, settings.parse_timeout_s)
        self.report = IngestReport()
        self._batch: list[_Pending] = []
        #: a Ray cluster doing the parsing, chunking and embedding (ingest/distributed.py), or None: this process
        self.remote = remote

    def run(self, paths: Sequence[Path], include: Sequence[str] = (), exclude: Sequence[str] = (),
            sync: bool = False) -> IngestReport:
        t0 = time.perf_counter()
        state = self.col.store.documents()
        for root in paths:
            found = walk(root, SUPPORTED_EXTENSIONS, include, exclude,
                         follow_outside=self.settings.follow_symlinks_outside)
            for src, why in found.errors:
                self.report.failed.append((src, why))
                self.progress(src, "failed")
            self.report.skipped.extend(found.skipped)
            seen: set[str] = set()
            for path in found.files:
                doc_id = document_id(path)
                seen.add(doc_id)
                try:
                    self._one(path, doc_id, state)
                except Exception as e:  # a bug of ours on one odd file must not cost the rest of the batch
                    log.exception("ingest of %s failed", display(path))
                    self.report.failed.append((display(path), f"internal error: {type(e).__name__}: {e}"))
                    self.progress(display(path), "failed")
            self._flush_batch()
            if self.remote is not None:
                for done in self.remote.results():
                    self._remote_done(done)
            if sync and root.exists():
                self._delete_vanished(root, seen, state)
        self.col.store.flush()
        self.report.seconds = time.perf_counter() - t0
        return self.report

    def _one(self, path: Path, doc_id: str, state: dict) -> None:
        source = display(path)
        try:
            data = read_bytes(path, self.max_bytes)
            version = hashlib.sha256(data + self.fp.encode()).hexdigest()[:32]
            current = state.get(doc_id)
            if current is not None and current.complete(version):
                self.report.unchanged.append(source)
                self.progress(source, "unchanged")
                return
            task = Task(source, str(path), data, doc_id, version, current)
            if self.remote is not None:  # parse, chunk and embed on the Ray cluster; write what comes back
                for done in self.remote.submit(task):
                    self._remote_done(done)
                return
            chunks = prepare_file(self.settings, self.count_tokens, self.parser, task)
        except SovragError as e:
            self._failed(source, e)
            return
        self._batch.append(_Pending(doc_id, version, chunks, current is None, _replaced(current, version)))
        if sum(len(p.chunks) for p in self._batch) >= self.settings.ingest_batch_chunks:
            self._flush_batch()

    def _failed(self, source: str, e: SovragError) -> None:
        self.report.failed.append((source, e.reason if isinstance(e, LoadError) else str(e)))
        self.progress(source, "failed")

    def _remote_done(self, done: Prepared) -> None:
        t = done.task
        if done.error:
            self.report.failed.append((t.source, done.error))
            self.progress(t.source, "failed")
            return
        self._write(_Pending(t.doc_id, t.version, done.chunks, t.context is None, _replaced(t.context, t.version)),
                    done.vectors)

    def _flush_batch(self) -> None:
        if not self._batch:
            return
        chunks = [c for p in self._batch for c in p.chunks]
        try:
            vectors = self.col.embedder.embed([c.text for c in chunks])
        except SovragError as e:
            for p in self._batch:
                self.report.failed.append((p.chunks[0].source, f"embedding failed: {e}"))
            self._batch.clear()
            return
        offset = 0
        for p in self._batch:
            n = len(p.chunks)
            self._write(p, vectors[offset : offset + n])
            offset += n
        self._batch.clear()

    def _write(self, p: _Pending, vectors: np.ndarray) -> None:
        source = p.chunks[0].source
        try:
            self.col.store.upsert(p.chunks, vectors)
            self.col.store.delete_document(p.doc_id, keep_version=p.version)
        except SovragError as e:
            self.report.failed.append((source, str(e)))
            self.progress(source, "failed")
            return
        self.report.chunks_written += len(p.chunks)
        self.report.chunks_deleted += p.replaced
        status = "added" if p.is_new else "updated"
        (self.report.added if p.is_new else self.report.updated).append(source)
        self.progress(source, status)

    def _delete_vanished(self, root: Path, seen: set[str], state: dict) -> None:
        base = document_id(root)
        prefix = base if root.is_file() else base.rstrip("/") + "/"
        for doc_id, doc_state in state.items():
            under = doc_id == base or doc_id.startswith(prefix)
            if under and doc_id not in seen:
                self.col.store.delete_document(doc_id)
                self.report.deleted.append(doc_id)
                self.report.chunks_deleted += sum(doc_state.versions.values())
                self.progress(doc_id, "deleted")


def ingest(settings: Settings, collection: Collection, paths: Sequence[Path], include: Sequence[str] = (),
           exclude: Sequence[str] = (), sync: bool = False,
           progress: Callable[[str, str], None] | None = None, ray: str | None = None) -> IngestReport:
    """One sync of `paths` into `collection`; with `ray` (an address, or "auto"), files are parsed, chunked and
    embedded on that Ray cluster's workers and written here."""
    remote = None
    if ray:
        from sovrag.ingest.distributed import RayPreparer

        remote = RayPreparer(settings, ray, collection.meta.get("embedder_spec") or settings.embedder,
                             collection.embedder.name)
    try:
        return Ingestor(settings, collection, progress, remote).run(paths, include, exclude, sync)
    finally:
        if remote is not None:
            remote.close()


def _replaced(current: DocumentState | None, version: str) -> int:
    """Chunks of a document's other versions that writing `version` removes."""
    return sum(n for v, n in current.versions.items() if v != version) if current else 0
