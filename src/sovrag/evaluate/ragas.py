"""RAGAS-compatible answer metrics: the formulas of the ragas library (0.4.x), from judge verdicts.

The verdicts come from a judge LLM (`sovrag.evaluate.judge`); these functions only turn them into scores,
exactly as ragas does (tests/test_ragas_parity.py checks them against ragas's own code):

- faithfulness       = supported statements / statements extracted from the answer
                        (ragas `Faithfulness._compute_score`)
- answer relevancy   = mean cosine(question, questions regenerated from the answer), times 0 when every
                        regenerated question was marked noncommittal (ragas `ResponseRelevancy._calculate_score`)
- context precision  = sum_k precision@k * v_k / (sum_k v_k + 1e-10), v_k = 1 when the k-th retrieved
                        context was useful for the reference (ragas `LLMContextPrecisionWithReference`)
- context recall     = reference statements attributed to the contexts / reference statements
                        (ragas `LLMContextRecall._compute_score`)

Where ragas returns NaN (nothing to score), these return None and the caller reports why.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def faithfulness(verdicts: Sequence[int]) -> float | None:
    if not verdicts:
        return None
    return sum(1 if v else 0 for v in verdicts) / len(verdicts)


def answer_relevancy(question_vector: np.ndarray, generated_vectors: np.ndarray,
                     noncommittal: Sequence[int]) -> float | None:
    if len(generated_vectors) == 0:
        return None
    q = np.asarray(question_vector, dtype=np.float64).reshape(1, -1)
    g = np.asarray(generated_vectors, dtype=np.float64).reshape(len(generated_vectors), -1)
    norm = np.linalg.norm(g, axis=1) * np.linalg.norm(q, axis=1)
    cosine = (g @ q.T).reshape(-1) / norm
    all_noncommittal = bool(np.all([bool(n) for n in noncommittal]))
    return float(cosine.mean() * int(not all_noncommittal))


def context_precision(verdicts: Sequence[int]) -> float | None:
    if not verdicts:
        return None
    v = [1 if x else 0 for x in verdicts]
    denominator = sum(v) + 1e-10
    numerator = sum((sum(v[: i + 1]) / (i + 1)) * v[i] for i in range(len(v)))
    return numerator / denominator


def context_recall(attributed: Sequence[int]) -> float | None:
    if not attributed:
        return None
    return sum(1 if a else 0 for a in attributed) / len(attributed)
