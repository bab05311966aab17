"""Contradiction detection: do the top sources state different values for the asked fact?

For every pair of sources from different documents, take each source's sentences that answer the
question (high similarity to it) and look for a pair about the same thing (high similarity to each other)
that disagrees. With the groundedness verifier (the default), a pair disagrees when the verifier reads one
sentence as contradicting the other (either way round); without it (lexical), when they state different
values: numbers and dates, or names (capitalised terms) when the two sentences are near-paraphrases. Such a
pair is reported with both sides, so the answer can cite each.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import combinations

import numpy as np

from sovrag.text import numbers
from sovrag.types import Contradiction, Source
from sovrag.verifier import Verifier

QUESTION_SIM = 0.35  # a sentence answers the question
SAME_FACT_SIM = 0.6  # two sentences state the same fact
PARAPHRASE_SIM = 0.8  # close enough that differing names are a disagreement, not a different topic

_NAME = re.compile(r"\b[A-Z][a-zA-Z]+(?:\s+[A-Z][a-zA-Z]+)*")


def _names(sentence: str) -> set[str]:
    # Drop the sentence's first word: it is capitalised because it starts the sentence.
    body = sentence.split(" ", 1)[1] if " " in sentence else ""
    return {m.group(0) for m in _NAME.finditer(body)}


def find_contradictions(
    sources: Sequence[Source],
    sentences: dict[int, list[str]],
    vectors: dict[int, np.ndarray],
    question_vector: np.ndarray,
    verifier: Verifier | None = None,
) -> list[Contradiction]:
    """sentences/vectors: per Source.number, the sentences the model saw and their embeddings."""
    relevant: dict[int, list[int]] = {}
    for src in sources:
        v = vectors.get(src.number)
        if v is None or not len(v):
            continue
        sims = v @ question_vector
        relevant[src.number] = [i for i in np.argsort(-sims) if sims[i] >= QUESTION_SIM][:3]
    found: list[Contradiction] = []
    by_number = {s.number: s for s in sources}
    for a, b in combinations(sorted(relevant), 2):
        if by_number[a].chunk.doc_id == by_number[b].chunk.doc_id:
            continue
        best: tuple[float, Contradiction] | None = None
        for i in relevant[a]:
            for j in relevant[b]:
                sim = float(vectors[a][i] @ vectors[b][j])
                if sim < SAME_FACT_SIM:
                    continue
                sa, sb = sentences[a][i], sentences[b][j]
                na, nb = numbers(sa), numbers(sb)
                va = vb = None
                if verifier is not None:
                    if _disagree(verifier, sa, sb):
                        va, vb = _values(sa, sb)
                elif na and nb and na != nb and not (na & nb):
                    va, vb = na, nb
                elif sim >= PARAPHRASE_SIM:
                    ma, mb = _names(sa), _names(sb)
                    if ma and mb and not (ma & mb):
                        va, vb = ma, mb
                if va is not None and vb is not None and (best is None or sim > best[0]):
                    best = (sim, Contradiction(a, sa, tuple(sorted(va)), b, sb, tuple(sorted(vb))))
        if best is not None:
            found.append(best[1])
    return found


def _disagree(verifier: Verifier, a: str, b: str) -> bool:
    vs = verifier.score_pairs([(a, b), (b, a)])
    return any(not v.outside and v.contradicted >= 0.5 and v.contradicted > v.supported for v in vs)


def _values(a: str, b: str) -> tuple[set[str], set[str]]:
    """What differs between two disagreeing sentences: their numbers, else their names, else the sentences."""
    na, nb = numbers(a), numbers(b)
    if na != nb and (na - nb or nb - na):
        return (na - nb) or na, (nb - na) or nb
    ma, mb = _names(a), _names(b)
    if ma != mb and (ma - mb or mb - ma):
        return (ma - mb) or ma, (mb - ma) or mb
    return {f'"{a}"'}, {f'"{b}"'}
