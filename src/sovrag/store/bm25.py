"""BM25 sparse vectors, computed with Qdrant's own BM25 model (the one Qdrant servers use for
`qdrant/bm25` inference), so the embedded engine and a Qdrant cluster index identical terms.

Documents carry term-frequency weights with BM25 length normalisation; queries carry 1.0 per term; the
collection's IDF modifier makes the engine apply IDF at query time over the live corpus.
"""

from __future__ import annotations

from functools import lru_cache

from qdrant_edge import Bm25, Bm25Config


@lru_cache(maxsize=1)
def _model() -> Bm25:
    # avg_len is in BM25 tokens (after stop-word removal); ~150 tokens matches sovrag's default chunks.
    return Bm25(Bm25Config(k=1.2, b=0.75, avg_len=150.0, language="english"))


def encode_document(text: str) -> tuple[list[int], list[float]]:
    v = _model().embed_document(text)
    return list(v.indices), list(v.values)


def encode_query(text: str) -> tuple[list[int], list[float]]:
    v = _model().embed_query(text)
    return list(v.indices), list(v.values)
