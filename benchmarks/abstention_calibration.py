"""Calibrating the pre-generation abstention gate: can retrieval alone tell an answerable question?

For a seeded sample of HaluEval-QA questions (seed 99: not the answer benchmark's sample), retrieve the
top passages from the full HaluEval + BoolQ index twice: as they are (gold passage present) and with the
gold passage taken out of the hits (gold removed). For each, record the best question-sentence cosine
and the best question-term coverage of one source, and report the threshold of each feature with the
best balanced accuracy. No LLM is involved.

    .venv/bin/python benchmarks/abstention_calibration.py [--questions 300]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import answer_quality as AQ  # noqa: E402
import datasets as D  # noqa: E402

from sovrag.retrieve import search  # noqa: E402
from sovrag.retrieve.compress import build_pool, lexical_overlap  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=300)
    ap.add_argument("--seed", type=int, default=99)
    args = ap.parse_args()
    halu, boolq = D.load("halueval"), D.load("boolq")
    passages = D.union([halu, boolq]).passages
    qs = random.Random(args.seed).sample(halu.queries, args.questions)
    base = D.test_settings()
    feats: dict[str, list[tuple[float, float]]] = {"present": [], "removed": []}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        (data / "models").symlink_to(base.models_dir, target_is_directory=True)
        col = AQ.build_index(base.with_overrides(data_dir=data), "h", passages)
        for q in qs:
            gold = next(iter(q.gold))
            hits = search(col, q.text, top_k=13)
            for cond, hs in (("present", hits[:6]), ("removed", [h for h in hits if h.chunk.doc_id != gold][:6])):
                pool = build_pool(col.embedder, col.embedder.embed([q.text])[0], hs)
                cov = max(lexical_overlap(q.text, h.chunk.text) for h in hs)
                feats[cond].append((float(pool.relevance().max()), cov))
        col.close()
    P, R = np.array(feats["present"]), np.array(feats["removed"])
    out: dict = {"machine": D.machine(), "questions": args.questions, "seed": args.seed, "features": {}}
    for j, name in enumerate(["best_cosine", "best_coverage"]):
        cands = np.unique(np.concatenate([P[:, j], R[:, j]]))
        t, acc = max(((float(t), ((P[:, j] >= t).mean() + (R[:, j] < t).mean()) / 2) for t in cands),
                     key=lambda x: x[1])
        out["features"][name] = {
            "present_median": round(float(np.median(P[:, j])), 3),
            "removed_median": round(float(np.median(R[:, j])), 3),
            "best_threshold": round(t, 3), "balanced_accuracy": round(float(acc), 3),
        }
    for t in (0.4, 0.5, 0.6):
        out[f"coverage_{t}"] = {"answerable_kept": round(float((P[:, 1] >= t).mean()), 3),
                                "unanswerable_abstained": round(float((R[:, 1] < t).mean()), 3)}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "abstention_calibration.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
