"""A Qdrant server or cluster through qdrant-client: the path for users who outgrow one machine.

Only calls of Qdrant's public HTTP/gRPC API are used (no local-mode-only shortcuts), so the same
adapter runs against qdrant-client's local mode in CI and against a real cluster in production.
BM25 sparse vectors are computed client-side with Qdrant's own BM25 model (sovrag.store.bm25), and
the collection's IDF modifier lets the server apply IDF over its live corpus. sovrag's collection
metadata is stored in Qdrant's collection metadata, so it travels with the collection.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

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

_SCROLL_PAGE = 1024
_UPSERT_BATCH = 256
#: Marks collections that sovrag created, so listing never shows unrelated collections of a cluster.
_MARK = "sovrag"


def to_filter(filters: Filters | None) -> models.Filter | None:
    if not filters:
        return None
    must: list[Any] = []
    for key, value in filters.items():
        if isinstance(value, list | tuple | set):
            must.append(models.FieldCondition(key=key, match=models.MatchAny(any=list(value))))
        else:
            must.append(models.FieldCondition(key=key, match=models.MatchValue(value=value)))
    return models.Filter(must=must)


class QdrantServerStore:
    def __init__(
        self, client: QdrantClient, name: str, dim: int, fusion: str = DEFAULT_FUSION,
        rrf_k: int = DEFAULT_RRF_K,
    ) -> None:
        self.client = client
        self.name = name
        self.dim = dim
        self.fusion = check_fusion(fusion)
        self.rrf_k = rrf_k

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        check_vectors(chunks, vectors, self.dim)
        points = []
        for chunk, vec in zip(chunks, vectors, strict=True):
            idx, val = bm25.encode_document(chunk.text)
            points.append(
                models.PointStruct(
                    id=chunk.id,
                    vector={DENSE: vec.tolist(), SPARSE: models.SparseVector(indices=idx, values=val)},
                    payload=chunk.payload(),
                )
            )
        for start in range(0, len(points), _UPSERT_BATCH):
            self._call("upsert", self.client.upsert, collection_name=self.name,
                       points=points[start : start + _UPSERT_BATCH], wait=True)

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except (UnexpectedResponse, ValueError) as e:
            raise StoreError(f"collection {self.name!r}: Qdrant {what} failed ({e})") from e

    def delete_document(self, doc_id: str, keep_version: str | None = None) -> None:
        must = [models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id))]
        must_not: list[Any] | None = None
        if keep_version:
            must_not = [models.FieldCondition(key="version", match=models.MatchValue(value=keep_version))]
        selector = models.FilterSelector(filter=models.Filter(must=must, must_not=must_not))
        self._call("delete", self.client.delete, collection_name=self.name, points_selector=selector, wait=True)

    def count(self, filters: Filters | None = None) -> int:
        res = self._call("count", self.client.count, collection_name=self.name,
                         count_filter=to_filter(filters), exact=True)
        return int(res.count)

    def documents(self) -> dict[str, DocumentState]:
        rows: list[dict[str, Any]] = []
        offset = None
        while True:
            recs, offset = self._call(
                "scroll", self.client.scroll, collection_name=self.name, limit=_SCROLL_PAGE, offset=offset,
                with_payload=["doc_id", "version", "chunk_count"], with_vectors=False,
            )
            rows.extend(r.payload or {} for r in recs)
            if offset is None:
                return aggregate_documents(rows)

    def chunks(self, filters: Filters | None = None, limit: int = 1000) -> list[Chunk]:
        out: list[Chunk] = []
        offset = None
        flt = to_filter(filters)
        while len(out) < limit:
            recs, offset = self._call(
                "scroll", self.client.scroll, collection_name=self.name, limit=min(_SCROLL_PAGE, limit - len(out)),
                offset=offset, scroll_filter=flt, with_payload=True, with_vectors=False,
            )
            out.extend(Chunk.from_payload(str(r.id), r.payload or {}) for r in recs)
            if offset is None:
                break
        return sorted(out, key=lambda c: (c.doc_id, c.index))

    def optimize(self) -> None:
        """A Qdrant server indexes in the background by itself: nothing to do."""

    def search(
        self, query: SearchQuery, top_k: int = 10, mode: SearchMode = "hybrid", filters: Filters | None = None
    ) -> list[ScoredChunk]:
        plan = plan_search(query, mode, top_k, self.dim)
        if plan.empty:
            return []
        flt = to_filter(filters)
        dense = plan.dense
        sparse = models.SparseVector(indices=plan.sparse[0], values=plan.sparse[1]) if plan.sparse else None
        kwargs: dict[str, Any] = {"collection_name": self.name, "limit": top_k, "with_payload": True,
                                  "query_filter": flt}
        if mode == "hybrid" and dense is not None and sparse is not None:
            depth = prefetch_limit(top_k)
            kwargs["prefetch"] = [
                models.Prefetch(query=dense, using=DENSE, limit=depth, filter=flt),
                models.Prefetch(query=sparse, using=SPARSE, limit=depth, filter=flt),
            ]
            kwargs["query"] = (models.FusionQuery(fusion=models.Fusion.DBSF) if self.fusion == "dbsf"
                               else models.RrfQuery(rrf=models.Rrf(k=self.rrf_k)))
        elif dense is not None:
            kwargs.update(query=dense, using=DENSE)
        else:
            kwargs.update(query=sparse, using=SPARSE)
        res = self._call("query", self.client.query_points, **kwargs)
        return [
            ScoredChunk(Chunk.from_payload(str(p.id), p.payload or {}), float(p.score), rank)
            for rank, p in enumerate(res.points, start=1)
        ]

    def flush(self) -> None:
        """Writes are acknowledged with wait=True; nothing is buffered client-side."""

    def close(self) -> None:
        """The client is shared by the backend; it is closed there."""


class ReachableClient:
    """A QdrantClient whose connection failures are one clear StoreError naming the server, not a traceback
    from deep inside httpx: an unreachable store is a configuration problem the user fixes, not a crash."""

    def __init__(self, client: QdrantClient, url: str) -> None:
        self._client = client
        self._url = url

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attr(*args, **kwargs)
            except (ResponseHandlingException, httpx.TransportError, ConnectionError) as e:
                raise StoreError(f"Qdrant at {self._url}: unreachable ({_reason(e)}); is it running, and is "
                                 "--store right?") from e

        return call


def _reason(e: BaseException) -> str:
    while e.__cause__ is not None or e.__context__ is not None:  # the innermost says most (Connection refused)
        e = e.__cause__ or e.__context__  # type: ignore[assignment]
    text = str(e).strip() or type(e).__name__
    return text.split("] ", 1)[-1] if text.startswith("[Errno") else text


class QdrantServerBackend:
    def __init__(self, client: QdrantClient, spec: str) -> None:
        self.client = client
        self.spec = spec

    def _collection_meta(self, name: str) -> dict[str, Any] | None:
        try:
            info = self.client.get_collection(name)
        except (UnexpectedResponse, ValueError):
            return None
        meta = dict(info.config.metadata or {})
        return meta if meta.get(_MARK) else None

    def list(self) -> list[str]:
        names = [c.name for c in self.client.get_collections().collections]
        return sorted(n for n in names if self._collection_meta(n) is not None)

    def exists(self, name: str) -> bool:
        return self.client.collection_exists(check_collection_name(name)) and self._collection_meta(name) is not None

    def meta(self, name: str) -> dict[str, Any]:
        meta = self._collection_meta(check_collection_name(name))
        if meta is None:
            known = ", ".join(self.list()) or "none"
            raise CollectionError(f"collection {name!r}: does not exist in {self.spec} (collections: {known})")
        meta.pop(_MARK, None)
        return meta

    def create(self, name: str, dim: int, meta: dict[str, Any]) -> QdrantServerStore:
        check_collection_name(name)
        if self.client.collection_exists(name):
            raise CollectionError(f"collection {name!r}: already exists in {self.spec}")
        self.client.create_collection(
            name,
            vectors_config={DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE)},
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            metadata={**meta, "dim": dim, _MARK: True},
        )
        for field in INDEXED_FIELDS:
            self.client.create_payload_index(name, field, field_schema=models.PayloadSchemaType.KEYWORD)
        return QdrantServerStore(self.client, name, dim)

    def open(self, name: str) -> QdrantServerStore:
        return QdrantServerStore(self.client, name, int(self.meta(name)["dim"]))

    def drop(self, name: str) -> None:
        if not self.exists(name):
            raise CollectionError(f"collection {name!r}: does not exist in {self.spec}")
        self.client.delete_collection(name)

    def close(self) -> None:
        self.client.close()
