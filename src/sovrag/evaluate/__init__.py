"""Measuring sovrag: retrieval metrics now; RAGAS-compatible answer metrics and reports later."""

from sovrag.evaluate.ir import (
    dcg,
    evaluate_run,
    hit_rate_at_k,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
)

__all__ = ["dcg", "evaluate_run", "hit_rate_at_k", "mrr_at_k", "ndcg_at_k", "recall_at_k"]
