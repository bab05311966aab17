"""What a benchmark runs on: questions (from a file, or drawn from the collection) and stored chunks.

The Store protocol has no "list chunks" call, and adding one to every backend for a benchmark is not worth
it: a document's chunks are found by a dense search restricted to its doc_id (filtered search is exact on
small subsets in Qdrant), which works the same on the embedded engine and on a Qdrant server.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

from sovrag.collection import Collection
from sovrag.errors import BenchError
from sovrag.types import Chunk

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_MARKUP = re.compile(r"[#*_`>|\[\]{}=~]+")
#: Longest question drawn from a chunk, in words (a first sentence can be a whole paragraph).
MAX_QUESTION_WORDS = 30


def read_questions(path: Path) -> list[str]:
    """Questions from a JSONL file, one object per line with a "question" field (others are ignored)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise BenchError(f"questions file {path}: cannot read it ({e.strerror or e})") from e
    except UnicodeDecodeError as e:
        raise BenchError(f"questions file {path}: not UTF-8 text") from e
    out: list[str] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise BenchError(f"questions file {path}, line {n}: not JSON ({e.msg})") from e
        q = row.get("question") if isinstance(row, dict) else None
        if not isinstance(q, str) or not q.strip():
            raise BenchError(f'questions file {path}, line {n}: expected an object with a non-empty "question"')
        out.append(q.strip())
    if not out:
        raise BenchError(f"questions file {path}: holds no questions")
    return out


def sample_chunks(col: Collection, n: int, seed: int = 0) -> list[Chunk]:
    """Up to n stored chunks from randomly chosen documents (several per document only when few exist)."""
    docs = sorted(col.store.documents())
    if not docs:
        raise BenchError(f"collection {col.name!r}: is empty; ingest documents into it first")
    rng = random.Random(seed)
    rng.shuffle(docs)
    per_doc = max(1, -(-n // len(docs)))  # ceil: enough per document to reach n when documents are few
    chunks: list[Chunk] = []
    for doc_id in docs:
        found = col.store.chunks({"doc_id": doc_id}, limit=50)
        chunks.extend(rng.sample(found, min(per_doc, len(found))))
        if len(chunks) >= n:
            break
    return chunks[:n]


def question_from_chunk(text: str) -> str | None:
    """The chunk's first whole sentence of at least four words, markup removed, as a query; None if it has
    none. A sentence must start with a capital or a digit: chunks that overlap their neighbour begin with
    the tail of a sentence, which makes a poor query."""
    for line in text.splitlines():
        line = _MARKUP.sub(" ", line)
        for sentence in _SENTENCE_END.split(line):
            words = sentence.split()
            if len(words) >= 4 and (words[0][0].isupper() or words[0][0].isdigit()):
                return " ".join(words[:MAX_QUESTION_WORDS])
    return None


def questions_from_collection(col: Collection, n: int, seed: int = 0) -> list[str]:
    chunks = sample_chunks(col, max(n * 2, n + 4), seed)  # some chunks have no usable sentence
    qs = [q for q in (question_from_chunk(c.text) for c in chunks) if q]
    if not qs:
        raise BenchError(f"collection {col.name!r}: no chunk has a sentence to ask about; give --questions FILE")
    return qs[:n]
