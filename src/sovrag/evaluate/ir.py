"""Ranked-retrieval metrics (nDCG, recall, MRR, hit rate) at a cutoff k.

Conventions follow trec_eval (and so pytrec_eval, BEIR and ranx), so numbers are comparable with
published retrieval results:

- gain is the relevance grade itself (linear gain, as trec_eval's ``ndcg_cut``), discounted by
  ``log2(rank + 1)``; the ideal DCG ranks *all* judged-relevant documents by grade, including ones the
  run never retrieved, so a run that misses relevant documents cannot reach 1.0;
- a document is relevant when its grade is above 0 (a set of ids means grade 1 for each);
- a document repeated in a ranking counts once, at its first rank, and later documents move up (so
  chunk-level results collapse into a document-level ranking);
- ``evaluate_run`` averages over the queries of ``qrels`` that have at least one relevant document; a
  query the run has no ranking for scores 0 on every metric.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

#: Relevance judgements of one query: ids of relevant documents, or id -> grade (0 = not relevant).
Relevance = Mapping[str, float] | Iterable[str]


def _grades(relevant: Relevance) -> dict[str, float]:
    if isinstance(relevant, Mapping):
        return {str(d): float(g) for d, g in relevant.items() if float(g) > 0}
    if isinstance(relevant, str):  # a lone id is almost surely a mistake for {id}
        raise TypeError(f"relevant={relevant!r}: give a set of ids or a mapping id -> grade, not a string")
    return {str(d): 1.0 for d in relevant}


def _top(ranked_ids: Sequence[str], k: int) -> list[str]:
    if k < 1:
        raise ValueError(f"k={k}: must be at least 1")
    seen: set[str] = set()
    out: list[str] = []
    for d in ranked_ids:
        if d not in seen:
            seen.add(d)
            out.append(d)
            if len(out) == k:
                break
    return out


def dcg(gains: Sequence[float]) -> float:
    """Discounted cumulative gain of gains listed in rank order (rank 1 first)."""
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ndcg_at_k(ranked_ids: Sequence[str], relevant: Relevance, k: int) -> float:
    grades = _grades(relevant)
    top = _top(ranked_ids, k)
    ideal = dcg(sorted(grades.values(), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return dcg([grades.get(d, 0.0) for d in top]) / ideal


def recall_at_k(ranked_ids: Sequence[str], relevant: Relevance, k: int) -> float:
    grades = _grades(relevant)
    if not grades:
        return 0.0
    return sum(1 for d in _top(ranked_ids, k) if d in grades) / len(grades)


def mrr_at_k(ranked_ids: Sequence[str], relevant: Relevance, k: int) -> float:
    """Reciprocal rank of the first relevant document within the top k (0 when there is none)."""
    grades = _grades(relevant)
    for rank, d in enumerate(_top(ranked_ids, k), start=1):
        if d in grades:
            return 1.0 / rank
    return 0.0


def hit_rate_at_k(ranked_ids: Sequence[str], relevant: Relevance, k: int) -> float:
    """1.0 when any relevant document is in the top k, else 0.0 (a.k.a. success@k)."""
    return 1.0 if mrr_at_k(ranked_ids, relevant, k) > 0 else 0.0


METRICS = {
    "ndcg": ndcg_at_k,
    "recall": recall_at_k,
    "mrr": mrr_at_k,
    "hit_rate": hit_rate_at_k,
}


def evaluate_run(
    run: Mapping[str, Sequence[str]], qrels: Mapping[str, Relevance], k: int = 10
) -> dict[str, float]:
    """Mean of each metric at k over the judged queries: {"ndcg@10": ..., "recall@10": ..., ...}.

    ``run`` maps a query id to its ranked document ids (best first); ``qrels`` maps a query id to its
    relevant documents. Queries with no relevant document are skipped, as trec_eval does.
    """
    judged = {q: g for q, rel in qrels.items() if (g := _grades(rel))}
    out: dict[str, float] = {}
    for name, fn in METRICS.items():
        total = sum(fn(run.get(q, ()), grades, k) for q, grades in judged.items())
        out[f"{name}@{k}"] = total / len(judged) if judged else 0.0
    return out
