"""Small text utilities shared by compression, citation verification and evaluation."""

from __future__ import annotations

import re
import unicodedata

_SENT = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9À-ÖØ-Þ])|\n\s*\n|\n(?=\s*[-*•]\s)")
_WORD = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ0-9]+(?:[.,'’][A-Za-zÀ-ÖØ-öø-ÿ0-9]+)*")
_NUMBER = re.compile(r"(?<![\w.-])[-+]?\d[\d,]*(?:\.\d+)?")
_CITE = re.compile(r"\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]")

STOPWORDS = frozenset(
    """a an the and or but if then else of to in on at by for with from into onto about as is are was were be
    been being am do does did done have has had having it its it's this that these those there here what which
    who whom whose when where why how not no nor so than too very can could should would may might must will
    shall i me my we our you your he him his she her they them their also just only such any all some each
    both either neither more most other same own s t one many much""".split()
)


def split_sentences(text: str) -> list[str]:
    """Sentences (and list items / paragraphs) of a text, stripped, empty ones dropped."""
    return [s.strip() for s in _SENT.split(text or "") if s and s.strip()]


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return text.lower()


def words(text: str) -> list[str]:
    return [w.replace(",", "") if w[0].isdigit() else w for w in _WORD.findall(normalize(text))]


def stem(word: str) -> str:
    """A light suffix stripper: enough to match 'employees'/'employee', 'rotated'/'rotate'."""
    for suffix in ("ingly", "edly", "ies", "ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix) and not word[0].isdigit():
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def content_terms(text: str) -> list[str]:
    return [stem(w) for w in words(text) if w not in STOPWORDS]


def numbers(text: str) -> set[str]:
    """Numbers as written, without thousands separators or trailing zeros ('1,200' -> '1200', '2.50' -> '2.5')."""
    out = set()
    for m in _NUMBER.findall(text or ""):
        n = m.replace(",", "").lstrip("+")
        if "." in n:
            n = n.rstrip("0").rstrip(".")
        out.add(n)
    return out


def citations(text: str) -> list[int]:
    """Bracketed source numbers in order of appearance: '[1]', '[2, 3]'."""
    out: list[int] = []
    for m in _CITE.finditer(text or ""):
        for part in re.split(r"[,;]", m.group(1)):
            n = int(part)
            if n not in out:
                out.append(n)
    return out


def strip_citations(text: str) -> str:
    return re.sub(r"\s*" + _CITE.pattern, "", text or "").strip()
