"""From a question to the `Context` answering works from: search, diversify, compress, number the sources.

The question (and, for a follow-up, the search query) is embedded once, in one batch; the vector goes to
the engine's search, to sentence scoring and, through the Context, to contradiction detection. Sources are
the retrieved chunks' sentences that compression keeps, numbered in rank order, each with the embeddings of
exactly the sentences the model is shown (its `Evidence`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from sovrag.collection import Collection
from sovrag.reranker import Reranker
from sovrag.retrieve.compress import SentencePool, build_pool, compress, lexical_overlap
from sovrag.retrieve.search import search, search_reranked
from sovrag.store import Filters, SearchMode
from sovrag.types import Context, Evidence, ScoredChunk, Source


def retrieve_context(
    collection: Collection,
    question: str,
    query: str,
    *,
    top_k: int,
    mode: SearchMode,
    filters: Filters | None,
    max_chunks_per_doc: int,
    budget_tokens: int,
    count_tokens: Callable[[str], int],
    compress_sentences: bool = True,
    compress_floor: float = 0.5,
    keep_whole: int = 1,
    reranker: Reranker | None = None,
) -> Context:
    """Search for `query` (the question, or the question with an earlier one for a follow-up), rerank hybrid
    search's best when a reranker is given (and take its answerability), then keep what the model should see of
    the hits for `question` within `budget_tokens`."""
    t0 = time.perf_counter()
    texts = [question] if query == question else [question, query]
    vectors = collection.embedder.embed(texts)
    q_vec, query_vec = vectors[0], vectors[-1]
    answerable, threshold = None, 0.0
    if reranker is None:
        hits = search(collection, query, top_k=top_k * 2, mode=mode, filters=filters, vector=query_vec)
    else:  # a follow-up is searched and reranked with the question it follows
        hits, r = search_reranked(collection, query, max(reranker.candidates, top_k * 2), mode, filters, query_vec,
                                  reranker)
        answerable, threshold = r.answerable, r.threshold
    hits = _diverse(hits, top_k, max_chunks_per_doc)
    t1 = time.perf_counter()
    timings = {"retrieve_s": t1 - t0}
    if reranker is not None:
        timings["rerank_s"] = r.seconds
    if not hits:
        return Context(question, query, q_vec, [], [], [], 0.0, 0.0, timings, answerable, threshold)
    # Sentences are scored against the question itself: a follow-up's search brings the earlier topic's
    # passages, but what the model should see is what the new question asks of them.
    pool = build_pool(collection.embedder, q_vec, hits)
    relevance = pool.relevance()
    if query != question:
        relevance = np.maximum(relevance, pool.vectors @ query_vec)
    best_by_hit = [float(relevance[pool.of(h)].max()) if pool.of(h) else 0.0 for h in range(len(hits))]
    if compress_sentences:
        kept = compress(pool, question, len(hits), budget_tokens, count_tokens, relative_floor=compress_floor,
                        keep_whole=keep_whole).kept
    else:
        kept = _fit_whole_chunks(pool, len(hits), budget_tokens, count_tokens)
    sources: list[Source] = []
    evidence: list[Evidence] = []
    for h, idx in enumerate(kept):
        if not idx:
            continue
        n = len(sources) + 1
        text = _join(pool, idx)
        sources.append(Source(n, hits[h].chunk, text, round(best_by_hit[h], 4)))
        evidence.append(Evidence(n, [pool.sentences[i] for i in idx], pool.vectors[idx], text))
    timings["compress_s"] = time.perf_counter() - t1
    coverage = max((max(lexical_overlap(question, h.chunk.text), lexical_overlap(query, h.chunk.text))
                    for h in hits), default=0.0)
    return Context(question, query, q_vec, hits, sources, evidence, max(best_by_hit, default=0.0), coverage,
                   timings, answerable, threshold)


def _diverse(hits: list[ScoredChunk], k: int, per_doc: int) -> list[ScoredChunk]:
    out: list[ScoredChunk] = []
    count: dict[str, int] = {}
    for h in hits:
        if count.get(h.chunk.doc_id, 0) < per_doc:
            out.append(h)
            count[h.chunk.doc_id] = count.get(h.chunk.doc_id, 0) + 1
        if len(out) == k:
            break
    return out


def _fit_whole_chunks(pool: SentencePool, n_chunks: int, budget: int,
                      count: Callable[[str], int]) -> list[list[int]]:
    """No compression: whole chunks in rank order while they fit the budget."""
    kept: list[list[int]] = [[] for _ in range(n_chunks)]
    used = 0
    for h in range(n_chunks):
        idx = pool.of(h)
        cost = sum(count(pool.sentences[i]) + 1 for i in idx)
        if used + cost > budget and used:
            break
        kept[h] = idx
        used += cost
    return kept


def _join(pool: SentencePool, idx: list[int]) -> str:
    parts: list[str] = []
    for k, i in enumerate(idx):
        if k and i != idx[k - 1] + 1:
            parts.append("…")
        parts.append(pool.sentences[i])
    return " ".join(parts)
