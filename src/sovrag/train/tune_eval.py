"""Base vs tuned on `sovrag tune`'s held-out questions, through sovrag's own answer pipeline.

Each held-out question is answered twice per model: from the context retrieval gave it (its chunk present) and
from the same context with its chunk withheld (when no other source holds the answer). The pipeline runs whole
(prompt, generation, sentence verification, abstention) except the two parts that would hide the model's own
behaviour: the reranker's answerability gate (it does not depend on the model) and the quote fallback (it answers
with a source's sentence when the model's are unsupported).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from statistics import mean

from sovrag.answer.options import AnswerOptions
from sovrag.answer.pipeline import AnswerPipeline
from sovrag.collection import Collection
from sovrag.evaluate.answers import contains_answer, token_f1
from sovrag.generate import LLM
from sovrag.train.tune_data import Item
from sovrag.types import Answer, Context

METRICS = ("f1", "contains_answer", "abstain_answerable", "abstain_unanswerable", "groundedness",
           "seconds_per_answer")


def _grounded(a: Answer) -> float | None:
    claims = [s for s in a.sentences if s.citations or not s.supported]
    return None if a.abstained or not claims else sum(1 for s in claims if s.supported) / len(claims)


def evaluate(col: Collection, llms: dict[str, LLM], heldout: Sequence[tuple[Item, Context, Context | None]],
             options: AnswerOptions, progress: Callable[[int, int], None] | None = None) -> tuple[dict, list[dict]]:
    """{model label: {metric: value}} and one row per (model, question)."""
    opts = replace(options, quote_fallback=False, min_answerable=None)
    total = len(llms) * len(heldout)
    rows: list[dict] = []
    done = 0
    for label, llm in llms.items():
        pipe = AnswerPipeline(col, llm, opts)
        for item, ctx, withheld in heldout:
            if progress:
                progress(done, total)
            t0 = time.perf_counter()
            a = pipe.answer(item.question, context=replace(ctx, answerable=None))
            seconds = time.perf_counter() - t0
            text = "" if a.abstained else a.text
            row = {"model": label, "question": item.question, "reference": item.answer, "answer": a.text,
                   "draft": a.draft, "abstained": a.abstained, "f1": token_f1(text, item.answer),
                   "contains_answer": contains_answer(text, item.answer), "groundedness": _grounded(a),
                   "seconds": round(seconds, 3), "unanswerable_answer": None, "abstained_unanswerable": None}
            if withheld is not None:
                b = pipe.answer(item.question, context=withheld)
                row.update(unanswerable_answer=b.text, abstained_unanswerable=b.abstained)
            rows.append(row)
            done += 1
    if progress:
        progress(total, total)
    summary = {}
    for label in llms:
        mine = [r for r in rows if r["model"] == label]
        grounded = [r["groundedness"] for r in mine if r["groundedness"] is not None]
        unans = [r["abstained_unanswerable"] for r in mine if r["abstained_unanswerable"] is not None]
        summary[label] = {
            "f1": round(mean(r["f1"] for r in mine), 4),
            "contains_answer": round(mean(r["contains_answer"] for r in mine), 4),
            "abstain_answerable": round(mean(float(r["abstained"]) for r in mine), 4),
            "abstain_unanswerable": round(mean(map(float, unans)), 4) if unans else None,
            "groundedness": round(mean(grounded), 4) if grounded else None,
            "seconds_per_answer": round(mean(r["seconds"] for r in mine), 3),
            "questions": len(mine), "unanswerable_cases": len(unans),
        }
    return summary, rows
