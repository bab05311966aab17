"""The embedded default: the Qdrant engine in-process through qdrant-edge-py.

One collection is one Edge shard directory (HNSW dense index + BM25 sparse index with IDF + payload
indexes) plus a `collection.json` with sovrag's metadata (embedder, dimension, chunking settings).
Writes go through the shard's write-ahead log, so a killed process leaves a shard that loads and
replays cleanly.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe

from sovrag.errors import CollectionError, StoreError
from sovrag.store import bm25
from sovrag.store.base import (
    DEFAULT_FUSION,
    DEFAULT_RRF_K,
    DENSE,
    INDEXED_FIELDS,
    SPARSE,
    DocumentState,
    Filters,
    SearchMode,
    SearchQuery,
    aggregate_documents,
    check_collection_name,
    check_fusion,
    check_vectors,
    plan_search,
    prefetch_limit,
)
from sovrag.types import Chunk, ScoredChunk

log = logging.getLogger(__name__)

_SCROLL_PAGE = 2048


def to_filter(filters: Filters | None) -> qe.Filter | None:
    if not filters:
        return None
    must = []
    for key, value in filters.items():
        if isinstance(value, list | tuple | set):
            must.append(qe.FieldCondition(key, match=qe.MatchAny(list(value))))
        else:
            must.append(qe.FieldCondition(key, match=qe.MatchValue(value)))
    return qe.Filter(must=must)


class EdgeStore:
    def __init__(
        self, name: str, path: Path, dim: int, fusion: str = DEFAULT_FUSION, rrf_k: int = DEFAULT_RRF_K
    ) -> None:
        self.name = name
        self.dim = dim
        self.path = path
        self.fusion = check_fusion(fusion)
        self.rrf_k = rrf_k
        shard_dir = path / "shard"
        try:
            if shard_dir.exists() and any(shard_dir.iterdir()):
                self.shard = qe.EdgeShard.load(str(shard_dir))
            else:
                self.shard = qe.EdgeShard.create(str(shard_dir), self._config(dim))
                for field in INDEXED_FIELDS:
                    self.shard.update(qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword))
        except Exception as e:  # the engine raises plain exceptions; name the collection
            raise StoreError(f"collection {name!r} at {shard_dir}: cannot open the Qdrant shard ({e})") from e

    @staticmethod
    def _config(dim: int) -> qe.EdgeConfig:
        return qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        )

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        check_vectors(chunks, vectors, self.dim)
        points = []
        for chunk, vec in zip(chunks, vectors, strict=True):
            idx, val = bm25.encode_document(chunk.text)
            points.append(
                qe.Point(
                    chunk.id,
                    {DENSE: vec.tolist(), SPARSE: qe.SparseVector(idx, val)},
                    chunk.payload(),
                )
            )
        if points:
            self.shard.update(qe.UpdateOperation.upsert_points(points))

    def delete_document(self, doc_id: str, keep_version: str | None = None) -> None:
        must = [qe.FieldCondition("doc_id", match=qe.MatchValue(doc_id))]
        must_not = [qe.FieldCondition("version", match=qe.MatchValue(keep_version))] if keep_version else None
        self.shard.update(qe.UpdateOperation.delete_points_by_filter(qe.Filter(must=must, must_not=must_not)))

    def count(self, filters: Filters | None = None) -> int:
        return self.shard.count(qe.CountRequest(filter=to_filter(filters), exact=True))

    def documents(self) -> dict[str, DocumentState]:
        rows: list[dict[str, Any]] = []
        offset = None
        selector = qe.PayloadSelector.Include(["doc_id", "version", "chunk_count"])
        while True:
            recs, offset = self.shard.scroll(
                qe.ScrollRequest(offset=offset, limit=_SCROLL_PAGE, with_payload=selector)
            )
            rows.extend(r.payload or {} for r in recs)
            if offset is None:
                return aggregate_documents(rows)

    def chunks(self, filters: Filters | None = None, limit: int = 1000) -> list[Chunk]:
        out: list[Chunk] = []
        offset = None
        flt = to_filter(filters)
        while len(out) < limit:
            recs, offset = self.shard.scroll(qe.ScrollRequest(offset=offset, limit=min(_SCROLL_PAGE, limit - len(out)),
                                                              filter=flt, with_payload=True))
            out.extend(Chunk.from_payload(str(r.id), r.payload or {}) for r in recs)
            if offset is None:
                break
        return sorted(out, key=lambda c: (c.doc_id, c.index))

    def search(
        self, query: SearchQuery, top_k: int = 10, mode: SearchMode = "hybrid", filters: Filters | None = None
    ) -> list[ScoredChunk]:
        plan = plan_search(query, mode, top_k, self.dim)
        if plan.empty:
            return []
        flt = to_filter(filters)
        dense = qe.Query.Nearest(plan.dense, using=DENSE) if plan.dense is not None else None
        sparse = qe.Query.Nearest(qe.SparseVector(*plan.sparse), using=SPARSE) if plan.sparse else None
        if mode == "hybrid" and dense is not None and sparse is not None:
            depth = prefetch_limit(top_k)
            req = qe.QueryRequest(
                limit=top_k,
                prefetches=[
                    qe.Prefetch(limit=depth, query=dense, filter=flt),
                    qe.Prefetch(limit=depth, query=sparse, filter=flt),
                ],
                query=qe.Fusion.Dbsf() if self.fusion == "dbsf" else qe.Fusion.Rrf(k=self.rrf_k),
                filter=flt,
                with_payload=True,
            )
        else:
            req = qe.QueryRequest(limit=top_k, query=dense or sparse, filter=flt, with_payload=True)
        points = self.shard.query(req)
        return [
            ScoredChunk(Chunk.from_payload(str(p.id), p.payload or {}), float(p.score), rank)
            for rank, p in enumerate(points, start=1)
        ]

    def optimize(self) -> None:
        """Build the HNSW index now rather than on the first large search."""
        self.shard.optimize()

    def flush(self) -> None:
        self.shard.flush()

    def close(self) -> None:
        if getattr(self, "shard", None) is not None:
            self.shard.flush()
            self.shard.close()
            self.shard = None


class EdgeBackend:
    """Collections as folders under one root (by default DATA_DIR/collections)."""

    def __init__(self, root: Path, spec: str = "qdrant-edge") -> None:
        self.root = root
        self.spec = spec

    def _dir(self, name: str) -> Path:
        return self.root / check_collection_name(name)

    def list(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "collection.json").is_file())

    def exists(self, name: str) -> bool:
        return (self._dir(name) / "collection.json").is_file()

    def meta(self, name: str) -> dict[str, Any]:
        path = self._dir(name) / "collection.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            known = ", ".join(self.list()) or "none"
            raise CollectionError(f"collection {name!r}: does not exist (collections: {known})") from e
        except ValueError as e:
            raise CollectionError(f"collection {name!r}: {path} is not valid JSON ({e})") from e

    def create(self, name: str, dim: int, meta: dict[str, Any]) -> EdgeStore:
        d = self._dir(name)
        if self.exists(name):
            raise CollectionError(f"collection {name!r}: already exists")
        d.mkdir(parents=True, exist_ok=True)
        store = EdgeStore(name, d, dim)
        tmp = d / "collection.json.tmp"
        tmp.write_text(json.dumps({**meta, "dim": dim}, indent=2), encoding="utf-8")
        os.replace(tmp, d / "collection.json")  # the collection exists once this file does
        return store

    def open(self, name: str) -> EdgeStore:
        meta = self.meta(name)
        return EdgeStore(name, self._dir(name), int(meta["dim"]))

    def drop(self, name: str) -> None:
        d = self._dir(name)
        if not self.exists(name):
            raise CollectionError(f"collection {name!r}: does not exist")
        (d / "collection.json").unlink()
        shutil.rmtree(d)

    def close(self) -> None:
        """Shards are closed by their stores; the backend holds nothing open."""
