"""IR metrics: hand-computed values, a published worked example, and parity with trec_eval."""

from __future__ import annotations

import math
import random

import pytest

from sovrag.evaluate import dcg, evaluate_run, hit_rate_at_k, mrr_at_k, ndcg_at_k, recall_at_k


def test_wikipedia_dcg_worked_example() -> None:
    """The example of Wikipedia's "Discounted cumulative gain" article (section "Example").

    Six retrieved documents D1..D6 have relevances 3, 2, 3, 0, 1, 2; the article states DCG6 = 6.861.
    Two more judged documents (D7 = 3, D8 = 2) are not retrieved, so the ideal order is
    3, 3, 3, 2, 2, 2, 1, 0 and the article states IDCG6 = 8.740 and nDCG6 = 6.861 / 8.740 = 0.785.
    """
    rels = [3, 2, 3, 0, 1, 2]
    assert dcg(rels) == pytest.approx(6.861, abs=5e-4)
    assert dcg([3, 3, 3, 2, 2, 2]) == pytest.approx(8.740, abs=5e-4)
    qrels = {f"D{i}": r for i, r in enumerate(rels, start=1)} | {"D7": 3, "D8": 2}
    ranked = [f"D{i}" for i in range(1, 7)]
    assert ndcg_at_k(ranked, qrels, 6) == pytest.approx(0.785, abs=5e-4)
    # the article's own point: swapping D3 and D4 lowers DCG (3 moves from rank 3 to rank 4)
    swapped = ["D1", "D2", "D4", "D3", "D5", "D6"]
    assert ndcg_at_k(swapped, qrels, 6) < ndcg_at_k(ranked, qrels, 6)


def test_binary_hand_computed() -> None:
    ranked = ["a", "x", "b", "y", "c"]
    rel = {"a", "b", "z"}  # z never retrieved
    # DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG over 3 relevant = 1 + 1/log2(3) + 1/log2(4)
    idcg = 1 + 1 / math.log2(3) + 0.5
    assert ndcg_at_k(ranked, rel, 5) == pytest.approx(1.5 / idcg)
    assert ndcg_at_k(ranked, rel, 1) == pytest.approx(1.0)
    assert ndcg_at_k(ranked, rel, 2) == pytest.approx(1.0 / (1 + 1 / math.log2(3)))
    assert recall_at_k(ranked, rel, 5) == pytest.approx(2 / 3)
    assert recall_at_k(ranked, rel, 2) == pytest.approx(1 / 3)
    assert mrr_at_k(["x", "y", "b"], rel, 5) == pytest.approx(1 / 3)
    assert mrr_at_k(["x", "y", "b"], rel, 2) == 0.0
    assert hit_rate_at_k(["x", "y", "b"], rel, 3) == 1.0
    assert hit_rate_at_k(["x", "y", "b"], rel, 2) == 0.0


def test_graded_uses_linear_gain_and_ideal_order() -> None:
    # relevant grades 2 and 1; the run puts the grade-1 document first
    got = ndcg_at_k(["one", "two"], {"two": 2, "one": 1, "zero": 0}, 10)
    assert got == pytest.approx((1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3)))
    # grade 0 is judged non-relevant: it neither counts for recall nor as a hit
    assert recall_at_k(["zero"], {"zero": 0, "one": 1}, 10) == 0.0
    assert mrr_at_k(["zero", "one"], {"zero": 0, "one": 1}, 10) == 0.5


def test_duplicates_count_once_and_edge_cases() -> None:
    # a repeat is dropped and later documents move up: the distinct top 2 of a, a, b is a, b
    assert recall_at_k(["a", "a", "b"], {"a", "b"}, 2) == 1.0
    assert mrr_at_k(["x", "x", "a"], {"a"}, 10) == 0.5
    assert ndcg_at_k(["a", "a"], {"a", "b"}, 10) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert ndcg_at_k([], {"a"}, 10) == 0.0
    assert ndcg_at_k(["a"], set(), 10) == 0.0
    assert recall_at_k(["a"], set(), 10) == 0.0
    with pytest.raises(ValueError):
        ndcg_at_k(["a"], {"a"}, 0)
    with pytest.raises(TypeError):
        recall_at_k(["a"], "a", 10)  # type: ignore[arg-type]


def test_evaluate_run_means_and_skips() -> None:
    run = {"q1": ["a", "b"], "q2": ["x", "c"], "q4": ["a"]}
    qrels = {"q1": {"a"}, "q2": {"c": 1}, "q3": {"d"}, "q5": {"e": 0}}  # q3 unanswered, q5 unjudged
    res = evaluate_run(run, qrels, k=10)
    assert set(res) == {"ndcg@10", "recall@10", "mrr@10", "hit_rate@10"}
    assert res["recall@10"] == pytest.approx((1 + 1 + 0) / 3)
    assert res["mrr@10"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert res["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3) + 0) / 3)
    assert res["hit_rate@10"] == pytest.approx(2 / 3)
    assert evaluate_run(run, qrels, k=1)["recall@1"] == pytest.approx(1 / 3)


def _random_case(seed: int) -> tuple[dict[str, list[str]], dict[str, dict[str, int]]]:
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(60)]
    run: dict[str, list[str]] = {}
    qrels: dict[str, dict[str, int]] = {}
    for q in range(200):
        qid = f"q{q}"
        run[qid] = rng.sample(docs, rng.randint(0, 25))
        judged = rng.sample(docs, rng.randint(1, 8))
        qrels[qid] = {d: rng.choice([0, 1, 1, 2, 3]) for d in judged}
    return run, qrels


@pytest.mark.parametrize("k", [1, 5, 10, 20])
def test_parity_with_trec_eval(k: int) -> None:
    """Same numbers as trec_eval (through pytrec_eval) on random graded runs, per query."""
    pytrec_eval = pytest.importorskip("pytrec_eval")
    run, qrels = _random_case(seed=k)
    # trec_eval ranks by score; give strictly decreasing scores, and cut the run at k so that its
    # full-ranking measures (recip_rank) become the @k ones
    trec_run = {q: {d: float(len(ids) - i) for i, d in enumerate(ids[:k])} for q, ids in run.items()}
    ev = pytrec_eval.RelevanceEvaluator(qrels, {f"ndcg_cut.{k}", f"recall.{k}", "recip_rank"})
    ref = ev.evaluate(trec_run)
    checked = 0
    for q, ids in run.items():
        if not any(g > 0 for g in qrels[q].values()):
            continue
        r = ref.get(q, {})
        assert ndcg_at_k(ids, qrels[q], k) == pytest.approx(r.get(f"ndcg_cut_{k}", 0.0), abs=1e-9), q
        assert recall_at_k(ids, qrels[q], k) == pytest.approx(r.get(f"recall_{k}", 0.0), abs=1e-9), q
        assert mrr_at_k(ids, qrels[q], k) == pytest.approx(r.get("recip_rank", 0.0), abs=1e-9), q
        checked += 1
    assert checked > 150
