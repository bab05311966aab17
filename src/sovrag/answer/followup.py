"""Multi-turn questions: which words to retrieve on, and which earlier turns the model sees.

A follow-up such as "Can they carry them over?" names nothing the documents can be found by; the
question it follows does. sovrag does not ask the LLM to rewrite the question (a 0.5B model rewrites
unreliably and it costs a second generation per turn); it retrieves on the earlier user question
joined to the new one when the new one reads as a follow-up: it refers back (a pronoun or "what
about", "and ...") or has too few content words of its own to retrieve on. A question that stands on
its own is retrieved on alone, so changing the subject does not drag the old topic along.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sovrag.text import content_terms, strip_citations

_BACK_REFERENCE = re.compile(
    r"\b(it|its|it's|they|them|their|theirs|this|that|these|those|he|him|his|she|her|there|then|such|"
    r"same|former|latter|above|one|ones)\b|^\s*(and|but|also|what about|how about|and what|so)\b",
    re.IGNORECASE,
)
MIN_OWN_TERMS = 3
MAX_HISTORY_CHARS = 600  # the earlier answer shown to the model, cut at a sentence end


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant"
    text: str


def is_follow_up(question: str) -> bool:
    return bool(_BACK_REFERENCE.search(question)) or len(content_terms(question)) < MIN_OWN_TERMS


def last_user_turn(history: Sequence[Turn]) -> str:
    return next((t.text.strip() for t in reversed(history) if t.role == "user" and t.text.strip()), "")


def retrieval_query(question: str, history: Sequence[Turn]) -> str:
    """The text to search with: the question, preceded by the previous user question for a follow-up."""
    previous = last_user_turn(history)
    if previous and is_follow_up(question):
        return f"{previous} {question}"
    return question


def context_turns(history: Sequence[Turn]) -> list[Turn]:
    """The last exchange (user question, sovrag's answer without citation marks), shortened, for the prompt."""
    out: list[Turn] = []
    for t in reversed(history):
        if t.role not in ("user", "assistant") or not t.text.strip():
            continue
        if out and t.role == out[0].role:
            break
        text = strip_citations(t.text).strip()
        if len(text) > MAX_HISTORY_CHARS:
            cut = text.rfind(". ", 0, MAX_HISTORY_CHARS)
            text = text[: cut + 1 if cut > 0 else MAX_HISTORY_CHARS]
        out.insert(0, Turn(t.role, text))
        if len(out) == 2:
            break
    while out and out[0].role != "user":
        out.pop(0)
    return out
