"""The answer pipeline: retrieve -> compress -> prompt -> generate -> verify citations -> Answer.

Abstains instead of inventing: before generating when no retrieved passage is relevant enough, and after
generating when the model says the documents do not answer, or when no sentence of its answer is backed
by a source. Flags contradictions between sources on the asked fact.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from sovrag.answer.contradict import find_contradictions
from sovrag.answer.followup import Turn, context_turns, retrieval_query
from sovrag.answer.prompt import ABSTAIN_TEXT, build_messages
from sovrag.answer.verify import SourceSentences, verify
from sovrag.collection import Collection
from sovrag.errors import SovragError
from sovrag.generate import LLM, Generation, GenerationParams, Message
from sovrag.retrieve import search
from sovrag.retrieve.compress import SentencePool, build_pool, compress, lexical_overlap
from sovrag.store import Filters, SearchMode
from sovrag.types import Answer, AnswerSentence, ScoredChunk, Source

_ABSTAIN_PATTERNS = re.compile(
    r"do(?:es)? not (?:answer|contain|mention|provide|say|specify)|don't (?:know|have)|cannot (?:answer|find)|"
    r"no (?:information|mention)|not (?:mentioned|provided|specified|stated) in|unable to (?:answer|find)",
    re.IGNORECASE,
)


@dataclass
class AnswerOptions:
    top_k: int = 6
    mode: SearchMode = "hybrid"
    filters: Filters | None = None
    compress: bool = True
    #: Prompt tokens for sources; 0 = sized to the model's context.
    budget_tokens: int = 0
    #: Compression never keeps a sentence scoring below this share of the best sentence's score.
    compress_floor: float = 0.5
    #: The best-ranked chunks kept whole by compression (they most often hold the answer and its context).
    #: Defaults (budget 250 tokens, keep 1 whole, floor 0.5) were chosen on a dev sample of HaluEval-QA
    #: (seed 99) and then measured on the benchmark sample (seed 13): docs/benchmarks.md.
    compress_keep_whole: int = 1
    max_tokens: int = 256
    #: Abstain without generating when the best question-sentence similarity is below this...
    min_relevance: float = 0.3
    #: ...or when no source holds at least this share of the question's content terms. Calibrated on 300
    #: HaluEval-QA questions with the gold passage present vs removed (docs/benchmarks.md).
    min_coverage: float = 0.5
    max_chunks_per_doc: int = 3
    #: "simple" or "cited" (see answer/prompt.py); "auto": simple for local llama.cpp models, else cited.
    prompt_style: str = "auto"
    params: GenerationParams = field(default_factory=GenerationParams)


@dataclass
class Prepared:
    question: str
    hits: list[ScoredChunk]
    pool: SentencePool | None
    sources: list[Source]
    source_sentences: list[SourceSentences]
    messages: list[Message]
    abstain_reason: str = ""
    timings: dict[str, float] = field(default_factory=dict)


class AnswerPipeline:
    def __init__(self, collection: Collection, llm: LLM, options: AnswerOptions | None = None) -> None:
        self.col = collection
        self.llm = llm
        self.opt = options or AnswerOptions()

    # ------------------------------------------------------------------ stages
    def style(self) -> str:
        if self.opt.prompt_style != "auto":
            return self.opt.prompt_style
        return "simple" if self.llm.name.startswith("llamacpp:") else "cited"

    def budget(self) -> int:
        if self.opt.budget_tokens:
            return self.opt.budget_tokens
        room = self.llm.context_tokens - self.opt.max_tokens - 400  # instructions, question, template
        return max(150, min(room, 250 if self.opt.compress else room))

    def prepare(self, question: str, history: Sequence[Turn] = ()) -> Prepared:
        """Retrieve and compress for `question`; `history` (earlier turns) only shapes a follow-up's search."""
        question = (question or "").strip()
        if not question:
            raise SovragError("question: empty; ask something")
        t0 = time.perf_counter()
        q_tokens = self.llm.count_tokens(question)
        if q_tokens + self.opt.max_tokens + 400 > self.llm.context_tokens:
            raise SovragError(
                f"question: {q_tokens} tokens, too long for the model's context of {self.llm.context_tokens} "
                "tokens; shorten it or use a model with a longer context (llm_context)"
            )
        query = retrieval_query(question, history)
        hits = search(self.col, query, top_k=self.opt.top_k * 2, mode=self.opt.mode, filters=self.opt.filters)
        hits = _diverse(hits, self.opt.top_k, self.opt.max_chunks_per_doc)
        t1 = time.perf_counter()
        timings = {"retrieve_s": t1 - t0}
        if not hits:
            return Prepared(question, [], None, [], [], [], "the collection has no passage matching the question",
                            timings)
        # Sentences are scored against the question itself: a follow-up's search brings the earlier topic's
        # passages, but what the model should see is what the new question asks of them.
        pool = build_pool(self.col.embedder, question, hits)
        relevance = pool.relevance()
        if query != question:
            relevance = np.maximum(relevance, pool.vectors @ self.col.embedder.embed([query])[0])
        best_by_hit = [float(relevance[[i for i, o in enumerate(pool.owner) if o == h]].max())
                       if h in pool.owner else 0.0 for h in range(len(hits))]
        count = self.llm.count_tokens
        if self.opt.compress:
            comp = compress(pool, question, len(hits), self.budget(), count, relative_floor=self.opt.compress_floor,
                            keep_whole=self.opt.compress_keep_whole)
            kept = comp.kept
        else:
            kept = _fit_whole_chunks(pool, len(hits), self.budget(), count)
        sources: list[Source] = []
        src_sents: list[SourceSentences] = []
        for h, idx in enumerate(kept):
            if not idx:
                continue
            n = len(sources) + 1
            text = _join(pool, idx)
            sources.append(Source(n, hits[h].chunk, text, round(best_by_hit[h], 4)))
            src_sents.append(SourceSentences(n, [pool.sentences[i] for i in idx], pool.vectors[idx], text))
        timings["compress_s"] = time.perf_counter() - t1
        best = max(best_by_hit, default=0.0)
        coverage = max((max(lexical_overlap(question, h.chunk.text), lexical_overlap(query, h.chunk.text))
                        for h in hits), default=0.0)
        reason = ""
        if best < self.opt.min_relevance:
            reason = (f"no retrieved passage is relevant enough (best similarity {best:.2f} < "
                      f"{self.opt.min_relevance:.2f})")
        elif coverage < self.opt.min_coverage:
            reason = (f"no retrieved passage covers the question (at most {coverage:.0%} of its terms, "
                      f"needs {self.opt.min_coverage:.0%})")
        return Prepared(question, hits, pool, sources, src_sents, build_messages(question, sources, self.style(),
                                                                                  context_turns(history)),
                        reason, timings)

    def finish(self, prep: Prepared, gen: Generation | None) -> Answer:
        t0 = time.perf_counter()
        timings = dict(prep.timings)
        draft = gen.text.strip() if gen else ""
        answer = Answer(prep.question, "", [], prep.sources, abstained=False, draft=draft, model=self.llm.name,
                        prompt_tokens=gen.prompt_tokens if gen else 0,
                        completion_tokens=gen.completion_tokens if gen else 0)
        if gen is not None:
            timings["generate_s"] = gen.seconds
        closest = sorted(prep.sources, key=lambda s: -s.relevance)[:3]
        if prep.abstain_reason:
            return self._abstain(answer, prep.abstain_reason, closest, timings)
        if not draft or ABSTAIN_TEXT.lower().rstrip(".") in draft.lower() or (
            _ABSTAIN_PATTERNS.search(draft) and len(draft) < 200
        ):
            return self._abstain(answer, "the model found no answer in the sources", closest, timings)
        answer.sentences = verify(draft, prep.source_sentences, self.col.embedder)
        claims = [s for s in answer.sentences if s.citations or not s.supported]
        if not any(s.supported and s.citations for s in claims):
            answer.abstain_reason = "no sentence of the model's answer is supported by the sources"
            return self._abstain(answer, answer.abstain_reason, closest, timings)
        answer.text = " ".join(_render(s) for s in answer.sentences)
        if prep.pool is not None:
            answer.contradictions = find_contradictions(
                prep.sources,
                {s.number: s.sentences for s in prep.source_sentences},
                {s.number: s.vectors for s in prep.source_sentences},
                prep.pool.question_vector,
            )
        for c in answer.contradictions:
            answer.text += (f" Note: the sources disagree: [{c.source_a}] says {', '.join(c.values_a)}, "
                            f"[{c.source_b}] says {', '.join(c.values_b)}.")
        timings["verify_s"] = time.perf_counter() - t0
        answer.timings = {k: round(v, 4) for k, v in timings.items()}
        return answer

    def _abstain(self, answer: Answer, reason: str, closest: list[Source], timings: dict[str, float]) -> Answer:
        answer.abstained = True
        answer.abstain_reason = reason
        answer.text = ABSTAIN_TEXT
        if closest:
            answer.text += " Closest sources: " + ", ".join(f"[{s.number}]" for s in closest) + "."
        answer.timings = {k: round(v, 4) for k, v in timings.items()}
        return answer

    # ------------------------------------------------------------------ entry points
    def params(self) -> GenerationParams:
        p = self.opt.params
        return GenerationParams(max_tokens=self.opt.max_tokens, temperature=p.temperature, seed=p.seed, stop=p.stop,
                                extra=p.extra)

    def answer(self, question: str, history: Sequence[Turn] = ()) -> Answer:
        t0 = time.perf_counter()
        prep = self.prepare(question, history)
        gen = None if prep.abstain_reason else self.llm.chat(prep.messages, self.params())
        ans = self.finish(prep, gen)
        ans.timings["total_s"] = round(time.perf_counter() - t0, 4)
        return ans

    def stream(self, question: str, history: Sequence[Turn] = ()) -> Iterator[str | Answer]:
        """Text deltas as the model writes them, then the verified Answer as the last item."""
        t0 = time.perf_counter()
        prep = self.prepare(question, history)
        gen = None
        if not prep.abstain_reason:
            for ev in self.llm.stream(prep.messages, self.params()):
                if ev.done is not None:
                    gen = ev.done
                elif ev.delta:
                    yield ev.delta
        ans = self.finish(prep, gen)
        ans.timings["total_s"] = round(time.perf_counter() - t0, 4)
        yield ans


def _render(s: AnswerSentence) -> str:
    if s.citations:
        return s.text + "".join(f"[{c.source}]" for c in s.citations)
    return s.text if s.supported else f"{s.text} [unsupported]"


def _diverse(hits: list[ScoredChunk], k: int, per_doc: int) -> list[ScoredChunk]:
    out: list[ScoredChunk] = []
    count: dict[str, int] = {}
    for h in hits:
        if count.get(h.chunk.doc_id, 0) < per_doc:
            out.append(h)
            count[h.chunk.doc_id] = count.get(h.chunk.doc_id, 0) + 1
        if len(out) == k:
            break
    return out


def _fit_whole_chunks(pool: SentencePool, n_chunks: int, budget: int,
                      count: Callable[[str], int]) -> list[list[int]]:
    """No compression: whole chunks in rank order while they fit the budget."""
    kept: list[list[int]] = [[] for _ in range(n_chunks)]
    used = 0
    for h in range(n_chunks):
        idx = [i for i, o in enumerate(pool.owner) if o == h]
        cost = sum(count(pool.sentences[i]) + 1 for i in idx)
        if used + cost > budget and used:
            break
        kept[h] = idx
        used += cost
    return kept


def _join(pool: SentencePool, idx: list[int]) -> str:
    parts: list[str] = []
    for k, i in enumerate(idx):
        if k and i != idx[k - 1] + 1:
            parts.append("…")
        parts.append(pool.sentences[i])
    return " ".join(parts)


