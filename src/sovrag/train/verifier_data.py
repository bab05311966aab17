"""(premise, claim, label) examples for the groundedness verifier, per source and split.

Labels: 0 supported, 1 contradicted, 2 not enough information, -1 unsupported (contradicted or not enough
information: HaluEval says an answer is hallucinated, not which way). Each source's documents are split by
`sources.split_of`, so no test document ever gave a training example; the synthetic claims of the test split
are made from test documents only.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sovrag.text import split_sentences
from sovrag.train import perturb
from sovrag.train.sources import rows
from sovrag.verifier import qa_claim, windows, yes_no_claim

SOURCES = ("halueval-qa", "halueval-qa-statements", "halueval-qa-distractors", "halueval-dialogue",
           "halueval-summarization", "boolq", "synthetic")


@dataclass(frozen=True)
class Example:
    premise: str
    claim: str
    label: int
    source: str
    kind: str = ""


def _focus(doc: str, claim: str, room: int, count: Callable[[str], int], on: bool = True) -> str:
    """The window the verifier would read first: the document's sentences most related to the claim."""
    if not on:
        return doc
    w = windows(split_sentences(doc), claim, room, count)
    return w[0] if w else doc


def build(split: str, cache: Path, count: Callable[[str], int], seed: int, limits: dict[str, int],
          room: int = 180, focus: bool = True, distractors: bool = False) -> list[Example]:
    """Examples of one split. `limits[source]` caps the documents taken from each source (0 = all). `focus`:
    a long premise becomes the window the verifier reads first (for training); otherwise it stays whole and
    the verifier windows it (for evaluation, as at run time). `distractors`: HaluEval-QA questions also answered
    with another name or number from their own passage (perturb.distractor), as contradicted (off by default:
    the shipped verifier was trained without them, and two continuations of it with them measured worse on dev,
    docs/benchmarks.md)."""
    rng = random.Random(f"{seed}-{split}")
    drng = random.Random(f"{seed}-{split}-distractors")  # its own stream: the other examples stay as before
    out: list[Example] = []
    passages: list[list[str]] = []  # sentences of this split's documents: material for synthetic claims

    def take(source: str) -> list:
        got = [r for r in rows(source, cache) if r.split == split]
        rng.shuffle(got)
        return got[: limits.get(source) or None]

    for r in take("halueval-qa"):
        f = r.fields
        out.append(Example(r.doc, qa_claim(f["question"], f["right_answer"]), perturb.SUPPORTED, "halueval-qa"))
        out.append(Example(r.doc, qa_claim(f["question"], f["hallucinated_answer"]), perturb.UNSUPPORTED,
                           "halueval-qa"))
        passages.append(split_sentences(r.doc))
        # the same answers as whole statements, as an LLM writes them (perturb.qa_statement says why)
        made = perturb.qa_statement(f["question"], f["right_answer"], f["hallucinated_answer"])
        if made:
            statement, entity = made
            src = "halueval-qa-statements"
            out.append(Example(r.doc, statement, perturb.SUPPORTED, src, "statement"))
            out.append(Example(r.doc, f["hallucinated_answer"].strip(), perturb.UNSUPPORTED, src, "statement"))
            if split == "train":  # short forms both ways too, so length alone never tells
                out.append(Example(r.doc, qa_claim(f["question"], entity), perturb.UNSUPPORTED, src, "short"))
                out.append(Example(r.doc, qa_claim(f["question"], statement), perturb.SUPPORTED, src, "question"))
        other = perturb.distractor(r.doc, f["question"], f["right_answer"], drng) if distractors else None
        if other:
            src = "halueval-qa-distractors"
            # contradicted, not merely unsupported: the passage names what answers, and it is not this one (at
            # run time a sentence no source contradicts may still pass the lexical fallback, which word overlap
            # would let these through)
            out.append(Example(r.doc, qa_claim(f["question"], other), perturb.CONTRADICTED, src, "short"))
            if made:  # the true statement with the other name in the answer's place
                out.append(Example(r.doc, made[0].replace(f["right_answer"].strip(), other, 1), perturb.CONTRADICTED,
                                   src, "statement"))
    for r in take("halueval-dialogue"):
        f = r.fields
        premise = f"{r.doc}\n{f['dialogue_history'].strip()}"
        out.append(Example(premise, f["right_response"].strip(), perturb.SUPPORTED, "halueval-dialogue"))
        out.append(Example(premise, f["hallucinated_response"].strip(), perturb.UNSUPPORTED, "halueval-dialogue"))
    for r in take("halueval-summarization"):
        f = r.fields
        for summary, label in ((f["right_summary"], perturb.SUPPORTED), (f["hallucinated_summary"],
                                                                           perturb.UNSUPPORTED)):
            summary = " ".join(summary.split())
            out.append(Example(_focus(r.doc, summary, room - min(count(summary), 120), count, focus), summary, label,
                               "halueval-summarization"))
        sents = split_sentences(r.doc)
        passages.append(sents[: max(3, min(len(sents), 8))])
    for r in take("boolq"):
        f = r.fields
        yes = str(f["answer"]).lower() == "true"
        out.append(Example(r.doc, yes_no_claim(f["question"], yes), perturb.SUPPORTED, "boolq"))
        out.append(Example(r.doc, yes_no_claim(f["question"], not yes), perturb.CONTRADICTED, "boolq"))
        passages.append(split_sentences(r.doc))
    # synthetic claims from the same split's documents
    pool_sents = [s for p in passages for s in p if 30 <= len(s) <= 300]
    name_pool = sorted({n for s in rng.sample(pool_sents, min(3000, len(pool_sents))) for n in perturb.names(s)})
    synth_docs = list(passages)
    rng.shuffle(synth_docs)
    for sents in synth_docs[: limits.get("synthetic") or None]:
        others = rng.sample(pool_sents, min(200, len(pool_sents)))
        others = [s for s in others if s not in sents]
        for c in perturb.make_claims(sents, others, name_pool, rng, n=2):
            out.append(Example(_focus(c.premise, c.claim, room - min(count(c.claim), 120), count, focus), c.claim,
                               c.label, "synthetic", c.kind))
    rng.shuffle(out)
    return out
