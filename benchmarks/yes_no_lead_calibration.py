"""Calibrating the yes/no lead on BoolQ's dev split (never the test split).

For every BoolQ question whose passage is in the dev split, over an index of every HaluEval-QA and BoolQ
passage, through sovrag's own retrieval (hybrid search, the reranker, compression) and prompt: the LLM's log-odds
of "yes" against "no" as the first word of its answer, and the verifier's margin (best support of the yes
statement minus best support of the no statement over the sources). A logistic regression on the two (plus a
bias) is fitted on all of them; its 5-fold cross-validated accuracy is reported beside each reading alone, so the
combination's gain is measured on questions it was not fitted on.

    .venv/bin/python benchmarks/yes_no_lead_calibration.py [--llm quality] [--limit N]

Prints the weights to put in sovrag/answer/yesno.py (DEFAULT, or per model) and writes
benchmarks/results/yes_no_lead_calibration[_<model>].json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import answer_quality as AQ  # noqa: E402
import datasets as D  # noqa: E402

from sovrag.answer import AnswerOptions, AnswerPipeline  # noqa: E402
from sovrag.answer.yesno import llm_log_odds, verifier_margin  # noqa: E402
from sovrag.generate import create_llm  # noqa: E402
from sovrag.train.reranker import fit_logistic  # noqa: E402  (numpy only; no torch)
from sovrag.train.sources import split_of  # noqa: E402


def cv_accuracy(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 13) -> float:
    idx = np.random.default_rng(seed).permutation(len(y))
    right = 0
    for k in range(folds):
        test = idx[k::folds]
        train = np.setdiff1d(idx, test)
        w = fit_logistic(x[train], y[train])
        right += int(((np.hstack([np.ones((len(test), 1)), x[test]]) @ w > 0) == (y[test] > 0.5)).sum())
    return right / len(y)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--llm", default=None)
    ap.add_argument("--limit", type=int, default=0)
    a = ap.parse_args()
    rows = [r for r in D._rows("boolq") if split_of(r["passage"].strip()) == "dev"]
    random.Random(7).shuffle(rows)
    rows = rows[: a.limit or None]
    passages = D.union([D.load("halueval"), D.load("boolq")]).passages
    base = D.test_settings()
    feats = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        (data / "models").symlink_to(base.models_dir, target_is_directory=True)
        s = base.with_overrides(data_dir=data)
        col = AQ.build_index(s, "calib", passages)
        llm = create_llm(s, a.llm)
        p = AnswerPipeline(col, llm, AnswerOptions(max_tokens=64))
        t0 = time.time()
        for k, r in enumerate(rows):
            q = r["question"]
            ctx = p.retrieve(q)
            if not ctx.hits:
                continue
            from sovrag.answer.prompt import build_messages

            messages = build_messages(ctx.question, ctx.sources, p.style())
            odds = llm_log_odds(llm, messages, p.params())
            margin, _ = verifier_margin(q, ctx.evidence, p.verifier())
            gold = D.passage_id(r["passage"].strip())
            feats.append({"question": q, "label": str(r["answer"]) == "True", "llm": odds, "verifier": margin,
                          "answerable": ctx.answerable,
                          "gold_retrieved": any(h.chunk.doc_id == gold for h in ctx.hits)})
            if k % 25 == 0:
                print(f"{k + 1}/{len(rows)} {time.time() - t0:.0f}s", flush=True)
        col.close()
        name = llm.name.split(":")[-1]
    ok = [f for f in feats if f["llm"] is not None]
    y = np.array([float(f["label"]) for f in ok])
    llm_x = np.array([[f["llm"]] for f in ok])
    ver_x = np.array([[f["verifier"]] for f in ok])
    both = np.hstack([llm_x, ver_x])
    w = fit_logistic(both, y)
    out = {
        "machine": D.machine(), "llm": name, "questions": len(feats), "with_llm_log_odds": len(ok),
        "yes_share": round(float(y.mean()), 4),
        "accuracy": {
            "llm_alone_at_0": round(float(((llm_x[:, 0] > 0) == (y > 0.5)).mean()), 4),
            "verifier_alone_at_0": round(float(((ver_x[:, 0] > 0) == (y > 0.5)).mean()), 4),
            "llm_alone_cv": round(cv_accuracy(llm_x, y), 4),
            "verifier_alone_cv": round(cv_accuracy(ver_x, y), 4),
            "combined_cv": round(cv_accuracy(both, y), 4),
        },
        "weights": {"bias": round(float(w[0]), 4), "llm": round(float(w[1]), 4), "verifier": round(float(w[2]), 4)},
        "rows": feats,
    }
    suffix = "" if a.llm is None else f"_{name}"
    (HERE / "results" / f"yes_no_lead_calibration{suffix}.json").write_text(json.dumps(out, indent=1))
    print(json.dumps({k: v for k, v in out.items() if k != "rows"}, indent=1))


if __name__ == "__main__":
    main()
