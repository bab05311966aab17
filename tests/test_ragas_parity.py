"""sovrag's RAGAS-compatible scores equal ragas's own code on the same judge verdicts.

Like bm25s's tests against rank_bm25: the reference library is installed (dev extra) and its scoring
functions are called with the same verdicts; the judge LLM is out of the loop, so any difference is a
formula difference.
"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
ragas_faith = pytest.importorskip("ragas.metrics._faithfulness")
from ragas.metrics._answer_relevance import ResponseRelevanceOutput, ResponseRelevancy  # noqa: E402
from ragas.metrics._context_precision import LLMContextPrecisionWithReference, Verification  # noqa: E402
from ragas.metrics._context_recall import ContextRecallClassification, LLMContextRecall  # noqa: E402

from sovrag.evaluate import ragas as ours  # noqa: E402

VERDICT_LISTS = [[1], [0], [1, 0], [0, 1], [0, 0, 1], [1, 1, 0, 1], [0, 1, 0, 1, 0, 1]] + [
    [random.Random(seed).randint(0, 1) for _ in range(random.Random(seed).randint(1, 20))] for seed in range(200)]


def test_faithfulness_matches_ragas() -> None:
    ref = ragas_faith.Faithfulness()
    for verdicts in VERDICT_LISTS:
        out = ragas_faith.NLIStatementOutput(statements=[
            ragas_faith.StatementFaithfulnessAnswer(statement=f"s{i}", reason="r", verdict=v)
            for i, v in enumerate(verdicts)])
        assert ours.faithfulness(verdicts) == ref._compute_score(out)
    assert np.isnan(ref._compute_score(ragas_faith.NLIStatementOutput(statements=[])))
    assert ours.faithfulness([]) is None  # ragas: NaN; sovrag reports the sample as unscored


def test_context_precision_matches_ragas() -> None:
    ref = LLMContextPrecisionWithReference()
    for verdicts in VERDICT_LISTS + [[0, 0, 0]]:
        expected = ref._calculate_average_precision([Verification(reason="r", verdict=v) for v in verdicts])
        assert ours.context_precision(verdicts) == expected


def test_context_recall_matches_ragas() -> None:
    ref = LLMContextRecall()
    for verdicts in VERDICT_LISTS:
        expected = ref._compute_score([ContextRecallClassification(statement="s", reason="r", attributed=v)
                                       for v in verdicts])
        assert ours.context_recall(verdicts) == expected


class _Embeddings:
    """ragas calls embed_query / embed_documents; give it sovrag's own embedder."""

    def __init__(self, embedder) -> None:
        self.embedder = embedder

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed([text])[0].tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed(texts).tolist()


def test_answer_relevancy_matches_ragas_with_real_embeddings(embedder) -> None:
    ref = ResponseRelevancy(embeddings=_Embeddings(embedder))  # type: ignore[arg-type]
    question = "How many vacation days do new employees get?"
    cases = [
        (["How many vacation days does a new employee get?", "What is the annual leave of new staff?",
          "How much vacation do new hires receive?"], [0, 0, 0]),
        (["What is the hotel limit per night?", "How many vacation days do new employees get?", "Who owns it?"],
         [0, 1, 0]),
        (["What is the vacation allowance?"] * 3, [1, 1, 1]),  # all noncommittal: 0
    ]
    for generated, noncommittal in cases:
        answers = [ResponseRelevanceOutput(question=q, noncommittal=n) for q, n in zip(generated, noncommittal,
                                                                                        strict=True)]
        expected = ref._calculate_score(answers, {"user_input": question})
        got = ours.answer_relevancy(embedder.embed([question])[0], embedder.embed(generated), noncommittal)
        assert got == pytest.approx(expected, abs=1e-6)
    assert cases and got == 0.0
