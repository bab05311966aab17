"""Split a Document into Chunks that fit the embedder's token window.

Recursive, token-aware splitting in the spirit of LangChain's RecursiveCharacterTextSplitter, but
measured in the embedder's own tokens: a section is cut at blank lines, then lines, then sentences,
then words, and only a word longer than a whole chunk is cut by characters. The pieces are packed
greedily; consecutive chunks of one section share about `overlap` tokens of trailing text so that a
fact cut at a boundary is still whole in one of them. A chunk never spans two sections, so its page
and heading path are exact.

Token counting is the slow part (a tokenizer call), so every piece is measured once, chunk sizes
are estimated by summing, and each finished chunk is verified with a single count.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sovrag.types import Chunk, Document, Section

# Fixed forever: chunk ids derive from it, so re-ingesting a version rewrites the same ids.
NAMESPACE = uuid.UUID("5d0c6f7e-3b1a-4c7e-9a57-2f3e8d4b6a10")

MODES = ("recursive", "document")

# Separator levels: the regex that cuts a text at this level, and the string that rejoins pieces.
# A sentence ends at . ! ? before a capital, or at the CJK full stops 。！？ (which need no space after them).
_SENTENCE_END = re.compile(
    r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+(?=[\"'(\[]?[A-Z0-9À-ÖØ-Þ])|(?<=[。！？])\s*(?=\S)"
)
_LEVELS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\n[ \t]*\n\s*"), "\n\n"),
    (re.compile(r"\n"), "\n"),
    (_SENTENCE_END, " "),
    (re.compile(r"\s+"), " "),
)
_WORD = re.compile(r"\S+")
# Text this many times longer (in characters) than a token budget cannot fit it: skip counting it.
_MAX_CHARS_PER_TOKEN = 32

Counter = Callable[[str], int]


@dataclass
class _Piece:
    text: str
    tokens: int
    sep: str  # joins this piece to the one before it


def chunk_id(doc_id: str, version: str, index: int) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{doc_id}\x00{version}\x00{index}"))


def chunk_document(
    doc: Document,
    doc_id: str,
    version: str,
    count_tokens: Counter,
    chunk_tokens: int = 200,
    overlap: int = 32,
    mode: str = "recursive",
    document_max_tokens: int = 8192,
) -> list[Chunk]:
    """Chunks of `doc`, indexed 0..n-1, with deterministic ids from (doc_id, version, index).

    mode "document" keeps the whole document as one chunk when it fits `document_max_tokens`
    (its text then includes the heading lines, since the chunk has no single heading path), and
    falls back to recursive splitting when it does not.
    """
    if mode not in MODES:
        raise ValueError(f"chunk mode {mode!r}: expected one of {', '.join(MODES)}")
    if chunk_tokens < 1:
        raise ValueError(f"chunk_tokens={chunk_tokens}: must be at least 1")
    if not 0 <= overlap < chunk_tokens:
        raise ValueError(f"overlap={overlap}: must be >= 0 and below chunk_tokens={chunk_tokens}")
    count_tokens = _bounded(count_tokens)

    def make(index: int, text: str, section: Section | None) -> Chunk:
        return Chunk(
            id=chunk_id(doc_id, version, index),
            doc_id=doc_id,
            text=text,
            source=doc.source,
            title=doc.title,
            index=index,
            page=section.page if section else None,
            headings=section.headings if section else (),
        )

    if mode == "document":
        whole = _document_text(doc)
        if (
            whole
            and len(whole) <= document_max_tokens * _MAX_CHARS_PER_TOKEN
            and count_tokens(whole) <= document_max_tokens
        ):
            return [make(0, whole, Section("", doc.sections[0].page if doc.sections else None))]

    chunks: list[Chunk] = []
    for section in doc.sections:
        for text in split_text(section.text, count_tokens, chunk_tokens, overlap):
            chunks.append(make(len(chunks), text, section))
    return chunks


def _document_text(doc: Document) -> str:
    """The whole text with each new heading on its own line, as the document reads."""
    out: list[str] = []
    previous: tuple[str, ...] = ()
    for s in doc.sections:
        common = 0
        while common < min(len(previous), len(s.headings)) and previous[common] == s.headings[common]:
            common += 1
        out.extend(s.headings[common:])
        previous = s.headings
        if s.text.strip():
            out.append(s.text.strip())
    return "\n\n".join(out)


def split_text(text: str, count_tokens: Counter, chunk_tokens: int, overlap: int) -> list[str]:
    """Split one section's text into chunk texts of at most `chunk_tokens` tokens each."""
    text = text.strip()
    if not text:
        return []
    count_tokens = _bounded(count_tokens)
    pieces = _pieces(text, count_tokens, chunk_tokens, level=0, sep="")
    return _pack(pieces, count_tokens, chunk_tokens, overlap)


def _pieces(text: str, count: Counter, limit: int, level: int, sep: str) -> list[_Piece]:
    """Cut `text` at the coarsest level whose parts fit, recursing only into parts that do not."""
    # A text far longer than the budget in characters cannot fit: split it without counting it.
    if len(text) <= limit * _MAX_CHARS_PER_TOKEN:
        n = count(text)
        if n <= limit:
            return [_Piece(text, n, sep)]
    while level < len(_LEVELS):
        pattern, joiner = _LEVELS[level]
        parts = [p for p in (s.strip() for s in pattern.split(text)) if p]
        level += 1
        if len(parts) > 1:
            out: list[_Piece] = []
            for i, part in enumerate(parts):
                out.extend(_pieces(part, count, limit, level, sep if i == 0 else joiner))
            return out
    return _hard_split(text, count, limit, sep)


def _hard_split(word: str, count: Counter, limit: int, sep: str) -> list[_Piece]:
    """A run with no separator longer than a chunk (a URL, a base64 blob, a line of CJK text): cut it by
    characters into pieces of at most `limit` tokens.

    Linear in the run's length: each piece is sized from the characters-per-token ratio measured so far and
    only that piece is counted (a handful of counts of at most one chunk each), never the whole remainder.
    """
    out: list[_Piece] = []
    pos, ratio, most = 0, 4.0, limit * _MAX_CHARS_PER_TOKEN
    while pos < len(word):
        left = len(word) - pos
        size = min(left, max(1, int(limit * ratio)), most)
        n = count(word[pos : pos + size])
        while n <= limit and size < min(left, most):  # the ratio was pessimistic: grow while it fits
            bigger = min(left, most, int(size * 1.5) + 1)
            m = count(word[pos : pos + bigger])
            if m > limit:
                break
            size, n = bigger, m
        while n > limit and size > 1:
            size = max(1, min(size - 1, int(size * limit / n * 0.95)))
            n = count(word[pos : pos + size])
        out.append(_Piece(word[pos : pos + size], n, sep if not out else ""))
        ratio = max(size / max(n, 1), 0.25)
        pos += size
    return out


def _bounded(count: Counter) -> Counter:
    """Counts at least one token per `_MAX_CHARS_PER_TOKEN` characters.

    Word-piece tokenizers map a 'word' over 100 characters to a single [UNK]: counted naively, a 10 MB run
    without spaces would be one 1-token chunk of 10 MB. With this floor every chunk is bounded in characters
    as well as in tokens.
    """

    def bounded(text: str) -> int:
        return max(count(text), -(-len(text) // _MAX_CHARS_PER_TOKEN))

    return bounded


def _sep_cost(sep: str) -> int:
    # Spaces cost nothing in word-piece and byte-level BPE vocabularies; a newline may be a token.
    return 1 if "\n" in sep else 0


def _join(pieces: list[_Piece]) -> str:
    return "".join((p.sep if i else "") + p.text for i, p in enumerate(pieces))


def _pack(pieces: list[_Piece], count: Counter, limit: int, overlap: int) -> list[str]:
    chunks: list[str] = []
    current: list[_Piece] = []
    size = 0
    exact = True  # `current` is one piece measured on its own: no need to count it again

    for piece in pieces:
        cost = piece.tokens + (_sep_cost(piece.sep) if current else 0)
        if current and size + cost > limit:
            _emit(current, exact, count, limit, chunks)
            budget = min(overlap, limit - piece.tokens - _sep_cost(piece.sep))
            current = _tail(current, budget, count) if budget > 0 else []
            size = sum(p.tokens + _sep_cost(p.sep) for p in current)
            cost = piece.tokens + (_sep_cost(piece.sep) if current else 0)
        exact = not current
        current.append(piece)
        size += cost
    if current:
        _emit(current, exact, count, limit, chunks)
    return chunks


def _emit(pieces: list[_Piece], exact: bool, count: Counter, limit: int, out: list[str]) -> None:
    """Append the joined pieces, verified with one count; split further if the estimate was low."""
    text = _join(pieces).strip()
    if not text:
        return
    if exact or count(text) <= limit:
        out.append(text)
    elif len(pieces) > 1:
        half = len(pieces) // 2
        _emit(pieces[:half], False, count, limit, out)
        _emit(pieces[half:], False, count, limit, out)
    else:
        out.extend(p.text for p in _hard_split(text, count, limit, ""))


def _tail(pieces: list[_Piece], budget: int, count: Counter) -> list[_Piece]:
    """About `budget` tokens from the end of a chunk: whole pieces, else sentences, else words."""
    tail: list[_Piece] = []
    used = 0
    for p in reversed(pieces):
        cost = p.tokens + _sep_cost(p.sep)
        if used + cost > budget:
            rest = budget - used - (_sep_cost(p.sep) if tail else 0)
            if rest > 0:
                words = _tail_words(p.text, rest, count)
                if words:
                    tail.insert(0, _Piece(words, count(words), p.sep))
            break
        tail.insert(0, p)
        used += cost
    if tail:
        tail[0] = _Piece(tail[0].text, tail[0].tokens, "")
    return tail


def _tail_words(text: str, budget: int, count: Counter) -> str:
    """The longest suffix of whole sentences (or, failing that, words) within `budget` tokens.

    Suffixes are sliced from the original text, so line breaks and indentation survive.
    """
    for m in _SENTENCE_END.finditer(text):
        candidate = text[m.end():]
        if count(candidate) <= budget:
            return candidate
    starts = [m.start() for m in _WORD.finditer(text)]
    lo, hi = 0, min(len(starts), budget)  # a word is at least one token
    while lo < hi:  # binary search on the number of trailing words
        mid = (lo + hi + 1) // 2
        if count(text[starts[-mid]:]) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return text[starts[-lo]:] if lo else ""
