"""Contextual compression: keep only the sentences of the retrieved chunks that matter for the question.

Each sentence is scored by embedding similarity to the question plus a share of the question's content
terms it contains (small embedders miss exact names and numbers that the words carry). Sentences are
then picked MMR-style — relevance minus similarity to what is already picked — until the token budget is
spent or no sentence scores at least half of the best one, and shown to the model in their original order,
grouped by source.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from sovrag.embed import Embedder
from sovrag.text import content_terms, split_sentences
from sovrag.types import ScoredChunk


@dataclass
class SentencePool:
    """Every sentence of the retrieved chunks with its embedding; reused by citation verification."""

    sentences: list[str]
    owner: list[int]  # index of the retrieved chunk each sentence comes from
    vectors: np.ndarray
    question_vector: np.ndarray

    def relevance(self) -> np.ndarray:
        return self.vectors @ self.question_vector

    def of(self, hit: int) -> list[int]:
        """Pool indices of one retrieved chunk's sentences."""
        return [i for i, o in enumerate(self.owner) if o == hit]


def build_pool(embedder: Embedder, question_vector: np.ndarray, hits: Sequence[ScoredChunk]) -> SentencePool:
    """The retrieved chunks' sentences, embedded in one batch; the question comes already embedded."""
    sentences: list[str] = []
    owner: list[int] = []
    for i, hit in enumerate(hits):
        for s in split_sentences(hit.chunk.text):
            sentences.append(s)
            owner.append(i)
    vectors = embedder.embed(sentences) if sentences else np.zeros((0, len(question_vector)), dtype=np.float32)
    return SentencePool(sentences, owner, vectors, question_vector)


def lexical_overlap(question: str, sentence: str) -> float:
    q = set(content_terms(question))
    if not q:
        return 0.0
    return len(q & set(content_terms(sentence))) / len(q)


@dataclass
class Compressed:
    #: For each retrieved chunk (same order as the hits): the kept sentence indices into the pool.
    kept: list[list[int]]


def compress(
    pool: SentencePool,
    question: str,
    n_chunks: int,
    budget_tokens: int,
    count_tokens: Callable[[str], int],
    mmr_lambda: float = 0.7,
    lexical_weight: float = 0.3,
    relative_floor: float = 0.5,
    keep_whole: int = 0,
) -> Compressed:
    """Pick sentences by MMR until the budget is spent; sentences scoring below relative_floor times the
    best sentence's score are never picked, so a small retrieval is trimmed too, not only a large one.
    The first `keep_whole` chunks (the best ranked) are kept entire and count against the budget."""
    n = len(pool.sentences)
    if n == 0:
        return Compressed([[] for _ in range(n_chunks)])
    scores = pool.relevance() + lexical_weight * np.array([lexical_overlap(question, s) for s in pool.sentences])
    sims = pool.vectors @ pool.vectors.T
    chosen = [i for i in range(n) if pool.owner[i] < keep_whole]
    used = sum(count_tokens(pool.sentences[i]) + 2 for i in chosen)
    available = scores >= relative_floor * float(scores.max())
    available[chosen] = False
    max_sim = sims[chosen].max(axis=0) if chosen else np.full(n, 0.0)
    while available.any():
        mmr = mmr_lambda * scores - (1 - mmr_lambda) * max_sim
        mmr[~available] = -np.inf
        best = int(np.argmax(mmr))
        available[best] = False
        cost = count_tokens(pool.sentences[best]) + 2
        if used + cost > budget_tokens:
            if chosen:
                continue  # a shorter sentence may still fit
            # Even the best sentence is over budget: keep it anyway, the budget only trims.
        chosen.append(best)
        used += cost
        max_sim = np.maximum(max_sim, sims[best])
        if used >= budget_tokens:
            break
    kept: list[list[int]] = [[] for _ in range(n_chunks)]
    for i in sorted(chosen):
        kept[pool.owner[i]].append(i)
    return Compressed(kept)
