"""Evaluation datasets: JSONL, one question per line.

    {"question": "...", "reference": "...", "reference_contexts": ["..."], "relevant": ["handbook.md"]}

Only `question` is required. `reference` (also accepted as `answer`, `ground_truth`, `reference_answer`)
enables context precision, context recall, exact match and token F1. `relevant` (also `relevant_doc_ids`,
`relevant_sources`) lists the documents that answer the question — file names, paths or document ids —
and `reference_contexts` the passages that do; either enables the retrieval metrics. Anything else on
the line (an `id`, tags) is kept and shown in the report.

A malformed line is reported with its line number and the problem, and the other lines are evaluated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sovrag.errors import SovragError

REFERENCE_KEYS = ("reference", "answer", "ground_truth", "reference_answer")
RELEVANT_KEYS = ("relevant", "relevant_doc_ids", "relevant_sources")
CONTEXT_KEYS = ("reference_contexts", "contexts")


class DatasetError(SovragError):
    """The dataset file cannot be read at all (missing, not UTF-8, no valid line)."""


@dataclass(frozen=True)
class Sample:
    line: int
    id: str
    question: str
    reference: str | None = None
    reference_contexts: tuple[str, ...] = ()
    relevant: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Dataset:
    path: Path
    samples: list[Sample]
    #: (line number, problem) for every line that was skipped.
    errors: list[tuple[int, str]]


def _first(row: dict[str, Any], keys: tuple[str, ...]) -> tuple[str, Any]:
    for k in keys:
        if k in row and row[k] is not None:
            return k, row[k]
    return "", None


def _strings(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"'{key}' must be a string or a list of strings, got {type(value).__name__}")
    return tuple(v.strip() for v in value if v.strip())


def parse_line(line_no: int, text: str) -> Sample:
    try:
        row = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"not valid JSON ({e.msg} at column {e.colno})") from e
    if not isinstance(row, dict):
        raise ValueError(f"expected a JSON object, got {type(row).__name__}")
    question = row.get("question", row.get("user_input"))
    if not isinstance(question, str) or not question.strip():
        raise ValueError("'question' is missing or empty")
    ref_key, reference = _first(row, REFERENCE_KEYS)
    if reference is not None and not isinstance(reference, str):
        raise ValueError(f"'{ref_key}' must be a string, got {type(reference).__name__}")
    ctx_key, contexts = _first(row, CONTEXT_KEYS)
    rel_key, relevant = _first(row, RELEVANT_KEYS)
    used = {"question", "user_input", "id", ref_key, ctx_key, rel_key}
    return Sample(
        line=line_no,
        id=str(row.get("id", line_no)),
        question=question.strip(),
        reference=reference.strip() or None if isinstance(reference, str) else None,
        reference_contexts=_strings(ctx_key, contexts) if contexts is not None else (),
        relevant=_strings(rel_key, relevant) if relevant is not None else (),
        extra={k: v for k, v in row.items() if k not in used},
    )


def read_dataset(path: Path, limit: int | None = None) -> Dataset:
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError as e:
        raise DatasetError(f"dataset {path}: not found") from e
    except OSError as e:
        raise DatasetError(f"dataset {path}: cannot be read ({e.strerror})") from e
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetError(f"dataset {path}: not UTF-8 text (byte {e.start}); expected JSON Lines") from e
    samples: list[Sample] = []
    errors: list[tuple[int, str]] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            samples.append(parse_line(n, line))
        except ValueError as e:
            errors.append((n, str(e)))
        if limit is not None and len(samples) >= limit:
            break
    if not samples:
        detail = f"; first problem: line {errors[0][0]}: {errors[0][1]}" if errors else ""
        raise DatasetError(f"dataset {path}: no valid question line{detail}")
    return Dataset(Path(path), samples, errors)
