"""Yes/no questions answered "Yes" or "No" first, decided by the verifier over the retrieved sources.

For a question such as "does the warranty cover water damage", the verifier scores the statements
'The answer to "Does the warranty cover water damage?" is yes.' and '... is no.' against every source (it was
trained on exactly this form, from BoolQ's training split). The answer starts with the polarity whose
statement a source supports best, cited to that source, when the verifier supports it; otherwise the model's
own answer is verified as usual.
"""

from __future__ import annotations

from collections.abc import Sequence

from sovrag.types import AnswerSentence, Citation, Evidence
from sovrag.verifier import Verifier, is_yes_no, quote, yes_no_claim

#: The deciding source must be this relevant to the question (best question-sentence cosine). Chosen on 150
#: BoolQ dev-split questions with the gold passage present vs removed: below it, leads were given from
#: unrelated passages (98% of questions with the gold removed got a lead without the gate, 16% with it).
MIN_SOURCE_RELEVANCE = 0.6


def decide(question: str, sources: Sequence[Evidence], verifier: Verifier,
           relevance: dict[int, float] | None = None) -> AnswerSentence | None:
    """The leading "Yes."/"No." sentence with its citation, or None (not a yes/no question, or no source
    relevant enough to the question settles it). `relevance`: per source number, its relevance."""
    if relevance is not None:
        sources = [s for s in sources if relevance.get(s.number, 0.0) >= MIN_SOURCE_RELEVANCE]
    if not sources or not is_yes_no(question):
        return None
    claims = [yes_no_claim(question, True), yes_no_claim(question, False)]
    verdicts = verifier.score_pairs([(s.text, c) for c in claims for s in sources], question)
    n = len(sources)
    best = max(range(2 * n), key=lambda i: verdicts[i].supported)
    v = verdicts[best]
    if not verifier.supports(v):
        return None
    yes = best < n
    src = sources[best % n]
    other = max(verdicts[(n if yes else 0):(2 * n if yes else n)], key=lambda x: x.supported)
    if other.supported >= v.supported:
        return None
    return AnswerSentence("Yes." if yes else "No.", (Citation(src.number, round(v.supported, 3),
                                                              quote(v.window, question), False),), True)
