"""The answer pipeline: retrieve (a Context) -> prompt -> generate -> verify citations -> Answer.

Abstains instead of inventing: before generating when no retrieved passage is relevant enough, and after
generating when the model says the documents do not answer, or when no sentence of its answer is backed
by a source. Flags contradictions between sources on the asked fact.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from sovrag.answer.contradict import find_contradictions
from sovrag.answer.followup import Turn, context_turns, retrieval_query
from sovrag.answer.prompt import ABSTAIN_TEXT, STYLES, build_messages
from sovrag.answer.verify import verify
from sovrag.collection import Collection
from sovrag.errors import SovragError
from sovrag.generate import LLM, Generation, GenerationParams, Message
from sovrag.retrieve.context import retrieve_context
from sovrag.store import Filters, SearchMode
from sovrag.types import Answer, AnswerSentence, Context, Source

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
    """The prompt for one question, from its Context, and whether to abstain before generating."""

    context: Context
    messages: list[Message]
    abstain_reason: str = ""

    @property
    def question(self) -> str:
        return self.context.question

    @property
    def sources(self) -> list[Source]:
        return self.context.sources


class AnswerPipeline:
    """The question journey: retrieve -> Context -> prompt -> generate -> verify -> Answer.

    `stream()` is the one loop every caller uses: the CLI prints its deltas, `sovrag serve` relays them (with a
    `SharedLLM` as the model, which queues generations), `sovrag bench` reads the timings the Answer carries,
    `answer()` keeps only the last item. Retrieval is the only step that reads the collection's store; given
    a Context already retrieved (`context=`), the rest needs the collection's embedder alone.
    """

    def __init__(self, collection: Collection, llm: LLM, options: AnswerOptions | None = None) -> None:
        self.col = collection
        self.llm = llm
        self.opt = options or AnswerOptions()
        if self.opt.prompt_style not in (*STYLES, "auto"):
            raise SovragError(f"prompt style {self.opt.prompt_style!r}: expected auto or one of {', '.join(STYLES)}")

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

    def retrieve(self, question: str, history: Sequence[Turn] = ()) -> Context:
        """The Context for `question`; `history` (earlier turns) only shapes a follow-up's search."""
        question = (question or "").strip()
        if not question:
            raise SovragError("question: empty; ask something")
        q_tokens = self.llm.count_tokens(question)
        if q_tokens + self.opt.max_tokens + 400 > self.llm.context_tokens:
            raise SovragError(
                f"question: {q_tokens} tokens, too long for the model's context of {self.llm.context_tokens} "
                "tokens; shorten it or use a model with a longer context (llm_context)"
            )
        o = self.opt
        return retrieve_context(
            self.col, question, retrieval_query(question, history), top_k=o.top_k, mode=o.mode, filters=o.filters,
            max_chunks_per_doc=o.max_chunks_per_doc, budget_tokens=self.budget(), count_tokens=self.llm.count_tokens,
            compress_sentences=o.compress, compress_floor=o.compress_floor, keep_whole=o.compress_keep_whole,
        )

    def prepare(self, question: str, history: Sequence[Turn] = (), context: Context | None = None) -> Prepared:
        """The prompt for `question` and the decision whether to abstain before generating."""
        ctx = context if context is not None else self.retrieve(question, history)
        reason = ""
        if not ctx.hits:
            reason = "the collection has no passage matching the question"
        elif ctx.relevance < self.opt.min_relevance:
            reason = (f"no retrieved passage is relevant enough (best similarity {ctx.relevance:.2f} < "
                      f"{self.opt.min_relevance:.2f})")
        elif ctx.coverage < self.opt.min_coverage:
            reason = (f"no retrieved passage covers the question (at most {ctx.coverage:.0%} of its terms, "
                      f"needs {self.opt.min_coverage:.0%})")
        messages = build_messages(ctx.question, ctx.sources, self.style(), context_turns(history)) if ctx.hits else []
        return Prepared(ctx, messages, reason)

    def finish(self, prep: Prepared, gen: Generation | None, timings: dict[str, float] | None = None) -> Answer:
        """Verify the generation against the sources (or abstain) into the Answer."""
        t0 = time.perf_counter()
        ctx = prep.context
        timings = {**ctx.timings, **(timings or {})}
        draft = gen.text.strip() if gen else ""
        answer = Answer(ctx.question, "", [], ctx.sources, abstained=False, draft=draft, model=self.llm.name,
                        prompt_tokens=gen.prompt_tokens if gen else 0,
                        completion_tokens=gen.completion_tokens if gen else 0,
                        finish_reason=(gen.finish_reason or "") if gen else "", engine=dict(gen.timings) if gen else {})
        if gen is not None:
            timings.setdefault("generate_s", gen.seconds)
        closest = sorted(ctx.sources, key=lambda s: -s.relevance)[:3]
        if prep.abstain_reason:
            return self._abstain(answer, prep.abstain_reason, closest, timings)
        if not draft or ABSTAIN_TEXT.lower().rstrip(".") in draft.lower() or (
            _ABSTAIN_PATTERNS.search(draft) and len(draft) < 200
        ):
            return self._abstain(answer, "the model found no answer in the sources", closest, timings)
        answer.sentences = verify(draft, ctx.evidence, self.col.embedder)
        claims = [s for s in answer.sentences if s.citations or not s.supported]
        if not any(s.supported and s.citations for s in claims):
            answer.abstain_reason = "no sentence of the model's answer is supported by the sources"
            return self._abstain(answer, answer.abstain_reason, closest, timings)
        answer.text = " ".join(_render(s) for s in answer.sentences)
        answer.contradictions = find_contradictions(
            ctx.sources, {e.number: e.sentences for e in ctx.evidence}, {e.number: e.vectors for e in ctx.evidence},
            ctx.question_vector,
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

    # ------------------------------------------------------------------ the journey
    def params(self) -> GenerationParams:
        p = self.opt.params
        return GenerationParams(max_tokens=self.opt.max_tokens, temperature=p.temperature, seed=p.seed, stop=p.stop,
                                extra=p.extra)

    def stream(self, question: str, history: Sequence[Turn] = (),
               context: Context | None = None) -> Iterator[str | Answer]:
        """Text deltas as the model writes them, then the verified Answer as the last item.

        Answer.timings: retrieve_s and compress_s (when retrieved here), first_token_s (from the start of this
        call), generate_s, verify_s, total_s."""
        t0 = time.perf_counter()
        prep = self.prepare(question, history, context)
        timings: dict[str, float] = {}
        gen = None
        if not prep.abstain_reason:
            t_gen = time.perf_counter()
            events = self.llm.stream(prep.messages, self.params())
            try:
                for ev in events:
                    if ev.done is not None:
                        gen = ev.done
                    elif ev.delta:
                        timings.setdefault("first_token_s", time.perf_counter() - t0)
                        yield ev.delta
            finally:
                close = getattr(events, "close", None)
                if close is not None:  # a consumer that stopped early stops the model at once
                    close()
            timings["generate_s"] = time.perf_counter() - t_gen
        ans = self.finish(prep, gen, timings)
        ans.timings["total_s"] = round(time.perf_counter() - t0, 4)
        yield ans

    def answer(self, question: str, history: Sequence[Turn] = (), context: Context | None = None) -> Answer:
        *_, last = self.stream(question, history, context)
        assert isinstance(last, Answer)
        return last


def _render(s: AnswerSentence) -> str:
    if s.citations:
        return s.text + "".join(f"[{c.source}]" for c in s.citations)
    return s.text if s.supported else f"{s.text} [unsupported]"
