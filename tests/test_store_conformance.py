"""One conformance suite, run against every Store backend (Haystack's document-store test idea)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from sovrag.errors import CollectionError, StoreError
from sovrag.store import SearchQuery, StoreBackend, open_backend
from sovrag.types import Chunk

PASSAGES = {
    "volcano": [
        "Mount Etna is an active stratovolcano on the east coast of Sicily, Italy.",
        "Its eruptions have been recorded for at least 2,700 years.",
    ],
    "cooking": [
        "A roux is flour and fat cooked together and used to thicken sauces.",
        "Bechamel sauce is made from a white roux and milk.",
    ],
    "football": [
        "The offside rule in association football stops attackers from waiting near the goal.",
        "A player is offside when nearer to the goal line than both the ball and the second-last opponent.",
    ],
    "astronomy": [
        "Jupiter is the largest planet in the Solar System, a gas giant with a Great Red Spot.",
        "Saturn's rings are made mostly of water ice particles.",
    ],
}


def make_chunks(doc: str, version: str = "v1", extra: dict | None = None) -> list[Chunk]:
    texts = PASSAGES[doc]
    return [
        Chunk(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{doc}/{version}/{i}")),
            doc_id=doc,
            text=t,
            source=f"/docs/{doc}.md",
            title=doc.title(),
            index=i,
            page=i + 1,
            headings=("Top", doc),
            version=version, chunk_count=len(texts), format="markdown", metadata={**(extra or {})},
        )
        for i, t in enumerate(texts)
    ]


BACKENDS = ["qdrant-edge", "qdrant-local-disk", "qdrant-local-memory", "pgvector"]


@pytest.fixture(params=BACKENDS)
def backend_factory(request, tmp_path: Path) -> Iterator[Callable[[], StoreBackend]]:
    opened: list[StoreBackend] = []
    specs = {
        "qdrant-edge": f"qdrant-edge:{tmp_path / 'edge'}",
        "qdrant-local-disk": f"qdrant-local:{tmp_path / 'local'}",
        "qdrant-local-memory": "qdrant-local::memory:",
    }
    if request.param == "pgvector":  # a fresh database on the real PostgreSQL server of this test session
        specs["pgvector"] = request.getfixturevalue("pg_database")
    memory_backend: list[StoreBackend] = []

    def factory() -> StoreBackend:
        if request.param == "qdrant-local-memory":
            if not memory_backend:  # memory has no reopen: the same client stands for "reopened"
                memory_backend.append(open_backend(specs[request.param], tmp_path))
                opened.append(memory_backend[0])
            return memory_backend[0]
        for b in opened:
            b.close()
        opened.clear()
        b = open_backend(specs[request.param], tmp_path)
        opened.append(b)
        return b

    factory.param = request.param  # type: ignore[attr-defined]
    yield factory
    for b in opened:
        b.close()


def _vectors(embedder, chunks: list[Chunk]) -> np.ndarray:
    return embedder.embed([c.text for c in chunks])


def _filled(backend: StoreBackend, embedder, name: str = "kb"):
    store = backend.create(name, embedder.dim, {"embedder": embedder.name})
    for doc in PASSAGES:
        chunks = make_chunks(doc)
        store.upsert(chunks, _vectors(embedder, chunks))
    store.flush()
    return store


def test_create_list_meta_drop(backend_factory, embedder):
    backend = backend_factory()
    assert backend.list() == []
    backend.create("kb", embedder.dim, {"embedder": embedder.name})
    assert backend.list() == ["kb"] and backend.exists("kb")
    meta = backend.meta("kb")
    assert meta["embedder"] == embedder.name and meta["dim"] == embedder.dim
    with pytest.raises(CollectionError, match="already exists"):
        backend.create("kb", embedder.dim, {})
    with pytest.raises(CollectionError, match="'nope': does not exist"):
        backend.open("nope")
    with pytest.raises(CollectionError, match="collection name"):
        backend.create("../escape", embedder.dim, {})
    backend.drop("kb")
    assert backend.list() == [] and not backend.exists("kb")


def test_upsert_count_and_idempotent_rewrite(backend_factory, embedder):
    store = _filled(backend_factory(), embedder)
    assert store.count() == 8
    chunks = make_chunks("volcano")
    store.upsert(chunks, _vectors(embedder, chunks))  # same ids again: replaces, never duplicates
    assert store.count() == 8
    assert store.count({"doc_id": "volcano"}) == 2
    assert store.count({"doc_id": ["volcano", "cooking"]}) == 4


def test_upsert_rejects_bad_vectors(backend_factory, embedder):
    store = backend_factory().create("kb", embedder.dim, {})
    chunks = make_chunks("volcano")
    with pytest.raises(StoreError, match="dims"):
        store.upsert(chunks, np.ones((2, embedder.dim + 1), dtype=np.float32))
    bad = _vectors(embedder, chunks)
    bad[0, 0] = np.nan
    with pytest.raises(StoreError, match="NaN"):
        store.upsert(chunks, bad)
    with pytest.raises(StoreError, match="2 chunks but 1 vectors"):
        store.upsert(chunks, bad[:1])
    assert store.count() == 0


def test_delete_document_and_versions(backend_factory, embedder):
    store = _filled(backend_factory(), embedder)
    store.delete_document("cooking")
    assert store.count() == 6 and store.count({"doc_id": "cooking"}) == 0
    v2 = make_chunks("volcano", version="v2")
    store.upsert(v2, _vectors(embedder, v2))
    docs = store.documents()
    assert docs["volcano"].versions == {"v1": 2, "v2": 2} and not docs["volcano"].complete("v2")
    store.delete_document("volcano", keep_version="v2")
    docs = store.documents()
    assert docs["volcano"].complete("v2") and docs["football"].complete("v1")
    assert set(docs) == {"volcano", "football", "astronomy"}


def test_dense_bm25_hybrid_search(backend_factory, embedder):
    store = _filled(backend_factory(), embedder)
    question = "What is bechamel sauce made from?"
    qv = embedder.embed([question])[0]
    for mode in ("dense", "bm25", "hybrid"):
        hits = store.search(SearchQuery(question, qv), top_k=3, mode=mode)
        assert hits, mode
        assert hits[0].chunk.text.startswith("Bechamel"), (mode, [h.chunk.text for h in hits])
        assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
        assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))
        top = hits[0].chunk
        assert top.doc_id == "cooking" and top.page == 2 and top.headings == ("Top", "cooking")
        assert top.source == "/docs/cooking.md" and top.format == "markdown"
    # BM25 finds exact rare terms that a small dense model may miss; dense finds paraphrases.
    hits = store.search(SearchQuery("Etna", None), top_k=2, mode="bm25")
    assert hits[0].chunk.doc_id == "volcano"
    para = "biggest world orbiting our sun"
    hits = store.search(SearchQuery(para, embedder.embed([para])[0]), top_k=1, mode="dense")
    assert hits[0].chunk.doc_id == "astronomy"
    assert store.search(SearchQuery("the of and", None), top_k=3, mode="bm25") == []


def test_search_filters(backend_factory, embedder):
    store = _filled(backend_factory(), embedder)
    q = "offside rule for sauces"
    qv = embedder.embed([q])[0]
    for mode in ("dense", "bm25", "hybrid"):
        hits = store.search(SearchQuery(q, qv), top_k=5, mode=mode, filters={"doc_id": "cooking"})
        assert hits and {h.chunk.doc_id for h in hits} == {"cooking"}, mode
        unfiltered = store.search(SearchQuery(q, qv), top_k=1, mode=mode)
        assert unfiltered[0].chunk.doc_id == "football", mode
        hits = store.search(SearchQuery(q, qv), top_k=8, mode="dense", filters={"source": ["/docs/cooking.md",
                                                                                           "/docs/football.md"]})
        assert {h.chunk.doc_id for h in hits} == {"cooking", "football"}


def test_chunks_by_filter_without_a_query(backend_factory, embedder):
    store = _filled(backend_factory(), embedder)
    cooking = store.chunks({"doc_id": "cooking"})
    assert [c.doc_id for c in cooking] == ["cooking"] * 2 and [c.index for c in cooking] == [0, 1]
    assert cooking[0].text.startswith("Bechamel") or cooking[1].text.startswith("Bechamel")
    assert len(store.chunks()) == store.count() and len(store.chunks(limit=3)) == 3
    assert store.chunks({"doc_id": "nothing"}) == []
    store.optimize()  # builds the indexes (or nothing, where the engine does it itself); search still works
    q = "What is bechamel sauce made from?"
    assert store.search(SearchQuery(q, embedder.embed([q])[0]), top_k=1)[0].chunk.doc_id == "cooking"


def test_search_rejects_bad_queries(backend_factory, embedder):
    store = _filled(backend_factory(), embedder)
    with pytest.raises(StoreError, match="needs a query vector"):
        store.search(SearchQuery("x", None), mode="dense")
    with pytest.raises(StoreError, match="search mode"):
        store.search(SearchQuery("x", None), mode="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="dims"):
        store.search(SearchQuery("x", np.ones(3, dtype=np.float32)), mode="hybrid")


def test_persistence_across_reopen(backend_factory, embedder):
    store = _filled(backend_factory(), embedder)
    store.close()
    backend = backend_factory()  # a new backend object on the same location
    assert backend.list() == ["kb"]
    store = backend.open("kb")
    assert store.count() == 8 and store.dim == embedder.dim
    q = "Saturn rings ice"
    hits = store.search(SearchQuery(q, embedder.embed([q])[0]), top_k=1, mode="hybrid")
    assert hits[0].chunk.doc_id == "astronomy"
    assert store.documents()["astronomy"].complete("v1")


def test_hybrid_fuses_with_dbsf_by_default(backend_factory, embedder):
    """DBSF beat every RRF setting on HaluEval + BoolQ (docs/benchmarks.md); both backends must use it."""
    store = backend_factory().create("kb", embedder.dim, {})
    assert store.fusion == "dbsf"
