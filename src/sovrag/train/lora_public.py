"""The training set of the shipped `sovrag-rag` adapter, from public data only (sovrag.train.sources):

- HaluEval-QA (knowledge passage, question, right answer) -> the answer in sovrag's format: the direct answer,
  then the passage's sentence that holds it, quoted;
- BoolQ dev (passage, yes/no question, label) -> "Yes." / "No.", then the passage's sentence that shares most
  with the question, quoted;
- unanswerable: a question shown other items' passages only -> the abstention text.

Only documents in the train split are used (split_of: the verifier's and reranker's held-out documents stay
unseen), so `benchmarks/trust_layer.py` on the test split measures the adapter honestly. Each prompt is the one
sovrag's answer pipeline builds ("simple" style): the gold passage beside another of the same split, in a
seeded random position, numbered like retrieved sources.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from sovrag.answer.prompt import ABSTAIN_TEXT, build_messages
from sovrag.text import content_terms, split_sentences
from sovrag.train.lora import Example
from sovrag.train.sources import rows
from sovrag.train.tune_data import _evidence
from sovrag.types import Chunk, Source

DISTRACTORS = 1


def _sources(passages: Sequence[tuple[str, str]]) -> list[Source]:
    return [Source(i, Chunk(id=f"p{i}", doc_id=f"p{i}", text=text, source=f"{title}.txt", title=title, index=0),
                   text, 1.0) for i, (title, text) in enumerate(passages, 1)]


def _best_sentence(passage: str, question: str) -> str:
    terms = set(content_terms(question))
    sentences = split_sentences(passage)
    return max(sentences, key=lambda s: len(terms & set(content_terms(s)))) if sentences else passage


def _quote(sentence: str) -> str:
    return f'The documents say: "{sentence.strip()}"'


def examples(cache: Path, per_source: int, seed: int = 13, unanswerable_share: float = 0.25) -> list[Example]:
    """`per_source` answerable examples from each of HaluEval-QA and BoolQ (train split), plus unanswerable ones
    (`unanswerable_share` of the total), shuffled by `seed`."""
    rng = random.Random(seed)
    items: list[tuple[str, str, str, str]] = []  # (kind, question, passage, target)
    halu = [r for r in rows("halueval-qa", cache) if r.split == "train"]
    rng.shuffle(halu)
    for r in halu[:per_source]:
        answer = r.fields["right_answer"].strip().rstrip(".")
        sentence = _evidence(r.doc, answer)
        short = answer[:1].upper() + answer[1:]
        target = f"{short}. {_quote(sentence)}" if sentence and sentence.strip() != answer else f"{short}."
        items.append(("halueval", r.fields["question"].strip(), r.doc, target))
    boolq = [r for r in rows("boolq", cache) if r.split == "train"]
    rng.shuffle(boolq)
    for r in boolq[:per_source]:
        q = r.fields["question"].strip()
        q = q[:1].upper() + q[1:] + ("" if q.endswith("?") else "?")
        yes = str(r.fields["answer"]).lower() == "true"
        items.append(("boolq", q, r.doc, f"{'Yes' if yes else 'No'}. {_quote(_best_sentence(r.doc, q))}"))
    pool = [(kind, doc) for kind, _, doc, _ in items]
    out: list[Example] = []
    for kind, question, doc, target in items:
        others = [d for k, d in rng.sample(pool, DISTRACTORS + 1) if d != doc][:DISTRACTORS]
        passages = [doc, *others]
        rng.shuffle(passages)
        out.append(Example(tuple(build_messages(question, _sources([(f"doc{i}", p) for i, p in
                                                                    enumerate(passages)]))), target, kind))
    n_unans = round(len(out) * unanswerable_share / (1 - unanswerable_share))
    for _kind, question, doc, _ in rng.sample(items, min(n_unans, len(items))):
        others = [d for _, d in rng.sample(pool, DISTRACTORS + 2) if d != doc][:DISTRACTORS + 1]
        out.append(Example(tuple(build_messages(question, _sources([(f"doc{i}", p) for i, p in
                                                                    enumerate(others)]))), ABSTAIN_TEXT,
                           "unanswerable"))
    rng.shuffle(out)
    return out
