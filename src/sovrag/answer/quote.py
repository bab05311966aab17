"""The answer of last resort: the sources' own words.

When the reranker says a retrieved passage answers the question but no sentence of the model's answer is
supported by the sources, sovrag quotes the best passage's sentence that is most similar to the question, cited,
instead of abstaining or showing the model's unsupported words. The quote is marked as one ('The documents say:
"..."'), so a reader knows it is the source speaking, not a conclusion drawn from it.
"""

from __future__ import annotations

import numpy as np

from sovrag.types import AnswerSentence, Citation, Context


def quote(ctx: Context, lead: AnswerSentence | None = None) -> AnswerSentence | None:
    """The quoted sentence from the lead's source (a yes/no answer), else from the first (best reranked) source."""
    if not ctx.evidence:
        return None
    number = lead.citations[0].source if lead and lead.citations else ctx.sources[0].number
    ev = next((e for e in ctx.evidence if e.number == number), ctx.evidence[0])
    if not ev.sentences:
        return None
    sentence = ev.sentences[int(np.argmax(ev.vectors @ ctx.question_vector))]
    return AnswerSentence(f'The documents say: "{sentence}"', (Citation(ev.number, 1.0, sentence, False),), True)
