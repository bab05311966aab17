"""The answer pipeline: retrieve (a Context) -> prompt -> generate -> verify citations -> Answer.

Abstains instead of inventing: before generating when no retrieved passage is relevant enough, and after
generating when the model says the documents do not answer, or when no sentence of its answer is backed
by a source. Flags contradictions between sources on the asked fact.

Verification is sentence by sentence as the model writes (the groundedness verifier by default): `stream()`
yields each sentence once it is verified, already carrying its citations; an unsupported sentence is marked
or withheld (`unsupported`); nothing is yielded before the first supported sentence, so an answer that ends
up abstaining streams as the abstention text alone. The streamed text is the Answer's text, exactly.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sovrag.answer.contradict import find_contradictions
from sovrag.answer.followup import Turn, context_turns, retrieval_query
from sovrag.answer.options import AnswerOptions
from sovrag.answer.prompt import ABSTAIN_TEXT, STYLES, build_messages
from sovrag.answer.quote import quote
from sovrag.answer.streaming import SentenceBuffer
from sovrag.answer.verify import check_sentence
from sovrag.answer.yesno import decide, llm_log_odds
from sovrag.collection import Collection
from sovrag.errors import SovragError
from sovrag.generate import LLM, Generation, GenerationParams, Message
from sovrag.reranker import Reranker
from sovrag.reranker import load as load_reranker
from sovrag.retrieve.context import retrieve_context
from sovrag.text import split_sentences
from sovrag.types import Answer, AnswerSentence, Context, Source
from sovrag.verifier import Verifier, is_yes_no
from sovrag.verifier import load as load_verifier

_ABSTAIN_PATTERNS = re.compile(
    r"do(?:es)? not (?:answer|contain|mention|provide|say|specify)|don't (?:know|have)|cannot (?:answer|find)|"
    r"no (?:information|mention)|not (?:mentioned|provided|specified|stated) in|unable to (?:answer|find)",
    re.IGNORECASE,
)


@dataclass
class Prepared:
    """The prompt for one question, from its Context, and whether to abstain before generating."""

    context: Context
    messages: list[Message]
    abstain_reason: str = ""
    #: A yes/no question's leading "Yes."/"No." sentence, decided and cited by the verifier before generating.
    lead: AnswerSentence | None = None

    @property
    def question(self) -> str:
        return self.context.question

    @property
    def sources(self) -> list[Source]:
        return self.context.sources


def _refuses(text: str) -> bool:
    """Whether `text` says the documents do not answer (sovrag's own words or a model's way of saying it)."""
    return ABSTAIN_TEXT.lower().rstrip(".") in text.lower() or bool(_ABSTAIN_PATTERNS.search(text))


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
        if self.opt.unsupported not in ("mark", "withhold"):
            raise SovragError(f"unsupported {self.opt.unsupported!r}: expected mark or withhold")
        self._verifier: Verifier | None = None
        self._reranker: Reranker | None = None

    def reranker(self) -> Reranker | None:
        """The reranker, loaded on first use; None when reranking is off."""
        if self.opt.rerank == "off":
            return None
        if self._reranker is None:
            self._reranker = load_reranker(self.opt.rerank)
        return self._reranker

    def min_answerable(self, ctx: Context) -> float:
        """The answerability under which to abstain: the option, else the reranker's calibrated threshold."""
        return self.opt.min_answerable if self.opt.min_answerable is not None else ctx.answerable_threshold

    def verifier(self) -> Verifier | None:
        """The groundedness verifier, loaded on first use; None for lexical verification."""
        if self.opt.verify == "lexical":
            return None
        if self._verifier is None:
            self._verifier = load_verifier(self.opt.verify)
        return self._verifier

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
            reranker=self.reranker(),
        )

    def prepare(self, question: str, history: Sequence[Turn] = (), context: Context | None = None) -> Prepared:
        """The prompt for `question` and the decision whether to abstain before generating."""
        ctx = context if context is not None else self.retrieve(question, history)
        reason = ""
        if not ctx.hits:
            reason = "the collection has no passage matching the question"
        elif ctx.answerable is not None and ctx.answerable < self.min_answerable(ctx):
            reason = (f"no retrieved passage answers the question (reranker: P(answerable) {ctx.answerable:.2f} < "
                      f"{self.min_answerable(ctx):.2f})")
        elif ctx.relevance < self.opt.min_relevance:
            reason = (f"no retrieved passage is relevant enough (best similarity {ctx.relevance:.2f} < "
                      f"{self.opt.min_relevance:.2f})")
        elif ctx.coverage < self.opt.min_coverage:
            reason = (f"no retrieved passage covers the question (at most {ctx.coverage:.0%} of its terms, "
                      f"needs {self.opt.min_coverage:.0%})")
        order = self.opt.source_order
        messages = build_messages(ctx.question, ctx.sources, self.style(), context_turns(history),
                                  order=order) if ctx.hits else []
        lead = None
        if not reason and self.opt.yes_no_lead and ctx.hits and self.verifier() is not None \
                and is_yes_no(ctx.question):
            odds = llm_log_odds(self.llm, messages, self.params())
            gate = None if ctx.answerable is not None else {s.number: s.relevance for s in ctx.sources}
            lead = decide(ctx.question, ctx.evidence, self.verifier(), odds, gate)
            if lead:
                messages = build_messages(ctx.question, ctx.sources, self.style(), context_turns(history),
                                          lead.text.rstrip("."), order=order)
        return Prepared(ctx, messages, reason, lead)

    def check(self, sentence: str, prep: Prepared) -> AnswerSentence:
        """One sentence of the draft, verified against the sources the model saw. A refusal ("the documents do
        not say") claims nothing a source could support: it is never certified, whatever words it shares."""
        if _refuses(sentence):
            return AnswerSentence(sentence, (), False)
        return check_sentence(sentence, prep.context.evidence, self.col.embedder, self.verifier(), prep.question,
                              self.opt.lexical_fallback)

    def finish(self, prep: Prepared, gen: Generation | None, timings: dict[str, float] | None = None,
               sentences: list[AnswerSentence] | None = None) -> Answer:
        """The Answer from the generation: its sentences verified against the sources (`sentences`, when the
        stream already verified them), or an abstention."""
        t0 = time.perf_counter()
        ctx = prep.context
        timings = {**ctx.timings, **(timings or {})}
        draft = gen.text.strip() if gen else ""
        answer = Answer(ctx.question, "", [], ctx.sources, abstained=False, draft=draft, model=self.llm.name,
                        prompt_tokens=gen.prompt_tokens if gen else 0,
                        completion_tokens=gen.completion_tokens if gen else 0,
                        finish_reason=(gen.finish_reason or "") if gen else "", engine=dict(gen.timings) if gen else {},
                        answerable=None if ctx.answerable is None else round(ctx.answerable, 4))
        if gen is not None:
            timings.setdefault("generate_s", gen.seconds)
        closest = sorted(ctx.sources, key=lambda s: -s.relevance)[:3]
        if prep.abstain_reason:
            return self._abstain(answer, prep.abstain_reason, closest, timings)
        if sentences is None:
            sentences = ([prep.lead] if prep.lead else []) + [self.check(x, prep) for x in self.draft_sentences(
                draft, prep)]
        model_abstained = not draft or (_refuses(draft) and len(draft) < 200) or ABSTAIN_TEXT.lower().rstrip(".") \
            in draft.lower()
        drafted = [s for s in sentences if s is not prep.lead and (s.citations or not s.supported)]
        if not any(s.supported and s.citations for s in drafted) and self._answerable(ctx):
            quoted = quote(ctx, prep.lead)
            if quoted is not None:
                # nothing was streamed yet unless a lead was: the model's own refusal need not be shown
                keep = sentences if prep.lead else [s for s in sentences if not model_abstained]
                sentences = [*keep, quoted]
                answer.quoted = True
        answer.sentences = sentences
        claims = [s for s in sentences if s.citations or not s.supported]
        if not any(s.supported and s.citations for s in claims):
            reason = ("the model found no answer in the sources" if model_abstained
                      else "no sentence of the model's answer is supported by the sources")
            return self._abstain(answer, reason, closest, timings)
        answer.text = self.render(sentences)
        answer.contradictions = find_contradictions(
            ctx.sources, {e.number: e.sentences for e in ctx.evidence}, {e.number: e.vectors for e in ctx.evidence},
            ctx.question_vector, self.verifier(),
        )
        answer.text += self.note(answer)
        timings["verify_s"] = timings.get("verify_s", 0.0) + time.perf_counter() - t0
        answer.timings = {k: round(v, 4) for k, v in timings.items()}
        return answer

    def _answerable(self, ctx: Context) -> bool:
        return self.opt.quote_fallback and ctx.answerable is not None and ctx.answerable >= self.min_answerable(ctx)

    def draft_sentences(self, draft: str, prep: Prepared) -> list[str]:
        out = split_sentences(draft)
        if out and prep.lead:
            out[0] = _drop_polarity(out[0])
        return [x for x in out if x]

    def render(self, sentences: list[AnswerSentence]) -> str:
        return " ".join(r for r in (self.render_one(s) for s in sentences) if r)

    def render_one(self, s: AnswerSentence) -> str:
        if not s.supported and self.opt.unsupported == "withhold" and (s.citations or s.text):
            return ""
        return _render(s)

    @staticmethod
    def note(answer: Answer) -> str:
        return "".join(f" Note: the sources disagree: [{c.source_a}] says {', '.join(c.values_a)}, "
                       f"[{c.source_b}] says {', '.join(c.values_b)}." for c in answer.contradictions)

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
        """Verified text as the model writes it, sentence by sentence, then the Answer as the last item; the
        deltas joined are exactly Answer.text.

        Answer.timings: retrieve_s and compress_s (when retrieved here), first_token_s (the model's first token,
        from the start of this call), first_text_s (the first verified text yielded), generate_s, verify_s
        (verification during and after generation), total_s. All from the start of retrieval: a `context` passed
        in brings its own retrieval time (retrieve_s, which includes reranking, and compress_s)."""
        t0 = time.perf_counter()
        if context is not None:
            t0 -= context.timings.get("retrieve_s", 0.0) + context.timings.get("compress_s", 0.0)
        prep = self.prepare(question, history, context)
        timings: dict[str, float] = {"verify_s": 0.0}
        gen = None
        shown: list[str] = []
        done: list[AnswerSentence] = [prep.lead] if prep.lead else []
        held = 0  # done[:held] are yielded; none is until one is supported with a citation

        def release() -> Iterator[str]:
            nonlocal held
            if not any(x.supported and x.citations for x in done):
                return
            for x in done[held:]:
                piece = self.render_one(x)
                if piece:
                    piece = (" " if shown else "") + piece
                    shown.append(piece)
                    timings.setdefault("first_text_s", time.perf_counter() - t0)
                    yield piece
            held = len(done)

        if not prep.abstain_reason:
            yield from release()
            buffer = SentenceBuffer()
            t_gen = time.perf_counter()
            events = self.llm.stream(prep.messages, self.params())
            first = True
            try:
                for ev in events:
                    if ev.done is not None:
                        gen = ev.done
                    elif ev.delta:
                        timings.setdefault("first_token_s", time.perf_counter() - t0)
                        for sentence in buffer.feed(ev.delta):
                            if first and prep.lead:
                                sentence = _drop_polarity(sentence)
                            first = False
                            if not sentence:
                                continue
                            t_v = time.perf_counter()
                            done.append(self.check(sentence, prep))
                            timings["verify_s"] += time.perf_counter() - t_v
                            yield from release()
            finally:
                close = getattr(events, "close", None)
                if close is not None:  # a consumer that stopped early stops the model at once
                    close()
            timings["generate_s"] = time.perf_counter() - t_gen
            t_v = time.perf_counter()
            for sentence in buffer.close():
                if first and prep.lead:
                    sentence = _drop_polarity(sentence)
                first = False
                if sentence:
                    done.append(self.check(sentence, prep))
            timings["verify_s"] += time.perf_counter() - t_v
        ans = self.finish(prep, gen, timings, done if not prep.abstain_reason else None)
        if ans.abstained:
            rest = ans.text
        else:
            rest = ans.text[len("".join(shown)):]
            assert ans.text.startswith("".join(shown)), "streamed text diverged from the answer"
        if rest:
            timings.setdefault("first_text_s", time.perf_counter() - t0)
            yield rest
        ans.timings["first_text_s"] = round(timings.get("first_text_s", time.perf_counter() - t0), 4)
        ans.timings["total_s"] = round(time.perf_counter() - t0, 4)
        yield ans

    def answer(self, question: str, history: Sequence[Turn] = (), context: Context | None = None) -> Answer:
        *_, last = self.stream(question, history, context)
        assert isinstance(last, Answer)
        return last


def _drop_polarity(sentence: str) -> str:
    """The draft's first sentence without its leading 'Yes'/'No' (the verifier's lead already says it)."""
    m = re.match(r"^\s*(?:yes|no)\b[\s,.:;!—-]*", sentence, re.IGNORECASE)
    if not m:
        return sentence
    rest = sentence[m.end():].strip()
    return rest[:1].upper() + rest[1:] if len(rest.split()) >= 3 else ""


def _render(s: AnswerSentence) -> str:
    if s.citations:
        return s.text + "".join(f"[{c.source}]" for c in s.citations)
    return s.text if s.supported else f"{s.text} [unsupported]"
