"""One `sovrag eval` run, from a dataset file to a saved report: shared by the CLI, which runs it itself, and
by the server that owns the data directory, which runs it for the CLI (`/local/eval`).

What both print comes from `view()`: the run's id and report path, each metric's mean, median and counts,
abstention and the seconds per sample, so the output is the same whichever process ran the questions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sovrag.answer import AnswerOptions
from sovrag.collection import Collection
from sovrag.config import Settings
from sovrag.errors import SovragError
from sovrag.evaluate.dataset import Dataset, read_dataset
from sovrag.evaluate.judge import Judge
from sovrag.evaluate.report import save_run
from sovrag.evaluate.run import ANSWER, JUDGED, RETRIEVAL, EvalOptions, EvalResult, SampleResult, evaluate
from sovrag.generate import LLM


def parse_metrics(metrics: str | None) -> tuple[str, ...]:
    """`--metrics faithfulness,ndcg` -> the names, all of them when not given; unknown names are an error."""
    known = JUDGED + ANSWER + RETRIEVAL
    chosen = tuple(m.strip() for m in metrics.split(",") if m.strip()) if metrics else known
    unknown = [m for m in chosen if m not in known]
    if unknown or not chosen:
        raise SovragError(f"--metrics: unknown {unknown or metrics!r}; choose from {', '.join(known)}")
    return chosen


def wants_judge(judge: str | None, metrics: Sequence[str]) -> bool:
    return judge != "none" and any(m in JUDGED for m in metrics)


def load(dataset: Path, limit: int | None) -> Dataset:
    return read_dataset(dataset, limit)


def run(settings: Settings, col: Collection, model: LLM, judge_llm: LLM | None, ds: Dataset, dataset: Path, *,
        metrics: Sequence[str], k: int, top_k: int, strictness: int, max_tokens: int, out_dir: Path | None = None,
        progress: Callable[[SampleResult], None] | None = None) -> dict[str, Any]:
    """Answer and score the dataset's questions from `col`, save the run; what the CLI prints (`view`)."""
    if col.store.count() == 0:
        raise SovragError(f"collection {col.name!r}: is empty; ingest documents into it first")
    options = EvalOptions(k=k, metrics=tuple(metrics), strictness=strictness,
                          answer=AnswerOptions.of(settings, top_k=top_k, max_tokens=max_tokens))
    result = evaluate(col, model, Judge(judge_llm) if judge_llm else None, ds.samples, options,
                      dataset=str(dataset), dataset_errors=ds.errors, progress=progress)
    folder = save_run(result, settings.data_dir, out_dir)
    return view(result, folder)


def view(result: EvalResult, folder: Path) -> dict[str, Any]:
    return {"run": folder.name, "report": str(folder / "report.html"), "collection": result.collection,
            "questions": len(result.samples), "summary": {k: v.__dict__ for k, v in result.summary.items()},
            "abstention_rate": result.abstention_rate, "answer_seconds_per_sample": result.answer_seconds_per_sample,
            "judge_seconds_per_sample": result.judge_seconds_per_sample,
            "dataset_errors": [list(e) for e in result.dataset_errors]}
