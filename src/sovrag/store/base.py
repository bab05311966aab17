"""The Store protocol: one collection of chunks with a dense vector and a BM25 sparse vector each.

Every backend passes the same conformance suite (tests/test_store_conformance.py). Searching is done by
the engine itself: HNSW for dense vectors, a sparse inverted index with IDF for BM25, and hybrid as both
fused inside the engine, so no backend re-implements ranking in Python.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from sovrag.errors import CollectionError, StoreError
from sovrag.store import bm25
from sovrag.types import Chunk, ScoredChunk

SearchMode = Literal["hybrid", "dense", "bm25"]
SEARCH_MODES: tuple[str, ...] = ("hybrid", "dense", "bm25")
#: A metadata filter: payload key -> value (must equal) or list of values (must equal one of them).
Filters = Mapping[str, Any]

DENSE = "dense"
SPARSE = "bm25"
#: Payload fields the store indexes for filtering (all keyword).
INDEXED_FIELDS = ("doc_id", "version", "source", "format")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_collection_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise CollectionError(
            f"collection name {name!r}: use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class DocumentState:
    """What the store holds of one document: the version(s) present and how many chunks of each."""

    doc_id: str
    versions: dict[str, int]  # version -> chunks present
    expected: dict[str, int]  # version -> chunk_count recorded in the payload

    def complete(self, version: str) -> bool:
        """True when exactly this version is stored, with all of its chunks and nothing else."""
        return (
            set(self.versions) == {version}
            and self.versions[version] == self.expected.get(version, -1)
        )


@dataclass(frozen=True)
class SearchQuery:
    text: str
    vector: np.ndarray | None  # None is allowed for bm25 mode only


class Store(Protocol):
    """One collection."""

    name: str
    dim: int

    def upsert(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Insert or replace chunks by id (ids are content-derived, so a repeat write is a no-op)."""
        ...

    def delete_document(self, doc_id: str, keep_version: str | None = None) -> None:
        """Delete a document's chunks, or only those of versions other than keep_version."""
        ...

    def count(self, filters: Filters | None = None) -> int: ...

    def documents(self) -> dict[str, DocumentState]: ...

    def chunks(self, filters: Filters | None = None, limit: int = 1000) -> list[Chunk]:
        """Up to `limit` stored chunks matching `filters`, without ranking (a document's chunks, a sample),
        sorted by document and index."""
        ...

    def optimize(self) -> None:
        """Build the search indexes now rather than on the first large search (a no-op where the engine
        builds them itself)."""
        ...

    def search(
        self, query: SearchQuery, top_k: int = 10, mode: SearchMode = "hybrid", filters: Filters | None = None
    ) -> list[ScoredChunk]: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class StoreBackend(Protocol):
    """Creates, lists, opens and drops collections; collection metadata lives with the collection."""

    spec: str

    def list(self) -> list[str]: ...

    def exists(self, name: str) -> bool: ...

    def create(self, name: str, dim: int, meta: dict[str, Any]) -> Store: ...

    def open(self, name: str) -> Store: ...

    def meta(self, name: str) -> dict[str, Any]: ...

    def drop(self, name: str) -> None: ...

    def close(self) -> None: ...


def check_vectors(chunks: Sequence[Chunk], vectors: np.ndarray, dim: int) -> None:
    if len(chunks) != len(vectors):
        raise StoreError(f"upsert: {len(chunks)} chunks but {len(vectors)} vectors")
    if len(chunks) and vectors.shape[1] != dim:
        raise StoreError(f"upsert: vectors have {vectors.shape[1]} dims, the collection has {dim}")
    if not np.all(np.isfinite(vectors)):
        raise StoreError("upsert: vectors contain NaN or infinity")


def check_search(query: SearchQuery, mode: str, top_k: int, dim: int) -> None:
    if mode not in SEARCH_MODES:
        raise StoreError(f"search mode {mode!r}: expected one of {', '.join(SEARCH_MODES)}")
    if top_k < 1:
        raise StoreError(f"top_k={top_k}: must be at least 1")
    if mode != "bm25":
        if query.vector is None:
            raise StoreError(f"search mode {mode!r} needs a query vector")
        if query.vector.shape[-1] != dim:
            raise StoreError(f"query vector has {query.vector.shape[-1]} dims, the collection has {dim}")


@dataclass(frozen=True)
class SearchPlan:
    """What a search sends to the engine: a dense vector, BM25 query terms, or both (hybrid)."""

    dense: list[float] | None
    sparse: tuple[list[int], list[float]] | None

    @property
    def empty(self) -> bool:
        return self.dense is None and self.sparse is None


def plan_search(query: SearchQuery, mode: str, top_k: int, dim: int) -> SearchPlan:
    """Validate a search and encode its query. A BM25 query of stop words only has no terms: hybrid then
    runs dense alone, and bm25 mode has nothing to search (an empty plan)."""
    check_search(query, mode, top_k, dim)
    dense = None
    if mode != "bm25":
        assert query.vector is not None
        dense = np.asarray(query.vector, dtype=np.float32).tolist()
    sparse = None
    if mode != "dense":
        idx, val = bm25.encode_query(query.text)
        sparse = (idx, val) if idx else None
    return SearchPlan(dense, sparse)


#: How hybrid search fuses the dense and BM25 candidate lists, inside the engine.
#: "dbsf" (distribution-based score fusion) normalises each list's scores by its own mean +- 3 standard
#: deviations and sums them, so a retriever that is clearly sure of its top hit keeps that lead; "rrf"
#: (reciprocal rank fusion, 1 / (k + rank)) sees ranks only. On HaluEval-QA, BoolQ and their union DBSF
#: beat RRF (k=60 and k=2) by 0.01-0.02 nDCG@10 on each (docs/benchmarks.md, "Retrieval quality").
FUSIONS = ("dbsf", "rrf")
DEFAULT_FUSION = "dbsf"
DEFAULT_RRF_K = 60


def check_fusion(fusion: str) -> str:
    if fusion not in FUSIONS:
        raise StoreError(f"fusion {fusion!r}: expected one of {', '.join(FUSIONS)}")
    return fusion


def prefetch_limit(top_k: int) -> int:
    """How many candidates each retriever hands to fusion: deep enough that fusion can reorder, and
    enough scores for DBSF to estimate each list's spread."""
    return max(4 * top_k, 50)


def aggregate_documents(rows: Sequence[Mapping[str, Any]]) -> dict[str, DocumentState]:
    """Fold (doc_id, version, chunk_count) payload rows into per-document states."""
    present: dict[str, dict[str, int]] = {}
    expected: dict[str, dict[str, int]] = {}
    for row in rows:
        doc, ver = row.get("doc_id"), row.get("version")
        if doc is None or ver is None:
            continue
        present.setdefault(doc, {}).setdefault(ver, 0)
        present[doc][ver] += 1
        expected.setdefault(doc, {})[ver] = int(row.get("chunk_count", -1))
    return {d: DocumentState(d, present[d], expected[d]) for d in present}
