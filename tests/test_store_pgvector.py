"""The pgvector store on a real PostgreSQL server, beyond the shared conformance suite: it ranks exactly like
the Qdrant backends, several workers share one database, and failures are clear errors."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace

import numpy as np
import pytest

from sovrag.errors import CollectionError, ConfigError, StoreError
from sovrag.store import SearchQuery, open_backend
from tests.test_store_conformance import PASSAGES, make_chunks

QUESTIONS = [
    "What is bechamel sauce made from?",
    "offside rule near the goal",
    "largest planet gas giant",
    "Etna eruptions recorded years",
    "ice particles in the rings",
]


def _fill(store, embedder, extra: dict | None = None) -> None:
    for doc in PASSAGES:
        chunks = make_chunks(doc, extra=extra)
        store.upsert(chunks, embedder.embed([c.text for c in chunks]))


def test_ranks_like_the_qdrant_engine(pg_database, tmp_path, embedder):
    """Same chunks, same queries: BM25 (Qdrant's model and IDF), dense (cosine) and hybrid (DBSF and RRF)
    give the same scores for the same chunks in the same order (ties in either order) as Qdrant (qdrant-client's
    local mode)."""
    pg = open_backend(pg_database, tmp_path)
    qd = open_backend("qdrant-local::memory:", tmp_path)
    try:
        stores = [b.create("kb", embedder.dim, {}) for b in (pg, qd)]
        for s in stores:
            _fill(s, embedder)
        extra = [replace(c, id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"travel/{c.index}")), doc_id="travel", text=t)
                 for c, t in zip(make_chunks("volcano"), ["A travel note: Etna, Sicily and the sauces of Italy.",
                                                          "The rings of Saturn seen from a boat off Sicily."],
                                 strict=True)]  # terms shared with other documents: IDF must count them alike
        for s in stores:
            s.upsert(extra, embedder.embed([c.text for c in extra]))
        for fusion in ("dbsf", "rrf"):
            for s in stores:
                s.fusion, s.rrf_k = fusion, 2
            for q in QUESTIONS:
                qv = embedder.embed([q])[0]
                for mode in ("bm25", "dense", "hybrid"):
                    # top_k covers every chunk, so ties (RRF gives 1/2 + 1/3 to two chunks) are never cut apart
                    a, b = (s.search(SearchQuery(q, qv), top_k=10, mode=mode) for s in stores)
                    assert np.allclose([h.score for h in a], [h.score for h in b], atol=1e-4), (fusion, mode, q)
                    assert ({(round(h.score, 4), h.chunk.id) for h in a} == {(round(h.score, 4), h.chunk.id) for h in b}
                            ), (fusion, mode, q)
                    by_id = {h.chunk.id: h.chunk for h in b}
                    assert all(h.chunk == by_id[h.chunk.id] for h in a)  # the payload comes back whole
    finally:
        pg.close()
        qd.close()


def test_two_workers_share_one_database(pg_database, tmp_path, embedder):
    a, b = open_backend(pg_database, tmp_path), open_backend(pg_database, tmp_path)
    try:
        store_a = a.create("shared", embedder.dim, {"embedder": embedder.name})
        _fill(store_a, embedder)
        assert b.list() == ["shared"] and b.meta("shared")["embedder"] == embedder.name
        store_b = b.open("shared")
        assert store_b.count() == 8
        q = "What is bechamel sauce made from?"
        assert store_b.search(SearchQuery(q, embedder.embed([q])[0]), top_k=1)[0].chunk.doc_id == "cooking"
        store_b.delete_document("cooking")
        assert store_a.count() == 6  # seen at once by the other worker: nothing is cached client-side
        b.drop("shared")
        with pytest.raises(CollectionError, match="no longer exists"):
            store_a.count()
    finally:
        a.close()
        b.close()


def test_concurrent_creates_of_one_name_make_one_collection(pg_database, tmp_path, embedder):
    backends = [open_backend(pg_database, tmp_path) for _ in range(4)]
    outcomes: list[str] = []

    def create(backend) -> None:
        try:
            backend.create("race", embedder.dim, {})
            outcomes.append("created")
        except CollectionError as e:
            outcomes.append(str(e))

    threads = [threading.Thread(target=create, args=(b,)) for b in backends]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert outcomes.count("created") == 1
        assert all("already exists" in o for o in outcomes if o != "created")
        assert backends[0].list() == ["race"]
    finally:
        for b in backends:
            b.close()


def test_selective_filters_on_an_indexed_collection(pg_database, tmp_path):
    """2,000 chunks under an HNSW index; a filter that keeps 7 of them still returns all 7, and payload keys that
    are not columns filter through the jsonb index."""
    backend = open_backend(pg_database, tmp_path)
    rng = np.random.default_rng(3)
    try:
        store = backend.create("big", 32, {})
        from sovrag.types import Chunk

        chunks = [Chunk(id=f"00000000-0000-4000-8000-{i:012d}", doc_id=f"d{i // 7}", text=f"chunk number {i}",
                        source=f"/s/{i // 7}.txt", title="", index=i % 7, page=None, headings=(), version="v1",
                        chunk_count=7, format="text", metadata={"team": "blue" if i % 2 else "red"})
                  for i in range(2000)]
        store.upsert(chunks, rng.normal(size=(2000, 32)).astype(np.float32))
        store.optimize()
        q = SearchQuery("chunk number", rng.normal(size=32).astype(np.float32))
        hits = store.search(q, top_k=10, mode="dense", filters={"doc_id": "d100"})
        assert sorted(h.chunk.index for h in hits) == list(range(7))
        hits = store.search(q, top_k=10, mode="hybrid", filters={"doc_id": "d100", "team": "blue"})
        assert {h.chunk.metadata["team"] for h in hits} == {"blue"} and len(hits) == 3
        assert store.count({"team": ["red", "green"]}) == 1000
        # whichever plan PostgreSQL picks (HNSW with iterative scans, a b-tree, a scan), a filter never cuts the
        # result short of top_k
        hits = store.search(q, top_k=80, mode="dense", filters={"team": "blue"})
        assert len(hits) == 80 and {h.chunk.metadata["team"] for h in hits} == {"blue"}
        assert len(store.search(q, top_k=50, mode="dense")) == 50  # ef_search follows the depth asked for
    finally:
        backend.close()


def test_unreachable_server_and_missing_extra_are_clear_errors(tmp_path):
    with pytest.raises(StoreError, match=r"PostgreSQL at postgresql://sovrag:\*\*\*@127.0.0.1:9/nowhere: unreachable"):
        open_backend("postgresql://sovrag:secret@127.0.0.1:9/nowhere", tmp_path)
    with pytest.raises(ConfigError, match="unknown kind 'pg'"):
        open_backend("pg://x", tmp_path)


def test_vector_size_beyond_the_index_is_refused(pg_database, tmp_path):
    backend = open_backend(pg_database, tmp_path)
    try:
        with pytest.raises(CollectionError, match="4096 dimensions; pgvector's HNSW index takes 1 to 2000"):
            backend.create("huge", 4096, {})
        assert backend.list() == []
    finally:
        backend.close()


def test_the_chunk_count_bm25_reads_stays_exact(pg_database, tmp_path, embedder):
    """BM25's N comes from a count the catalog keeps by triggers: rewrites (ON CONFLICT updates), deletes of
    versions and documents, and a batch of inserts and updates together never make it drift from count(*)."""
    import psycopg

    backend = open_backend(pg_database, tmp_path)
    try:
        store = backend.create("kb", embedder.dim, {})

        def kept() -> int:
            with psycopg.connect(pg_database) as conn:
                return conn.execute("SELECT chunks FROM sovrag_collections WHERE name = 'kb'").fetchone()[0]

        _fill(store, embedder)
        assert kept() == store.count() == 8
        _fill(store, embedder)  # the same ids again: updates, not inserts
        assert kept() == store.count() == 8
        v2 = make_chunks("volcano", version="v2")
        mixed = v2 + make_chunks("cooking")  # two new rows and two rewritten ones in one statement batch
        store.upsert(mixed, embedder.embed([c.text for c in mixed]))
        assert kept() == store.count() == 10
        store.delete_document("volcano", keep_version="v2")
        store.delete_document("football")
        assert kept() == store.count() == 6
        store.optimize()
        hits = store.search(SearchQuery("Etna", None), top_k=3, mode="bm25")
        assert hits[0].chunk.doc_id == "volcano" and hits[0].chunk.version == "v2"
    finally:
        backend.close()
