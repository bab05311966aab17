"""Does the verifier accept a short answer that names the wrong thing from the right passage?

HaluEval-QA's hallucinated answers mostly bring names the passage does not contain, so a verifier trained on them
can learn "the answer's words are in the passage" instead of "the passage says this answers the question". Here
each test-split question (sovrag.train.sources.split_of: never trained on) is checked twice against its own
passage, as sovrag checks a short answer (verifier.qa_claim: the question and the answer): with its right answer,
and with another capitalised name taken from the same passage (not part of the answer or the question).
Where HaluEval's hallucinated sentence gives a whole-sentence form (perturb.qa_statement), the right statement
and the same statement with the other name are also checked as `ask` checks an answer sentence
(answer.verify.check_sentence: the verifier, then the lexical fallback where no source contradicts).

    .venv/bin/python benchmarks/verifier_distractors.py [--questions 400] [--verifier FOLDER]
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

from sovrag.answer.verify import check_sentence  # noqa: E402
from sovrag.config import Settings  # noqa: E402
from sovrag.embed import create_embedder  # noqa: E402
from sovrag.text import split_sentences  # noqa: E402
from sovrag.train.perturb import qa_statement  # noqa: E402
from sovrag.train.sources import rows  # noqa: E402
from sovrag.types import Evidence  # noqa: E402
from sovrag.verifier import load, qa_claim  # noqa: E402

NAME = re.compile(r"[A-Z][a-z]+(?: [A-Z][a-z]+)*")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "sovrag-train")
    ap.add_argument("--verifier", default="model", help="the shipped verifier, or a trained verifier's folder")
    args = ap.parse_args()
    v = load(args.verifier)
    embedder = create_embedder(Settings())
    st = {"n": 0, "right_verifier": 0, "other_verifier": 0, "right_ask": 0, "other_ask": 0}
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
        made = qa_statement(q, a, r.fields["hallucinated_answer"])
        if made:
            true = made[0]
            false = true.replace(a.strip(), other, 1)
            sents = split_sentences(r.doc)
            ev = [Evidence(1, sents, embedder.embed(sents), r.doc)]
            st["n"] += 1
            for key, claim in (("right", true), ("other", false)):
                st[f"{key}_verifier"] += v.supports(v.score_pairs([(r.doc, claim)], question=q)[0])
                st[f"{key}_ask"] += check_sentence(claim, ev, embedder, v, q).supported
        if len(examples) < 10:
            examples.append({"question": q, "right": a, "other": other, "p_right": round(ok.supported, 3),
                             "p_other": round(bad.supported, 3)})
    m = max(1, st["n"])
    result = {"verifier": args.verifier, "questions": n, "threshold": v.threshold,
              "right_answer_supported": round(right / n, 3),
              "other_name_from_the_passage_supported": round(wrong / n, 3),
              "statements": {"n": st["n"], **{k: round(x / m, 3) for k, x in st.items() if k != "n"}},
              "examples": examples}
    tag = "" if args.verifier == "model" else "_" + Path(args.verifier).name
    out = HERE / "results" / f"verifier_distractors{tag}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "examples"}, indent=1))


if __name__ == "__main__":
    main()
