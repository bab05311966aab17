"""Small text utilities shared by compression, citation verification, the verifier and evaluation.

Sentences come from sentencex (Wikimedia's rule-based segmenter: abbreviations such as "e.g.", "Dr.",
"U.S.", decimals and numbered lists), with paragraph breaks and list items as boundaries of their own;
stems from the Snowball English stemmer (PyStemmer), which conflates "employee" and "employees".
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import Stemmer
from sentencex import segment

_BLOCK = re.compile(r"\n\s*\n|\n(?=\s*(?:[-*•]|\d{1,3}[.)])\s)")
#: Abbreviations sentencex still ends a sentence at when a number follows ("approx. 3.5 EUR").
_BEFORE_NUMBER = re.compile(r"\b(?:approx|ca|no|nos|fig|figs|vol|p|pp|sec|art|ch|ref|eq|v|vs|nr|op)\.\s*$",
                            re.IGNORECASE)
_MARKER = re.compile(r"^(?:\d{1,3}|[A-Za-z]|[ivxIVX]{1,4})[.)]$")  # a list item's number, not a sentence
_STEMMER = Stemmer.Stemmer("english")
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
    out: list[str] = []
    for block in _BLOCK.split(text or ""):
        if not block or not block.strip():
            continue
        merged: list[str] = []
        for sent in segment("en", block):
            sent = sent.strip()
            if not sent:
                continue
            if merged and (_MARKER.match(merged[-1]) or (_BEFORE_NUMBER.search(merged[-1]) and sent[:1].isdigit())):
                merged[-1] = f"{merged[-1]} {sent}"
            else:
                merged.append(sent)
        out.extend(merged)
    return out


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return text.lower()


def words(text: str) -> list[str]:
    return [w.replace(",", "") if w[0].isdigit() else w for w in _WORD.findall(normalize(text))]


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Snowball English stem: 'employees'/'employee' -> 'employe', 'rotated'/'rotate' -> 'rotat'. Numbers
    are kept as written."""
    if word[:1].isdigit():
        return word
    return _STEMMER.stemWord(word)


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
