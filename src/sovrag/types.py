"""Boundary dataclasses: the only shapes that cross from one stage to another."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Section:
    """A run of text from one place of a document (a page of a PDF, a part under one heading)."""

    text: str
    page: int | None = None
    headings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Document:
    """A loaded source file: its text split into sections that keep page and heading positions."""

    source: str
    title: str
    sections: list[Section]
    format: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n\n".join(s.text for s in self.sections)


@dataclass(frozen=True)
class Chunk:
    """A piece of a document, the unit that is embedded, stored and retrieved."""

    id: str
    doc_id: str
    text: str
    source: str
    title: str
    index: int
    page: int | None = None
    headings: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    #: What incremental sync keys on: the document version (content hash) this chunk belongs to, and how many
    #: chunks that version has (a version is complete when all are stored).
    version: str = ""
    chunk_count: int = 0
    format: str = ""  # the source file's format (pdf, docx, html, markdown, rst, text)

    def payload(self) -> dict[str, Any]:
        """The stored payload: everything needed to cite the chunk without the original file."""
        return {
            **self.metadata,
            "version": self.version,
            "chunk_count": self.chunk_count,
            "format": self.format,
            "doc_id": self.doc_id,
            "text": self.text,
            "source": self.source,
            "title": self.title,
            "chunk_index": self.index,
            "page": self.page,
            "headings": list(self.headings),
        }

    @classmethod
    def from_payload(cls, point_id: str, payload: dict[str, Any]) -> Chunk:
        p = dict(payload)
        known = {
            "doc_id": p.pop("doc_id", ""),
            "text": p.pop("text", ""),
            "source": p.pop("source", ""),
            "title": p.pop("title", ""),
            "index": p.pop("chunk_index", 0),
            "page": p.pop("page", None),
            "headings": tuple(p.pop("headings", None) or ()),
            "version": str(p.pop("version", "") or ""),
            "chunk_count": int(p.pop("chunk_count", 0) or 0),
            "format": str(p.pop("format", "") or ""),
        }
        return cls(id=str(point_id), metadata=p, **known)


@dataclass(frozen=True)
class ScoredChunk:
    """A retrieved chunk with its score under the search mode that found it."""

    chunk: Chunk
    score: float
    rank: int


@dataclass(frozen=True)
class Source:
    """A numbered passage the answer may cite: the (compressed) text shown to the model and its origin."""

    number: int
    chunk: Chunk
    text: str  # what the model saw: the chunk's relevant sentences after compression
    relevance: float  # best cosine similarity between the question and the source's sentences


@dataclass(frozen=True)
class Evidence:
    """One source's sentences as the model saw them, with their embeddings: what each claim of the answer is
    checked against (citation verification, contradiction detection)."""

    number: int  # Source.number
    sentences: list[str]
    vectors: np.ndarray  # one unit-length row per sentence
    text: str  # the source's text as shown to the model


@dataclass
class Context:
    """Retrieval's hand-off to answering: everything about the question that generation and verification use.

    The question is embedded once, here; nothing downstream re-embeds it or reaches into retrieval's arrays.
    """

    question: str
    query: str  # what was searched: the question, or it joined with the earlier question for a follow-up
    question_vector: np.ndarray
    hits: list[ScoredChunk]  # the retrieved chunks, best first, at most max_chunks_per_doc per document
    sources: list[Source]  # the numbered passages the model is shown (compressed), in hit order
    evidence: list[Evidence]  # one per source, same order
    relevance: float  # best question-sentence similarity over the retrieved chunks (0 when none)
    coverage: float  # best share of the question's content terms found in one retrieved chunk
    timings: dict[str, float] = field(default_factory=dict)
    #: The reranker's P(some candidate answers the question), and the threshold its calibration sets for
    #: abstaining; None when retrieval did not rerank.
    answerable: float | None = None
    answerable_threshold: float = 0.0


@dataclass(frozen=True)
class Citation:
    source: int  # Source.number
    support: float  # 0..1: how well the source's best sentence backs the claim
    evidence: str  # that sentence
    cited_by_model: bool  # the model wrote [n]; False means verification found the support itself


@dataclass(frozen=True)
class AnswerSentence:
    text: str
    citations: tuple[Citation, ...]
    supported: bool
    #: Sources the model cited that do not back this sentence (dropped from citations).
    rejected: tuple[int, ...] = ()
    #: Sources the verifier found stating the opposite of this sentence.
    contradicted_by: tuple[int, ...] = ()
    #: Why the sentence was not checked ("" when it was): e.g. it is not in a language the verifier knows.
    unchecked: str = ""


@dataclass(frozen=True)
class Contradiction:
    """Two sources that disagree on the asked fact."""

    source_a: int
    claim_a: str
    values_a: tuple[str, ...]
    source_b: int
    claim_b: str
    values_b: tuple[str, ...]


@dataclass
class Answer:
    question: str
    text: str
    sentences: list[AnswerSentence]
    sources: list[Source]
    abstained: bool
    abstain_reason: str = ""
    contradictions: list[Contradiction] = field(default_factory=list)
    draft: str = ""  # the model's own text, kept when sovrag abstains instead of showing it
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""  # the model's: "stop", or "length" when max_tokens cut it short; "" if not generated
    #: retrieve_s, compress_s, first_token_s (from the start), generate_s, verify_s, total_s
    timings: dict[str, float] = field(default_factory=dict)
    #: the engine's own timings of the generation (llama.cpp: prompt_n, prompt_ms, predicted_n, predicted_ms)
    engine: dict[str, float] = field(default_factory=dict)
    #: True when no sentence of the model's answer was supported and sovrag quoted the best source instead
    quoted: bool = False
    #: The reranker's P(the best retrieved passage answers the question); None when retrieval did not rerank
    answerable: float | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Answer:
        """The inverse of to_dict (a server's answer, rebuilt by the CLI to print it the same way)."""
        sources = []
        for s in d["sources"]:
            c = s["chunk"]
            chunk = Chunk(id=c["id"], doc_id=c["doc_id"], text=s["text"], source=c["source"], title=c["title"],
                          index=0, page=c.get("page"), headings=tuple(c.get("headings") or ()))
            sources.append(Source(s["number"], chunk, s["text"], s["relevance"]))
        sentences = [AnswerSentence(s["text"], tuple(Citation(**c) for c in s["citations"]), s["supported"],
                                    tuple(s.get("rejected", ())), tuple(s.get("contradicted_by", ())),
                                    s.get("unchecked", "")) for s in d["sentences"]]
        contradictions = [Contradiction(c["source_a"], c["claim_a"], tuple(c["values_a"]), c["source_b"], c["claim_b"],
                                        tuple(c["values_b"])) for c in d.get("contradictions", [])]
        return cls(d["question"], d["text"], sentences, sources, d["abstained"], d.get("abstain_reason", ""),
                   contradictions, d.get("draft", ""), d.get("model", ""), d.get("prompt_tokens", 0),
                   d.get("completion_tokens", 0), d.get("finish_reason", ""), dict(d.get("timings", {})),
                   dict(d.get("engine", {})), bool(d.get("quoted", False)), d.get("answerable"))

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        d = asdict(self)
        for s, src in zip(d["sources"], self.sources, strict=True):
            s["chunk"] = {
                "id": src.chunk.id, "doc_id": src.chunk.doc_id, "source": src.chunk.source,
                "title": src.chunk.title, "page": src.chunk.page, "headings": list(src.chunk.headings),
            }
        return d
