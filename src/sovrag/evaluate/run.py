"""`sovrag eval`: answer every question of a dataset from a collection, then measure the answers.

Per sample: the full answer pipeline (as `sovrag ask`) gives the answer and the contexts the model saw;
a separate hybrid search gives the ranking the retrieval metrics are computed on; the judge LLM gives the
verdicts behind the RAGAS-compatible metrics. A metric that cannot apply to a sample (no reference, no
contexts, an abstention has no statements) is *skipped* with the reason; one whose judge failed is
*failed* with the error. Both are counted in the summary and listed per sample; neither is averaged in
as a number it is not.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sovrag.answer import AnswerOptions, AnswerPipeline
from sovrag.collection import Collection
from sovrag.evaluate import ragas
from sovrag.evaluate.answers import exact_match, token_f1
from sovrag.evaluate.dataset import Sample
from sovrag.evaluate.ir import hit_rate_at_k, mrr_at_k, ndcg_at_k, recall_at_k
from sovrag.evaluate.judge import Judge, JudgeError
from sovrag.generate import LLM
from sovrag.retrieve import search
from sovrag.text import content_terms
from sovrag.types import Answer, ScoredChunk

JUDGED = ("faithfulness", "answer_relevancy", "context_precision", "context_recall")
ANSWER = ("exact_match", "token_f1")
RETRIEVAL = ("ndcg", "recall", "mrr", "hit_rate")
#: A retrieved chunk counts as holding a reference context when it contains this share of its terms.
CONTEXT_MATCH = 0.5


@dataclass(frozen=True)
class EvalOptions:
    k: int = 10  # cut-off of the retrieval metrics
    metrics: tuple[str, ...] = JUDGED + ANSWER + RETRIEVAL
    strictness: int = 3  # questions regenerated per answer (ragas's default)
    answer: AnswerOptions = field(default_factory=AnswerOptions)

    def metric_names(self) -> list[str]:
        return [f"{m}@{self.k}" if m in RETRIEVAL else m for m in self.metrics]


@dataclass
class SampleResult:
    line: int
    id: str
    question: str
    reference: str | None
    answer: str = ""
    abstained: bool = False
    abstain_reason: str = ""
    contexts: list[str] = field(default_factory=list)
    context_sources: list[str] = field(default_factory=list)
    retrieved: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    verdicts: dict[str, Any] = field(default_factory=dict)
    answer_seconds: float = 0.0
    judge_seconds: float = 0.0
    judge_calls: int = 0


@dataclass
class MetricSummary:
    mean: float | None
    scored: int
    skipped: int
    failed: int
    median: float | None = None


@dataclass
class EvalResult:
    collection: str
    dataset: str
    llm: str
    judge: str | None
    options: dict[str, Any]
    samples: list[SampleResult]
    summary: dict[str, MetricSummary]
    dataset_errors: list[tuple[int, str]]
    seconds: float
    abstention_rate: float
    answer_seconds_per_sample: float
    judge_seconds_per_sample: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------ retrieval relevance
def _doc_key(hit: ScoredChunk, relevant: Sequence[str]) -> str:
    """The id this hit's document goes by in the sample's `relevant` list (file name, path or doc id)."""
    c = hit.chunk
    names = {c.doc_id, c.source, Path(c.source).name, Path(c.doc_id).name}
    return next((r for r in relevant if r in names), c.doc_id)


def _contains(context_terms: set[str], chunk_text: str) -> bool:
    if not context_terms:
        return False
    return len(context_terms & set(content_terms(chunk_text))) / len(context_terms) >= CONTEXT_MATCH


def retrieval_ranking(hits: Sequence[ScoredChunk], sample: Sample) -> tuple[list[str], set[str]] | None:
    """Ranked ids and the relevant ids for the retrieval metrics; None when the sample judges no relevance.

    With `relevant` documents the ranking is by document. With only `reference_contexts`, each hit is
    named after the first reference context it contains, so recall counts the reference contexts found.
    """
    if sample.relevant:
        return [_doc_key(h, sample.relevant) for h in hits], set(sample.relevant)
    if sample.reference_contexts:
        terms = [set(content_terms(c)) for c in sample.reference_contexts]
        ranked = []
        for h in hits:
            match = next((j for j, t in enumerate(terms) if _contains(t, h.chunk.text)), None)
            ranked.append(f"context:{match}" if match is not None else f"chunk:{h.chunk.id}")
        return ranked, {f"context:{j}" for j in range(len(terms))}
    return None


# ------------------------------------------------------------------ one sample
class Evaluator:
    def __init__(self, collection: Collection, llm: LLM, judge: Judge | None, options: EvalOptions) -> None:
        self.col = collection
        self.pipeline = AnswerPipeline(collection, llm, options.answer)
        self.judge = judge
        self.opt = options
        self.wanted = set(options.metrics)

    def run_sample(self, sample: Sample) -> SampleResult:
        r = SampleResult(sample.line, sample.id, sample.question, sample.reference)
        t0 = time.perf_counter()
        ans: Answer = self.pipeline.answer(sample.question)
        r.answer_seconds = time.perf_counter() - t0
        r.answer, r.abstained, r.abstain_reason = ans.text, ans.abstained, ans.abstain_reason
        r.contexts = [s.text for s in ans.sources]
        r.context_sources = [Path(s.chunk.source).name for s in ans.sources]
        self._retrieval(sample, r)
        self._answer_metrics(sample, r, ans)
        if self.judge is not None:
            calls, seconds = self.judge.stats.calls, self.judge.stats.seconds
            self._judged(sample, r, ans)
            r.judge_calls = self.judge.stats.calls - calls
            r.judge_seconds = self.judge.stats.seconds - seconds
        else:
            for m in JUDGED:
                if m in self.wanted:
                    r.skipped[m] = "no judge LLM (--judge none)"
        return r

    def _retrieval(self, sample: Sample, r: SampleResult) -> None:
        names = [m for m in RETRIEVAL if m in self.wanted]
        if not names:
            return
        hits = search(self.col, sample.question, top_k=self.opt.k * 3, mode=self.opt.answer.mode,
                      filters=self.opt.answer.filters)
        r.retrieved = [Path(h.chunk.source).name for h in hits[: self.opt.k]]
        ranking = retrieval_ranking(hits, sample)
        for m in names:
            key = f"{m}@{self.opt.k}"
            if ranking is None:
                r.skipped[key] = "the sample names no relevant documents or reference contexts"
                continue
            ranked, relevant = ranking
            fn = {"ndcg": ndcg_at_k, "recall": recall_at_k, "mrr": mrr_at_k, "hit_rate": hit_rate_at_k}[m]
            r.scores[key] = fn(ranked, relevant, self.opt.k)

    def _answer_metrics(self, sample: Sample, r: SampleResult, ans: Answer) -> None:
        for m in ANSWER:
            if m not in self.wanted:
                continue
            if not sample.reference:
                r.skipped[m] = "the sample has no reference answer"
                continue
            # An abstention is a wrong answer for a question that has a reference.
            text = "" if ans.abstained else (ans.draft or ans.text)
            r.scores[m] = (exact_match if m == "exact_match" else token_f1)(text, sample.reference)

    def _judged(self, sample: Sample, r: SampleResult, ans: Answer) -> None:
        assert self.judge is not None
        j = self.judge
        steps: list[tuple[str, str, Callable[[], None]]] = []

        def faithfulness() -> None:
            statements = j.statements(sample.question, ans.draft or ans.text)
            r.verdicts["statements"] = statements
            if not statements:
                r.skipped["faithfulness"] = "the judge found no statement in the answer"
                return
            verdicts = j.nli(r.contexts, statements)
            r.verdicts["faithfulness"] = verdicts
            r.scores["faithfulness"] = ragas.faithfulness([v["verdict"] for v in verdicts])  # type: ignore[assignment]

        def relevancy() -> None:
            generated = [j.question_for(ans.draft or ans.text, seed=i) for i in range(self.opt.strictness)]
            r.verdicts["answer_relevancy"] = [{"question": q, "noncommittal": n} for q, n in generated]
            emb = self.col.embedder
            score = ragas.answer_relevancy(emb.embed([sample.question])[0], emb.embed([q for q, _ in generated]),
                                           [n for _, n in generated])
            r.scores["answer_relevancy"] = score  # type: ignore[assignment]

        def precision() -> None:
            verdicts = j.context_useful(sample.question, r.contexts, sample.reference or "")
            r.verdicts["context_precision"] = verdicts
            r.scores["context_precision"] = ragas.context_precision([v["verdict"] for v in verdicts])  # type: ignore[assignment]

        def recall() -> None:
            classes = j.attribution(sample.question, r.contexts, sample.reference or "")
            r.verdicts["context_recall"] = classes
            r.scores["context_recall"] = ragas.context_recall([c["attributed"] for c in classes])  # type: ignore[assignment]

        no_ctx = "the answer had no retrieved contexts" if not r.contexts else ""
        no_ref = "the sample has no reference answer" if not sample.reference else ""
        steps.append(("faithfulness", no_ctx or ("an abstention claims nothing to check" if ans.abstained else ""),
                      faithfulness))
        steps.append(("answer_relevancy", "", relevancy))
        steps.append(("context_precision", no_ref or no_ctx, precision))
        steps.append(("context_recall", no_ref or no_ctx, recall))
        for name, skip, fn in steps:
            if name not in self.wanted:
                continue
            if skip:
                r.skipped[name] = skip
                continue
            try:
                fn()
            except JudgeError as e:
                r.failed[name] = str(e)


# ------------------------------------------------------------------ the whole run
def summarize(samples: Sequence[SampleResult], names: Sequence[str]) -> dict[str, MetricSummary]:
    out = {}
    for m in names:
        values = [s.scores[m] for s in samples if m in s.scores and s.scores[m] is not None]
        out[m] = MetricSummary(
            mean=statistics.fmean(values) if values else None,
            median=statistics.median(values) if values else None,
            scored=len(values),
            skipped=sum(m in s.skipped for s in samples),
            failed=sum(m in s.failed for s in samples),
        )
    return out


def evaluate(collection: Collection, llm: LLM, judge: Judge | None, samples: Sequence[Sample],
             options: EvalOptions, dataset: str = "", dataset_errors: Sequence[tuple[int, str]] = (),
             progress: Callable[[SampleResult], None] | None = None) -> EvalResult:
    t0 = time.perf_counter()
    ev = Evaluator(collection, llm, judge, options)
    results = []
    for s in samples:
        res = ev.run_sample(s)
        results.append(res)
        if progress:
            progress(res)
    n = max(len(results), 1)
    return EvalResult(
        collection=collection.name, dataset=dataset, llm=llm.name, judge=judge.name if judge else None,
        options={"k": options.k, "strictness": options.strictness, "metrics": list(options.metrics),
                 "top_k": options.answer.top_k, "compress": options.answer.compress},
        samples=results, summary=summarize(results, options.metric_names()),
        dataset_errors=list(dataset_errors), seconds=time.perf_counter() - t0,
        abstention_rate=sum(r.abstained for r in results) / n,
        answer_seconds_per_sample=sum(r.answer_seconds for r in results) / n,
        judge_seconds_per_sample=(sum(r.judge_seconds for r in results) / n) if judge else None,
    )
