"""Synthetic claims from real sentences: true restatements and subtly false ones, each with its label.

Given a sentence of a passage, make a claim the passage supports (the sentence with a parenthetical, a
relative clause or an appositive dropped; "According to the text, ..."; numbers rewritten), contradicts
(a number or date changed, a negation added or removed, two names swapped, a quantifier or comparative
flipped), or does not settle (a qualifier or fact added, a hedge dropped, a name replaced by one from another
document, the sentence deleted from the passage, a related sentence from another document). Deterministic
given the random generator.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from sovrag.text import STOPWORDS, content_terms

SUPPORTED, CONTRADICTED, NEI, UNSUPPORTED = 0, 1, 2, -1  # UNSUPPORTED: contradicted or NEI, not known which


@dataclass(frozen=True)
class Claim:
    premise: str
    claim: str
    label: int
    kind: str


_NUM = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?![\w])")
_YEAR = re.compile(r"\b(1[5-9]\d\d|20\d\d)\b")
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-z]+(?:\s+(?:of\s+|de\s+|van\s+)?[A-Z][a-z]+)*)")
_PAREN = re.compile(r"\s*\([^()]{2,80}\)")
_RELATIVE = re.compile(r",\s+(?:which|who|whose|where)\s+[^,]{3,120},")
_AUX = re.compile(r"\b(is|are|was|were|can|could|will|would|should|has|have|had|does|did|do)\b(?!\s+not\b)(?!n't)")
_NEG = re.compile(r"\b(is|are|was|were|can|could|will|would|should|has|have|had|does|did|do)\s+not\b|\bnever\b")
FLIPS = [("all", "no"), ("always", "never"), ("before", "after"), ("more", "less"), ("increase", "decrease"),
         ("increased", "decreased"), ("larger", "smaller"), ("largest", "smallest"), ("first", "last"),
         ("highest", "lowest"), ("maximum", "minimum"), ("older", "younger"), ("oldest", "youngest"),
         ("north", "south"), ("east", "west"), ("won", "lost"), ("above", "below"), ("earlier", "later"),
         ("higher", "lower"), ("longer", "shorter"), ("best", "worst"), ("male", "female"), ("men", "women"),
         ("early", "late"), ("inside", "outside"), ("before", "after"), ("allowed", "forbidden"),
         ("required", "optional"), ("must", "need not"), ("included", "excluded"), ("public", "private")]
HEDGES = re.compile(r"\b(?:some|many|most|several|often|usually|mostly|mainly|partly|largely|nearly|almost|about|"
                    r"approximately|around|roughly|up to|at least|at most|may|might|generally|typically|"
                    r"sometimes|primarily|possibly|probably)\s+", re.IGNORECASE)
QUALIFIERS = ["only", "exclusively", "for the first time", "every year", "officially", "in 1998", "since 2004",
              "for free", "unanimously", "in Europe", "twice", "permanently", "by law", "at night", "in secret"]


def _sub_once(pattern: re.Pattern, repl, text: str) -> str:
    return pattern.sub(repl, text, count=1)


def change_number(s: str, rng: random.Random) -> str | None:
    years = list(_YEAR.finditer(s))
    if years and rng.random() < 0.6:
        m = rng.choice(years)
        y = int(m.group(1)) + rng.choice([-11, -7, -5, -3, -2, -1, 1, 2, 3, 4, 6, 10])
        return s[:m.start()] + str(y) + s[m.end():]
    nums = [m for m in _NUM.finditer(s) if not _YEAR.fullmatch(m.group(0))]
    if not nums:
        return None
    m = rng.choice(nums)
    n = int(m.group(1).replace(",", ""))
    new = n + rng.choice([1, 2, 3, 5, 10]) if n < 20 else int(n * rng.choice([0.5, 0.7, 1.3, 1.5, 2, 3]))
    if new == n:
        new = n + 1
    text = f"{new:,}" if "," in m.group(1) else str(new)
    if m.group(2):
        text += "." + m.group(2)
    return s[:m.start()] + text + s[m.end():]


def negate(s: str) -> str | None:
    if _NEG.search(s):
        out = re.sub(r"\b(is|are|was|were|can|could|will|would|should|has|have|had|does|did|do)\s+not\b", r"\1",
                     s, count=1)
        return out.replace(" never ", " ever ", 1) if out == s else out
    m = _AUX.search(s)
    if not m:
        return None
    return s[:m.end()] + " not" + s[m.end():]


def names(s: str) -> list[str]:
    return list(dict.fromkeys(m.group(1) for m in _NAME.finditer(s) if len(m.group(1)) > 2))


def swap_names(s: str) -> str | None:
    ns = names(s)
    if len(ns) < 2:
        return None
    a, b = ns[0], ns[1]
    if a in b or b in a:
        return None
    return s.replace(a, "\0").replace(b, a).replace("\0", b)


def replace_name(s: str, pool: list[str], rng: random.Random) -> str | None:
    ns = names(s)
    if not ns or not pool:
        return None
    a = rng.choice(ns)
    b = rng.choice(pool)
    return None if b == a or b in s else s.replace(a, b, 1)


def flip_word(s: str, rng: random.Random) -> str | None:
    options = []
    for x, y in FLIPS:
        for a, b in ((x, y), (y, x)):
            if re.search(rf"\b{a}\b", s):
                options.append((a, b))
    if not options:
        return None
    a, b = rng.choice(options)
    return re.sub(rf"\b{a}\b", b, s, count=1)


def drop_hedge(s: str) -> str | None:
    out = _sub_once(HEDGES, "", s)
    return None if out == s else out


def add_qualifier(s: str, rng: random.Random) -> str | None:
    body = s.rstrip(". ")
    if len(body) < 20:
        return None
    q = rng.choice(QUALIFIERS)
    if q in s:
        return None
    return f"{body} {q}."


def restate(s: str, rng: random.Random) -> tuple[str, str] | None:
    """A claim the sentence supports, and how it was made."""
    options = []
    if _PAREN.search(s):
        options.append(("drop-parenthetical", _PAREN.sub("", s)))
    if _RELATIVE.search(s):
        options.append(("drop-relative-clause", _RELATIVE.sub("", s, count=1)))
    if m := re.search(r"\b(\d{1,3}),(\d{3})\b", s):
        options.append(("number-format", s.replace(m.group(0), m.group(1) + m.group(2), 1)))
    first = s.split(" ", 1)[0]
    if first.lower() in STOPWORDS:  # "The ...", "It ...": safe to lower-case after the new opening
        options.append(("according-to", "According to the text, " + s[0].lower() + s[1:]))
    elif first[:1].isupper():
        options.append(("according-to", "According to the text, " + s))
    options.append(("verbatim", s))
    kind, claim = rng.choice(options)
    return (claim.strip(), kind) if len(claim.strip()) > 10 else None


def make_claims(passage_sentences: list[str], other_sentences: list[str], name_pool: list[str],
                rng: random.Random, n: int = 2) -> list[Claim]:
    """Up to `n` claims about one passage: about half supported, the rest false in one of the ways above."""
    sents = [s for s in passage_sentences if 30 <= len(s) <= 400]
    if not sents:
        return []
    premise = " ".join(passage_sentences)
    out: list[Claim] = []
    for _ in range(n * 3):
        if len(out) >= n:
            break
        s = rng.choice(sents)
        if rng.random() < 0.4:
            r = restate(s, rng)
            if r:
                out.append(Claim(premise, r[0], SUPPORTED, r[1]))
            continue
        kind = rng.choice(["number", "negation", "swap", "flip", "replace-name", "qualifier", "hedge",
                           "removed", "other-document"])
        claim, label = None, CONTRADICTED
        if kind == "number":
            claim = change_number(s, rng)
        elif kind == "negation":
            claim = negate(s)
        elif kind == "swap":
            claim = swap_names(s)
        elif kind == "flip":
            claim = flip_word(s, rng)
        elif kind == "replace-name":
            claim, label = replace_name(s, name_pool, rng), UNSUPPORTED
        elif kind == "qualifier":
            claim, label = add_qualifier(s, rng), NEI
        elif kind == "hedge":
            claim, label = drop_hedge(s), UNSUPPORTED
        elif kind == "removed" and len(passage_sentences) >= 3:
            rest = [x for x in passage_sentences if x != s]
            out.append(Claim(" ".join(rest), s, NEI, kind))
            continue
        elif kind == "other-document" and other_sentences:
            # the most related of a few sentences from other documents: on topic, yet not in this passage
            terms = set(content_terms(s))
            pick = max(rng.sample(other_sentences, min(40, len(other_sentences))),
                       key=lambda x: len(terms & set(content_terms(x))))
            out.append(Claim(premise, pick, NEI, kind))
            continue
        if claim and claim != s:
            out.append(Claim(premise, claim, label, kind))
    return out


# ---------------------------------------------------------------- HaluEval-QA answers as whole statements
_TOKEN = re.compile(r"[\w'’.&-]+|[^\w\s]")
_NEGATION = re.compile(r"\b(?:not|never|no|none|nobody|neither|nor)\b|n't\b", re.IGNORECASE)
_CONNECT = frozenset({"of", "the", "de", "and", "&", "von", "van", "da", "del", "la", "le", "du", "y", "-"})


def _norm(t: str) -> str:
    return t.lower().strip(".,'’")


def _entity(t: str) -> bool:
    return t[:1].isupper() or t[:1].isdigit()


def qa_statement(question: str, right: str, hallucinated: str) -> tuple[str, str] | None:
    """HaluEval-QA pairs a short right answer ("New Jersey") with a hallucinated *sentence* ("Frank Lautenberg
    was from New York."), so a verifier trained on them alone learns that whole sentences are hallucinated,
    and then rejects the full-sentence answers an LLM writes. Where the hallucinated sentence names one
    entity the question does not (a name or a number, of the right answer's kind), that entity replaced by
    the right answer is a true statement ("Frank Lautenberg was from New Jersey."). Returns (the true
    statement, the hallucinated entity) or None when the sentence has no such single entity."""
    q, r, h = question.strip(), right.strip(), hallucinated.strip()
    if not r or r.lower() in ("yes", "no") or _NEGATION.search(h) or "(" in h or len(h) > 300:
        return None
    asked = {_norm(t) for t in _TOKEN.findall(q)}
    toks = [(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(h)]
    novel = [i for i, (t, _, _) in enumerate(toks)
             if _norm(t) not in asked and t.lower() not in STOPWORDS and t not in ".,;:!?\"'"]
    if not novel:
        return None
    span = toks[novel[0]:novel[-1] + 1]
    if len(span) > 6 or len(toks) - len(span) < 4:
        return None
    if not _entity(span[0][0]) or not all(_entity(t) or t.lower() in _CONNECT for t, _, _ in span):
        return None
    entity = h[span[0][1]:span[-1][2]].rstrip(".")
    if bool(re.search(r"\d", r)) != bool(re.search(r"\d", entity)):
        return None
    if _norm(entity) == _norm(r) or r.lower() in h.lower():
        return None
    end = span[0][1] + len(entity)
    return (h[:span[0][1]] + r + h[end:]).strip(), entity


# ---------------------------------------------------------------- the wrong thing from the right passage
_WORD = re.compile(r"[\w'’]+")


def distractor(doc: str, question: str, right: str, rng: random.Random) -> str | None:
    """Another answer of the right answer's kind taken from the same passage: a year for a year, a number for a
    number, the other option of an "A or B?" question, a name for a name; none of its words in the right answer
    or the question. HaluEval-QA's hallucinated answers mostly bring names the passage lacks, so a verifier
    trained on them alone learns "the answer's words are in the passage"; this negative teaches "the passage
    says this one answers it"."""
    r = right.strip()
    if not r or r.lower() in ("yes", "no"):
        return None
    # "Which came first, A or B?": the other one
    options = [o.strip(" ?,.\"'") for o in re.split(r",? or ", question.split(",")[-1])]
    if len(options) == 2 and r.lower() in (o.lower() for o in options):
        other = next(o for o in options if o.lower() != r.lower())
        if len(other) > 1 and r.lower() not in other.lower():
            return other
    taken = {w.lower() for w in _WORD.findall(f"{r} {question}")}
    if _YEAR.search(r):
        found = [m.group(1) for m in _YEAR.finditer(doc)]
    elif re.search(r"\d", r):
        found = [m.group(0) for m in _NUM.finditer(doc) if not _YEAR.fullmatch(m.group(0))]
    elif r[:1].isupper():
        found = [n for n in names(doc) if len(n) > 3]
    else:  # a common noun ("alcohol"): a name would be another kind of thing, and synonyms are likely
        return None
    picks = sorted({f for f in found if not ({w.lower() for w in _WORD.findall(f)} & taken)})
    return rng.choice(picks) if picks else None
