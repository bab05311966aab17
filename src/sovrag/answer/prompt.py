"""The prompt: numbered sources and the question.

Two styles. "simple" asks only for a short answer from the sources, with the question before and after
them: small local models (0.5B-1.5B) answer well this way, and asking them to cite or to abstain in a
set phrase made them answer "[1]" or abstain on questions the sources did answer (measured on
examples/docs with Qwen2.5-Coder-0.5B). Citations are found afterwards by verification either way, and
abstention is decided by sovrag (relevance gate, unsupported answers), not by the model. "cited" adds
the citation and abstention rules, for larger models behind an OpenAI-compatible host.
"""

from __future__ import annotations

from collections.abc import Sequence

from sovrag.answer.followup import Turn
from sovrag.generate import Message
from sovrag.types import Source

ABSTAIN_TEXT = "The documents do not answer this."
STYLES = ("simple", "cited")
#: "best-first": sources in rank order, [1] the best, right after the question; "best-last": the same numbers in
#: reverse, so the best source sits next to the repeated question at the end (best-first measured better with
#: the 0.5B model: docs/benchmarks.md, "Where the best source goes in the prompt").
ORDERS = ("best-first", "best-last")

SYSTEM = "You are a precise assistant that answers questions from the given documents only."

CITED_RULES = (
    "Answer in one to three sentences. After each sentence, cite the documents it comes from by number in "
    "brackets, like [1] or [2][3]. If the question needs several documents, use and cite each of them. "
    f'If the documents do not contain the answer, reply exactly: "{ABSTAIN_TEXT}"'
)


def source_label(src: Source) -> str:
    parts = [src.chunk.title or src.chunk.source.rsplit("/", 1)[-1]]
    if src.chunk.headings:
        parts.append(" > ".join(src.chunk.headings[-2:]))
    if src.chunk.page:
        parts.append(f"page {src.chunk.page}")
    return " — ".join(parts)


def build_messages(question: str, sources: Sequence[Source], style: str = "simple",
                   earlier: Sequence[Turn] = (), polarity: str = "", order: str = "best-first") -> list[Message]:
    """The prompt; `earlier` turns (the last exchange of a conversation) come before the question; `polarity`
    ("Yes"/"No": a yes/no question the verifier has settled) asks for the sentence of the documents behind it;
    `order`: one of ORDERS."""
    if order not in ORDERS:
        raise ValueError(f"source order {order!r}: expected one of {', '.join(ORDERS)}")
    shown = list(sources)[::-1] if order == "best-last" else sources
    docs = "\n\n".join(f"[{s.number}] ({source_label(s)})\n{s.text}" for s in shown)
    if style == "cited":
        user = f"Documents:\n\n{docs}\n\nQuestion: {question}\n{CITED_RULES}"
    else:
        user = (f"Question: {question}\n\nDocuments:\n\n{docs}\n\nQuestion: {question}\n"
                "Write a short answer based on the documents.")
    if polarity:
        user += (f"\nThe answer is {polarity}. In one sentence, say what in the documents shows it, without "
                 f"starting with {polarity}.")
    return [Message("system", SYSTEM), *(Message(t.role, t.text) for t in earlier), Message("user", user)]
