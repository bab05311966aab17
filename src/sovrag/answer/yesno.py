"""Yes/no questions answered "Yes" or "No" first, decided before the model writes its explanation.

Two readings of the sources are combined: the LLM's own (the log-odds of "yes" against "no" as the first word of
its answer to the same prompt, one token generated: with the prompt cached, the explanation that follows costs
little more), and the groundedness verifier's (how much better the best source supports 'The answer to "...?" is
yes.' than '... is no.'). A logistic combination of the two, fitted on BoolQ's dev split
(benchmarks/yes_no_lead_calibration.py; docs/benchmarks.md), decides the polarity; its citation is the source
whose text supports the chosen answer best. Measured with the default 0.5B model, neither reading carries
much: its first-word odds lean to "yes" whatever the passage, and the verifier's margin is positive for almost
every question; the combination does no better than always answering "yes". So the lead is an option
(AnswerOptions.yes_no_lead), off by default, kept for stronger models and a fine-tuned yes/no head.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sovrag.generate import LLM, GenerationParams, Message
from sovrag.types import AnswerSentence, Citation, Evidence
from sovrag.verifier import Verifier, is_yes_no, quote, yes_no_claim

#: Without a reranker's answerability gate, the deciding source must be this relevant to the question (best
#: question-sentence cosine; chosen on 150 BoolQ dev-split questions with the gold passage present vs removed).
MIN_SOURCE_RELEVANCE = 0.6
PROBE = "\nAnswer yes or no."


@dataclass(frozen=True)
class Polarity:
    """The combination's weights: z = bias + llm * (LLM log-odds of yes) + verifier * (verifier margin)."""

    bias: float = 0.0
    llm: float = 1.0
    verifier: float = 0.0


#: Fitted on 300 BoolQ dev-split questions with the default 0.5B model (benchmarks/yes_no_lead_calibration.py;
#: benchmarks/results/yes_no_lead_calibration.json). Its 5-fold accuracy, 0.583, is the share of "yes" answers:
#: the LLM's odds get no weight and the verifier's margin mostly says yes, which is why the lead is off by
#: default (AnswerOptions.yes_no_lead). A model without an LLM probe uses the verifier alone.
DEFAULT = Polarity(bias=-0.3313, llm=-0.0365, verifier=2.4425)


def probe_messages(messages: Sequence[Message]) -> list[Message]:
    """The answer prompt asking for yes or no only: it shares everything but its last line with the prompt the
    explanation is generated from, so a prompt cache reuses it."""
    *head, last = messages
    return [*head, Message(last.role, last.content + PROBE)]


def llm_log_odds(llm: LLM, messages: Sequence[Message], params: GenerationParams | None = None) -> float | None:
    """log P(yes) - log P(no) for the first word of the LLM's answer, or None when the host returns no
    log-probabilities (or neither word is among its likeliest first tokens)."""
    p = params or GenerationParams()
    gen = llm.chat(probe_messages(messages), GenerationParams(max_tokens=1, temperature=0.0, seed=p.seed,
                                                              extra=p.extra, top_logprobs=20))
    if not gen.logprobs:
        return None
    first = gen.logprobs[0]
    yes = [v for k, v in first.items() if k.strip().lower().strip(".,!") == "yes"]
    no = [v for k, v in first.items() if k.strip().lower().strip(".,!") == "no"]
    if not yes and not no:
        return None
    floor = min(first.values()) - 1.0  # a word outside the top list is less likely than all of them

    def lse(xs: list[float]) -> float:
        m = max(xs)
        return m + math.log(sum(math.exp(x - m) for x in xs))

    return lse(yes or [floor]) - lse(no or [floor])


def verifier_margin(question: str, sources: Sequence[Evidence], verifier: Verifier):
    """(best p(supported) of 'yes' - of 'no', the verdicts per claim and source)."""
    claims = [yes_no_claim(question, True), yes_no_claim(question, False)]
    verdicts = verifier.score_pairs([(s.text, c) for c in claims for s in sources], question)
    n = len(sources)
    yes = max(v.supported for v in verdicts[:n])
    no = max(v.supported for v in verdicts[n:])
    return yes - no, verdicts


def decide(question: str, sources: Sequence[Evidence], verifier: Verifier, llm_odds: float | None = None,
           relevance: dict[int, float] | None = None, weights: Polarity = DEFAULT) -> AnswerSentence | None:
    """The leading "Yes."/"No." sentence cited to the source that best supports it, or None (not a yes/no
    question, no source to decide from). `relevance`, when given (no reranker gate ran), keeps only sources
    at least MIN_SOURCE_RELEVANCE relevant to the question."""
    if relevance is not None:
        sources = [s for s in sources if relevance.get(s.number, 0.0) >= MIN_SOURCE_RELEVANCE]
    if not sources or not is_yes_no(question):
        return None
    margin, verdicts = verifier_margin(question, sources, verifier)
    if llm_odds is None:
        z = margin  # the verifier alone: the better-supported answer
        if max(v.supported for v in verdicts) < verifier.threshold:
            return None
    else:
        z = weights.bias + weights.llm * llm_odds + weights.verifier * margin
    yes = z > 0
    n = len(sources)
    row = verdicts[:n] if yes else verdicts[n:]
    k = max(range(n), key=lambda i: row[i].supported)
    v = row[k]
    return AnswerSentence("Yes." if yes else "No.", (Citation(sources[k].number, round(v.supported, 3),
                                                              quote(v.window, question), False),), True)
