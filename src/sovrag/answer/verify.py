"""Citation verification: which sources back each sentence of the answer, and how well.

The model's bracket numbers are treated as hints, never as truth (small models cite badly). By default the
groundedness verifier (sovrag.verifier, a trained cross-encoder) decides: a sentence is supported when the
verifier says a source supports it; the citations kept are the cited sources it confirms, else the best
source it finds; sources it finds stating the opposite are recorded. A leading "Yes"/"No" is checked as the
answer to the question, a short answer ("Delhi") with the question.

`lexical` (no model, fast) is the earlier rule: for every answer sentence and every source, support is the
best over the source's sentences of

    0.6 * coverage + 0.4 * cosine

where coverage is the share of the claim's content terms found in the source (numbers must match
exactly: a claim whose number the source lacks gets no support from it) and cosine is the embedding
similarity of the claim and the source sentence. A compound sentence that joins facts from several
sources ("the hotel limit is 180 EUR, and passwords need 14 characters") is split into clauses, and is
supported when each clause is. A citation is kept when its support reaches the
threshold; a supporting source the model did not cite is added; a sentence no source backs is marked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from sovrag.embed import Embedder
from sovrag.text import citations, content_terms, numbers, split_sentences, strip_citations
from sovrag.types import AnswerSentence, Citation, Evidence
from sovrag.verifier import Verdict, Verifier, claims_of, outside_training, quote

COVERAGE_WEIGHT = 0.6
SUPPORT_THRESHOLD = 0.55


def support(claim: str, claim_vec: np.ndarray, src: Evidence) -> tuple[float, str]:
    terms = set(content_terms(claim))
    claim_numbers = numbers(claim)
    if claim_numbers and not claim_numbers <= numbers(src.text):
        return 0.0, ""
    src_terms = set(content_terms(src.text))
    coverage = len(terms & src_terms) / len(terms) if terms else 0.0
    if not src.sentences:
        return COVERAGE_WEIGHT * coverage, ""
    cos = src.vectors @ claim_vec
    best = int(np.argmax(cos))
    # Coverage per sentence favours the sentence that carries the claim; document-wide coverage gives
    # multi-sentence support its due. Take the better of the two.
    sent_cov = [len(terms & set(content_terms(s))) / len(terms) if terms else 0.0 for s in src.sentences]
    local = [COVERAGE_WEIGHT * c + (1 - COVERAGE_WEIGHT) * max(float(x), 0.0) for c, x in zip(sent_cov, cos,
                                                                                                strict=True)]
    k = int(np.argmax(local))
    whole = COVERAGE_WEIGHT * coverage + (1 - COVERAGE_WEIGHT) * max(float(cos[best]), 0.0)
    if local[k] >= whole:
        return local[k], src.sentences[k]
    return whole, src.sentences[best]


_CLAUSE = re.compile(r",?\s+(?:and|but|while|whereas)\s+|;\s+|,\s+(?=(?:a|an|the|its|their)\s)", re.IGNORECASE)


def clauses(claim: str) -> list[str]:
    """The parts of a compound sentence that each state something ('X is 180 EUR, and Y is 14')."""
    return [c.strip() for c in _CLAUSE.split(claim) if len(content_terms(c)) >= 2]


def is_claim(sentence: str) -> bool:
    """Sentences with something to verify (not 'Here is what I found:')."""
    return len(content_terms(strip_citations(sentence))) >= 1


def verify(answer: str, sources: Sequence[Evidence], embedder: Embedder, threshold: float = SUPPORT_THRESHOLD,
           verifier: Verifier | None = None, question: str = "") -> list[AnswerSentence]:
    """Each sentence of `answer` with the sources that back it; by the verifier when given, else lexically."""
    if verifier is not None:
        return [verify_sentence(s, sources, verifier, question) for s in split_sentences(answer)]
    raw = split_sentences(answer)
    if not raw:
        return []
    clean = [strip_citations(s) for s in raw]
    vecs = embedder.embed(clean)
    by_number = {s.number: s for s in sources}
    out: list[AnswerSentence] = []
    for sentence, claim, vec in zip(raw, clean, vecs, strict=True):
        if not is_claim(sentence):
            out.append(AnswerSentence(claim, (), supported=True))
            continue
        cited = citations(sentence)
        scored = {n: support(claim, vec, s) for n, s in by_number.items()}
        kept = [Citation(n, round(scored[n][0], 3), scored[n][1], True)
                for n in cited if n in scored and scored[n][0] >= threshold]
        rejected = tuple(n for n in cited if n not in scored or scored[n][0] < threshold)
        if not kept:
            best = max(scored, key=lambda n: scored[n][0], default=None)
            if best is not None and scored[best][0] >= threshold:
                kept = [Citation(best, round(scored[best][0], 3), scored[best][1], False)]
        if not kept:
            kept = _support_by_clauses(claim, by_number, embedder, threshold, set(cited))
        out.append(AnswerSentence(claim, tuple(kept), supported=bool(kept), rejected=rejected))
    return out


def _support_by_clauses(claim: str, sources: dict[int, Evidence], embedder: Embedder,
                        threshold: float, cited: set[int]) -> list[Citation]:
    """A sentence joining facts of several sources is supported when each of its clauses is."""
    parts = clauses(claim)
    if len(parts) < 2:
        return []
    found: dict[int, Citation] = {}
    for part, vec in zip(parts, embedder.embed(parts), strict=True):
        scored = {n: support(part, vec, s) for n, s in sources.items()}
        best = max(scored, key=lambda n: scored[n][0])
        if scored[best][0] < threshold:
            return []
        if best not in found or found[best].support < scored[best][0]:
            found[best] = Citation(best, round(scored[best][0], 3), scored[best][1], best in cited)
    return sorted(found.values(), key=lambda c: c.source)


def verify_sentence(sentence: str, sources: Sequence[Evidence], verifier: Verifier,
                    question: str = "") -> AnswerSentence:
    """One answer sentence, checked by the verifier against every source. A sentence may need several claims to
    hold ('Yes, ...': the yes and the rest); a compound one that no single source backs ('the hotel limit is 180
    EUR, and passwords need 14 characters') is supported when each of its clauses is, by any source."""
    claim = strip_citations(sentence)
    if not is_claim(sentence) or not sources:
        return AnswerSentence(claim, (), supported=not sources or not is_claim(sentence))
    why = outside_training(claim)
    if why:
        return AnswerSentence(claim, (), supported=False, unchecked=why)
    cited = citations(sentence)
    by_number = {s.number: s for s in sources}
    supported, found, against = _check_parts(claims_of(claim, question), by_number, verifier, cited, question)
    if not supported and len(parts := clauses(claim)) >= 2:
        supported, found, more = _check_parts(parts, by_number, verifier, cited, question)
        against = against if not supported else more
    kept = tuple(sorted(found.values(), key=lambda c: c.source)) if supported else ()
    rejected = tuple(n for n in cited if n not in found or not supported)
    return AnswerSentence(claim, kept, supported=supported, rejected=rejected, contradicted_by=against)


def _check_parts(parts: list[str], by_number: dict[int, Evidence], verifier: Verifier, cited: list[int],
                 question: str) -> tuple[bool, dict[int, Citation], tuple[int, ...]]:
    """Whether every part is supported by a source (a cited one first), the citations, the contradicting sources."""
    numbers_ = list(by_number)
    verdicts = verifier.score_pairs([(by_number[n].text, part) for part in parts for n in numbers_], question)
    table: list[dict[int, Verdict]] = [dict(zip(numbers_, verdicts[i * len(numbers_):(i + 1) * len(numbers_)],
                                                strict=True)) for i in range(len(parts))]
    found: dict[int, Citation] = {}
    supported = True
    for part, row in zip(parts, table, strict=True):
        ok = [n for n in cited if n in row and verifier.supports(row[n])]
        if not ok:
            best = max(row, key=lambda n: row[n].supported)
            ok = [best] if verifier.supports(row[best]) else []
        if not ok:
            supported = False
            continue
        for n in ok:
            v = row[n]
            if n not in found or found[n].support < v.supported:
                found[n] = Citation(n, round(v.supported, 3), quote(v.window, part), n in cited)
    against = tuple(sorted({n for row in table for n, v in row.items()
                            if not v.outside and v.contradicted >= 0.5 and v.contradicted > v.supported}))
    return supported, found, against


def check_sentence(sentence: str, evidence: Sequence[Evidence], embedder: Embedder, verifier: Verifier | None,
                   question: str = "", lexical_fallback: bool = True) -> AnswerSentence:
    """One sentence of an answer, decided as `ask` decides it: by the verifier; where the verifier does not
    support it and no source contradicts it, by the lexical rule when `lexical_fallback` (answers restate
    multi-hop premises in words the verifier was not trained to accept); lexically alone when there is no
    verifier or the sentence is outside what it was trained on (not English), said so."""
    checked = verify_sentence(sentence, evidence, verifier, question) if verifier is not None else None
    if checked is not None and not checked.unchecked:
        if checked.supported or checked.contradicted_by or not lexical_fallback:
            return checked
        out = verify(sentence, evidence, embedder)
        if out and out[0].supported and out[0].citations:
            return replace(out[0], rejected=checked.rejected)
        return checked
    out = verify(sentence, evidence, embedder)
    lexical = out[0] if out else AnswerSentence(sentence, (), True)
    if checked is not None:
        lexical = replace(lexical, unchecked=f"{checked.unchecked}; checked lexically instead")
    return lexical
