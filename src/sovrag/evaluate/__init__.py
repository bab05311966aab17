"""Measuring sovrag: retrieval metrics (ir), answer metrics (answers), RAGAS-compatible metrics with a judge
LLM (ragas, judge), `sovrag eval` (dataset, run, report) and the hallucination check (faithcheck)."""

from sovrag.evaluate.ir import (
    dcg,
    evaluate_run,
    hit_rate_at_k,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
)

__all__ = ["dcg", "evaluate_run", "hit_rate_at_k", "mrr_at_k", "ndcg_at_k", "recall_at_k"]
