"""A side-by-side table of `trust_layer.py` results files of one run (the same questions, answered in turn by each
LLM), with paired differences against the first file: the mean difference per question and its 95% bootstrap
interval (10,000 resamples of the questions, seeded), so "better" means better on the same questions.

    .venv/bin/python benchmarks/trust_layer_report.py BASE.json OTHER.json... [--config after] [--phase present]

(name the files in order: a shell glob sorts "...q4_k_m+lora-..." before "...q4_k_m_200...").
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from pathlib import Path

METRICS = [  # (label, corpus, row key)
    ("HaluEval contains-answer", "halueval", "contains"),
    ("HaluEval token F1", "halueval", "f1"),
    ("BoolQ yes/no agreement", "boolq", "agree"),
    ("HaluEval abstained", "halueval", "abstained"),
    ("BoolQ abstained", "boolq", "abstained"),
    ("HaluEval seconds / question", "halueval", "seconds"),
    ("BoolQ seconds / question", "boolq", "seconds"),
]
SUMMARY = [  # (label, corpus, summary key)
    ("HaluEval citation precision / recall", "halueval", ("citation_precision", "citation_recall")),
    ("BoolQ citation precision / recall", "boolq", ("citation_precision", "citation_recall")),
    ("HaluEval unsupported sentence share", "halueval", ("unsupported_sentence_share",)),
    ("BoolQ unsupported sentence share", "boolq", ("unsupported_sentence_share",)),
    ("HaluEval / BoolQ answers quoted", None, ("quoted",)),
    ("BoolQ yes/no agreement where answered", "boolq", ("yes_no_agreement_answered",)),
]


def paired(a: list[float], b: list[float], seed: int = 0, rounds: int = 10_000) -> tuple[float, float, float]:
    """Mean of b - a and its 95% percentile bootstrap interval."""
    d = [y - x for x, y in zip(a, b, strict=True)]
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(d, k=len(d))) for _ in range(rounds))
    return statistics.fmean(d), means[int(0.025 * rounds)], means[int(0.975 * rounds) - 1]


def values(rows: list[dict], corpus: str, key: str) -> list[float]:
    return [float(r[key]) for r in rows if r["corpus"] == corpus]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--config", default="after")
    ap.add_argument("--phase", default="present", choices=["present", "removed"])
    args = ap.parse_args()
    runs = [json.loads(f.read_text()) for f in args.files]
    key = f"rows_{args.config}_{args.phase}"
    n = min(len(r[key]) for r in runs)  # a run stopped early: the questions every LLM answered
    rows = [r[key][:n] for r in runs]
    for rs in rows[1:]:
        assert [x["question"] for x in rs] == [x["question"] for x in rows[0]], "not the same questions"
    names = [r["llm"].split(":", 1)[-1] for r in runs]
    counts = {c: sum(x["corpus"] == c for x in rows[0]) for c in ("halueval", "boolq")}
    print(f"{args.config}, gold {args.phase}: {counts['halueval']} HaluEval-QA + {counts['boolq']} BoolQ questions\n")
    head = " | ".join(names[:1] + [f"{n} (Δ vs first, 95% CI)" for n in names[1:]])
    print(f"| | {head} |")
    print("|---|" + "---:|" * len(names))
    for label, corpus, k in METRICS:
        if not counts[corpus]:
            continue
        base = values(rows[0], corpus, k)
        cells = [f"{statistics.fmean(base):.3f}"]
        for rs in rows[1:]:
            other = values(rs, corpus, k)
            d, lo, hi = paired(base, other)
            cells.append(f"{statistics.fmean(other):.3f} ({d:+.3f}, {lo:+.3f} to {hi:+.3f})")
        print(f"| {label} | " + " | ".join(cells) + " |")
    from trust_layer import summary  # the same summary the run writes, over the rows compared here

    from sovrag.answer.pipeline import _refuses

    for corpus in ("halueval", "boolq"):
        # the model's own draft says the documents do not answer, on questions the reranker's gate let through
        # (sovrag then quotes the best source when the gate rated it answerable, else abstains)
        cells = []
        for rs in rows:
            let_through = [r for r in rs if r["corpus"] == corpus and r["draft"]]  # a gate refusal drafts nothing
            cells.append(f"{sum(_refuses(r['draft']) for r in let_through) / max(1, len(let_through)):.3f}")
        print(f"| {'HaluEval' if corpus == 'halueval' else 'BoolQ'} drafts refusing (past the gate) | "
              + " | ".join(cells) + " |")
    sums = [summary(rs) for rs in rows]
    for label, corpus, ks in SUMMARY:
        cells = []
        for s in sums:
            if corpus is None:
                cells.append(" / ".join(f"{s[c][ks[0]]:.3f}" for c in ("halueval", "boolq") if c in s))
            else:
                cells.append(" / ".join("—" if s.get(corpus, {}).get(k) is None else f"{s[corpus][k]:.3f}"
                                        for k in ks))
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
