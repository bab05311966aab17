"""Reorder hybrid search's candidates with the trained reranker (sovrag.reranker), and say how likely the best of
them answers the question: the signal the abstention gate reads, which survives paraphrase where word overlap
does not."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace

import numpy as np

from sovrag.reranker import Reranker
from sovrag.types import ScoredChunk


@dataclass(frozen=True)
class Reranked:
    hits: list[ScoredChunk]  # best first, each scored with the reranker's P(the chunk answers the question)
    #: P(some candidate answers the question), from the gate calibrated on dev, and the threshold below which
    #: the answer pipeline abstains.
    answerable: float
    threshold: float
    seconds: float = 0.0  # the reranker's time


#: Where a question asks two things ("What is X, and how many Y?"; "Is X? What is Y?"): a second question
#: starts after "and" or a question mark with a question word.
_PART = re.compile(r"(?:,?\s+and\s+|\?\s+|;\s*)(?=(?:what|how|who|whom|whose|when|where|which|why|is|are|was|were|"
                   r"do|does|did|can|could|should|must|will|would|has|have)\b)", re.IGNORECASE)


def question_parts(question: str) -> list[str]:
    """The questions a compound question asks, each of at least three words; [] when it asks one thing."""
    parts = [p.strip(" ,;?") for p in _PART.split(question)]
    parts = [p + "?" for p in parts if len(p.split()) >= 3]
    return parts if len(parts) > 1 else []


def rerank(reranker: Reranker, question: str, hits: list[ScoredChunk], hybrid: bool = True) -> Reranked:
    """`hits` (hybrid search's best, when `hybrid`; another mode's otherwise) in the reranker's order: by logit +
    hybrid_weight * the search's score in hybrid mode (the weight chosen on dev), by logit alone otherwise.

    The reranker was trained on questions that one passage answers; a compound question ("What is the hotel
    limit, and how long must a password be?") is also scored part by part, and a passage's logit is its best
    over the whole question and its parts, so a passage answering either part ranks high and the gate lets
    the question through when some part is answered (the verifier then checks each sentence of the answer)."""
    if not hits:
        return Reranked([], 0.0, reranker.answerable(-1e9, None)[1])
    t0 = time.perf_counter()
    texts = [h.chunk.text for h in hits]
    logits = reranker.scores(question, texts)
    for part in question_parts(question):
        logits = np.maximum(logits, reranker.scores(part, texts))
    search = np.array([h.score for h in hits], dtype=np.float64)
    key = logits + reranker.hybrid_weight * search if hybrid else logits.astype(np.float64)
    probs = Reranker.probability(logits)
    order = np.argsort(-key, kind="stable")
    out = [replace(hits[i], score=round(float(probs[i]), 4), rank=r + 1) for r, i in enumerate(order)]
    # the hybrid score enters the gate only over as many candidates as it was calibrated on: DBSF scores each
    # list by its own spread, so a collection of a few chunks gives scores of another scale (logit alone then)
    full = hybrid and len(hits) >= reranker.candidates
    p, threshold = reranker.answerable(float(logits.max()), float(search.max()) if full else None)
    return Reranked(out, p, threshold, time.perf_counter() - t0)
