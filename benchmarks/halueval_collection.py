"""A HaluEval-QA sample as plain files, for `sovrag ingest` and `sovrag bench` (docs/benchmarks.md).

Writes a seeded sample of HaluEval-QA knowledge passages, one text file each, and the HaluEval questions
whose gold passage is in the sample as a `--questions` JSONL file, so the bench runs exactly as a user
would on their own collection:

    .venv/bin/python benchmarks/halueval_collection.py --passages 300 --out /tmp/halueval
    .venv/bin/sovrag ingest /tmp/halueval/passages --collection halueval
    .venv/bin/sovrag bench --collection halueval --questions /tmp/halueval/questions.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import datasets as D  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--passages", type=int, default=300)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    ds = D.load("halueval")
    rng = random.Random(args.seed)
    sample = rng.sample(ds.passages, min(args.passages, len(ds.passages)))
    ids = {p.id for p in sample}
    folder = args.out / "passages"
    folder.mkdir(parents=True, exist_ok=True)
    for p in sample:
        (folder / f"{p.id}.txt").write_text(p.text + "\n", encoding="utf-8")
    questions = [q for q in ds.queries if q.gold & ids]
    rng.shuffle(questions)
    with open(args.out / "questions.jsonl", "w", encoding="utf-8") as f:
        for q in questions:
            f.write(json.dumps({"question": q.text, "gold": sorted(q.gold)}) + "\n")
    print(f"{len(sample)} passages in {folder}, {len(questions)} questions in {args.out / 'questions.jsonl'}")


if __name__ == "__main__":
    main()
