"""The groundedness verifier against the lexical rule and the local LLM judges, per held-out set.

The held-out sets are the verifier's test split (documents no training example came from; sovrag.train.sources
splits by a hash of the document): HaluEval QA, dialogue and summarization (right vs hallucinated), BoolQ
(yes/no statements from question + label) and synthetic perturbations of test documents. Balanced accuracy
of "supported" vs not. The judges (ragas's NLI prompt to the bundled Qwen models, JSON-constrained) take
seconds per claim, so they run on the first --judge-items examples of each set, with the verifier and the
lexical rule on the same examples beside them.

    .venv/bin/python benchmarks/verifier.py [--judge-items 20] [--judges fast]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import datasets as D  # noqa: E402

from sovrag.evaluate.faithcheck import lexical_check  # noqa: E402
from sovrag.evaluate.judge import Judge, JudgeError  # noqa: E402
from sovrag.generate import create_llm  # noqa: E402
from sovrag.train.verifier import TEST_LIMITS, balanced_accuracy  # noqa: E402
from sovrag.train.verifier_data import SOURCES, build  # noqa: E402
from sovrag.verifier import SUPPORTED, load  # noqa: E402

ANCHORS = {"MiniCheck-Flan-T5-L (LLM-AggreFact)": 0.750, "HHEM-2.1-open (LLM-AggreFact)": 0.765,
           "GPT-4 (LLM-AggreFact)": 0.738}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--judge-items", type=int, default=20)
    ap.add_argument("--judges", nargs="*", default=["fast"])
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "sovrag-train")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "verifier.json")
    a = ap.parse_args()
    v = load()
    tok_count = v.count
    test = build("test", a.cache, tok_count, 13, TEST_LIMITS, focus=False)
    results: dict = {"machine": D.machine(), "verifier": v.name, "threshold": v.threshold, "sets": {},
                     "anchors": ANCHORS}
    t0 = time.perf_counter()
    verdicts = v.score_pairs([(e.premise, e.claim) for e in test])
    verify_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    lexical = [lexical_check(e.premise, e.claim).supported for e in test]
    lexical_s = time.perf_counter() - t0
    results["seconds_per_claim"] = {"verifier": round(verify_s / len(test), 4),
                                    "lexical": round(lexical_s / len(test), 6)}
    for src in SOURCES:
        idx = [i for i, e in enumerate(test) if e.source == src]
        gold = [test[i].label == SUPPORTED for i in idx]
        results["sets"][src] = {
            "n": len(idx),
            "verifier": round(balanced_accuracy(gold, [v.supports(verdicts[i]) for i in idx]), 4),
            "lexical": round(balanced_accuracy(gold, [lexical[i] for i in idx]), 4),
        }
    print(json.dumps(results, indent=1), flush=True)
    settings = D.test_settings()
    for spec in a.judges:
        judge = Judge(create_llm(settings, spec), max_tokens=96)
        for src in SOURCES:
            # balanced: the first judge-items/2 supported and unsupported examples of the set
            sup = [i for i, e in enumerate(test) if e.source == src and e.label == SUPPORTED][: a.judge_items // 2]
            uns = [i for i, e in enumerate(test) if e.source == src and e.label != SUPPORTED][: a.judge_items // 2]
            idx = sup + uns
            preds, t0 = [], time.perf_counter()
            for i in idx:
                try:
                    (verdict,) = judge.nli([test[i].premise], [test[i].claim])
                    preds.append(bool(verdict["verdict"]))
                except JudgeError:
                    preds.append(False)
            gold = [test[i].label == SUPPORTED for i in idx]
            row = results["sets"][src].setdefault("judges", {})
            row[judge.name] = {"n": len(idx), "judge": round(balanced_accuracy(gold, preds), 4),
                               "verifier_same_items": round(balanced_accuracy(gold, [v.supports(verdicts[i])
                                                                                     for i in idx]), 4),
                               "lexical_same_items": round(balanced_accuracy(gold, [lexical[i] for i in idx]), 4),
                               "seconds_per_claim": round((time.perf_counter() - t0) / max(1, len(idx)), 2)}
            print(src, row[judge.name], flush=True)
    results["mean"] = {k: round(float(np.mean([r[k] for r in results["sets"].values()])), 4)
                       for k in ("verifier", "lexical")}
    a.out.parent.mkdir(exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2))
    print(json.dumps({k: results[k] for k in ("sets", "mean", "seconds_per_claim")}, indent=1))


if __name__ == "__main__":
    main()
