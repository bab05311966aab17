"""Does the verifier accept a short answer that names the wrong thing from the right passage?

HaluEval-QA's hallucinated answers mostly bring names the passage does not contain, so a verifier trained on them
can learn "the answer's words are in the passage" instead of "the passage says this answers the question". Here
each test-split question (sovrag.train.sources.split_of: never trained on) is checked twice against its own
passage, as sovrag checks a short answer (verifier.qa_claim: the question and the answer): with its right answer,
and with another capitalised name taken from the same passage (not part of the answer or the question).

    .venv/bin/python benchmarks/verifier_distractors.py [--questions 400]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from sovrag.train.sources import rows  # noqa: E402
from sovrag.verifier import load, qa_claim  # noqa: E402

NAME = re.compile(r"[A-Z][a-z]+(?: [A-Z][a-z]+)*")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "sovrag-train")
    args = ap.parse_args()
    v = load()
    rng = random.Random(args.seed)
    test = [r for r in rows("halueval-qa", args.cache) if r.split == "test"]
    rng.shuffle(test)
    right = wrong = n = 0
    examples = []
    for r in test:
        if n >= args.questions:
            break
        q, a = r.fields["question"], r.fields["right_answer"]
        names = [e for e in NAME.findall(r.doc) if len(e) > 3 and e.lower() not in a.lower()
                 and a.lower() not in e.lower() and e.lower() not in q.lower()]
        if not names:
            continue
        other = rng.choice(names)
        ok, bad = v.score_pairs([(r.doc, qa_claim(q, a)), (r.doc, qa_claim(q, other))], question=q)
        right += v.supports(ok)
        wrong += v.supports(bad)
        n += 1
        if len(examples) < 10:
            examples.append({"question": q, "right": a, "other": other, "p_right": round(ok.supported, 3),
                             "p_other": round(bad.supported, 3)})
    result = {"questions": n, "threshold": v.threshold, "right_answer_supported": round(right / n, 3),
              "other_name_from_the_passage_supported": round(wrong / n, 3), "examples": examples}
    out = HERE / "results" / "verifier_distractors.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "examples"}, indent=1))


if __name__ == "__main__":
    main()
