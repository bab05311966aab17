"""Where the best source goes in the prompt: rank order ([1] first, after the opening question) or reversed
([1] last, next to the question that ends the prompt), side by side on the same HaluEval-QA questions.

The index and the measures are answer_quality.py's (every HaluEval-QA and BoolQ dev passage, the default
pipeline with compression, cache_prompt off). Each question is answered with both orders, alternating which runs
first; the prompts hold the same tokens, only their order differs. Choose on one seed (dev), report on another.

    .venv/bin/python benchmarks/source_order.py --questions 40 --seed 99     # dev: choose
    .venv/bin/python benchmarks/source_order.py --questions 40 --seed 13     # report
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import answer_quality as AQ  # noqa: E402
import datasets as D  # noqa: E402

from sovrag.answer import AnswerOptions, AnswerPipeline  # noqa: E402
from sovrag.answer.prompt import ORDERS  # noqa: E402
from sovrag.generate import create_llm  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=40)
    ap.add_argument("--seed", type=int, default=99)
    ap.add_argument("--llm", default=None)
    args = ap.parse_args()
    items = AQ.halueval_items(args.questions, args.seed)
    rows: dict[str, list[dict]] = {o: [] for o in ORDERS}
    with AQ.union_index("halueval") as (settings, col):
        llm = create_llm(settings, args.llm)
        pipes = {o: AnswerPipeline(col, llm, AnswerOptions(max_tokens=64, params=AQ.NO_CACHE, source_order=o))
                 for o in ORDERS}
        for k, it in enumerate(items):
            for o in (ORDERS if k % 2 == 0 else ORDERS[::-1]):
                rows[o].extend(AQ.run(pipes[o], [it], f"{o} {k + 1}/{len(items)}"))
    a, b = rows[ORDERS[0]], rows[ORDERS[1]]
    result = {"machine": D.machine(), "llm": llm.name, "questions": args.questions, "seed": args.seed,
              **{o: AQ.summary(rows[o]) for o in ORDERS},
              "contains_answer_only_best_first": sum(x["contains"] > y["contains"] for x, y in zip(a, b, strict=True)),
              "contains_answer_only_best_last": sum(y["contains"] > x["contains"] for x, y in zip(a, b, strict=True)),
              "same_draft": sum(x["draft"] == y["draft"] for x, y in zip(a, b, strict=True)),
              "rows": rows}
    out = HERE / "results" / f"source_order_{llm.name.split(':')[-1]}_seed{args.seed}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))


if __name__ == "__main__":
    main()
