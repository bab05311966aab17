"""Search a collection: embed the question (unless BM25 alone) and let the engine rank and fuse."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from sovrag.collection import Collection
from sovrag.errors import SovragError
from sovrag.reranker import Reranker
from sovrag.retrieve.rerank import Reranked, rerank
from sovrag.store import SEARCH_MODES, Filters, SearchMode, SearchQuery
from sovrag.types import ScoredChunk

MAX_QUESTION_CHARS = 4000


def search(collection: Collection, question: str, top_k: int = 5, mode: SearchMode = "hybrid",
           filters: Filters | None = None, vector: np.ndarray | None = None,
           reranker: Reranker | None = None) -> list[ScoredChunk]:
    """Ranked chunks for `question`; `vector` is its embedding when the caller already has it. With a
    `reranker`, the engine's best (as many as the reranker was calibrated on) are reordered by it and scored
    with P(the chunk answers)."""
    if reranker is None:
        return _engine(collection, question, top_k, mode, filters, vector)
    return search_reranked(collection, question, top_k, mode, filters, vector, reranker)[0]


def search_reranked(collection: Collection, question: str, top_k: int, mode: SearchMode, filters: Filters | None,
                    vector: np.ndarray | None, reranker: Reranker) -> tuple[list[ScoredChunk], Reranked]:
    """The engine's best max(top_k, reranker.candidates), its first `candidates` reordered by the reranker and the
    rest after them (renumbered), cut to `top_k`; and the reranking (its answerability for the gate)."""
    hits = _engine(collection, question, max(top_k, reranker.candidates), mode, filters, vector)
    top, rest = hits[: reranker.candidates], hits[reranker.candidates:]
    r = rerank(reranker, question, top, hybrid=mode == "hybrid")
    out = r.hits + [replace(h, rank=len(r.hits) + k + 1) for k, h in enumerate(rest)]
    return out[:top_k], r


def _engine(collection: Collection, question: str, top_k: int, mode: SearchMode, filters: Filters | None,
            vector: np.ndarray | None) -> list[ScoredChunk]:
    question = (question or "").strip()
    if not question:
        raise SovragError("question: empty; ask something")
    if len(question) > MAX_QUESTION_CHARS:
        raise SovragError(f"question: {len(question)} characters, over the {MAX_QUESTION_CHARS} limit")
    if mode not in SEARCH_MODES:
        raise SovragError(f"search mode {mode!r}: expected one of {', '.join(SEARCH_MODES)}")
    if mode == "bm25":
        vector = None
    elif vector is None:
        vector = collection.embedder.embed([question])[0]
    return collection.store.search(SearchQuery(question, vector), top_k=top_k, mode=mode, filters=filters)


def parse_filters(items: Sequence[str]) -> dict[str, Any]:
    """`key=value` strings to a filter; a repeated key matches any of its values; digits become ints."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SovragError(f"filter {item!r}: expected key=value, e.g. format=pdf")
        key, raw = key.strip(), raw.strip()
        value: Any = int(raw) if raw.lstrip("-").isdigit() else raw
        if key in out:
            prev = out[key]
            out[key] = [*prev, value] if isinstance(prev, list) else [prev, value]
        else:
            out[key] = value
    return out
