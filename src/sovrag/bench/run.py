"""`sovrag bench`: one run that measures a collection on this machine with the configured models.

1. ingestion chunks/s: a sample (the collection's own chunks re-chunked and re-embedded, or a given folder)
   ingested end to end into a throwaway embedded store in a temporary folder; the user's collection is
   only read;
2. search latency (question embedding + hybrid search), after warm-up;
3. end-to-end answers with top_k retrieved chunks, one at a time and streamed: time to first token, total
   time (citation verification included), prompt/decode tokens per second from the engine's timings, with
   llama.cpp's prompt cache off so every prompt is processed in full;
4. requests/s with K threads each asking full answers. A local llama.cpp model generates one answer at a
   time (as `sovrag serve` queues them), so K > 1 overlaps only retrieval, compression and verification
   with generation; the run says so rather than pretending to parallelism it does not have.

The abstention gates before generation are off during the run (every request is a full answer): a bench
measures the cost of answering, and questions drawn from the collection are answerable anyway.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from sovrag.answer import AnswerOptions, AnswerPipeline
from sovrag.collection import Collection
from sovrag.config import Settings
from sovrag.errors import BenchError
from sovrag.generate import LLM, GenerationParams
from sovrag.generate.shared import SharedLLM
from sovrag.machine import CpuMeter, machine_info
from sovrag.retrieve import search
from sovrag.types import Answer

SEARCH_WARMUP = 5


@dataclass(frozen=True)
class BenchOptions:
    questions: tuple[str, ...] = ()  # empty: drawn from the collection's chunks
    sample: int = 20  # questions drawn from the collection when none are given
    requests: int = 8  # full answers, timed one at a time and again under concurrency
    concurrency: int = 4
    searches: int = 100
    top_k: int = 20
    max_tokens: int = 128
    ingest_dir: Path | None = None
    ingest_chunks: int = 64  # stored chunks re-ingested when no ingest_dir is given
    seed: int = 0

    def check(self) -> None:
        for name in ("sample", "requests", "concurrency", "searches", "top_k", "max_tokens", "ingest_chunks"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise BenchError(f"{name.replace('_', '-')}={value!r}: must be a whole number of at least 1")
        if self.top_k > 50:
            raise BenchError(f"top-k={self.top_k}: at most 50 chunks fit an answer prompt")
        if self.ingest_dir is not None and not self.ingest_dir.exists():
            raise BenchError(f"ingest-dir {self.ingest_dir}: no such file or folder")


def percentiles(values: Sequence[float], scale: float = 1.0) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "mean": None, "max": None}
    a = np.asarray(values, dtype=float) * scale
    return {"n": len(a), "p50": round(float(np.percentile(a, 50)), 4), "p95": round(float(np.percentile(a, 95)), 4),
            "mean": round(float(a.mean()), 4), "max": round(float(a.max()), 4)}


# ---------------------------------------------------------------- 1. ingestion
def measure_ingest(settings: Settings, col: Collection, opt: BenchOptions) -> dict[str, Any]:
    from sovrag.bench.sample import sample_chunks
    from sovrag.ingest.sync import Ingestor
    from sovrag.store import open_backend

    with tempfile.TemporaryDirectory(prefix="sovrag-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if opt.ingest_dir is not None:
            corpus, what = opt.ingest_dir, f"folder {opt.ingest_dir}"
        else:
            chunks = sample_chunks(col, opt.ingest_chunks, opt.seed)
            corpus = tmp / "corpus"
            corpus.mkdir()
            by_doc: dict[str, list] = {}
            for c in chunks:
                by_doc.setdefault(c.doc_id, []).append(c)
            for i, doc_chunks in enumerate(by_doc.values()):  # one text file per document, chunks in order
                text = "\n\n".join(c.text for c in sorted(doc_chunks, key=lambda c: c.index))
                (corpus / f"doc{i:04d}.txt").write_text(text, encoding="utf-8")
            what = f"{len(chunks)} stored chunks of {len(by_doc)} documents, re-chunked and re-embedded"
        backend = open_backend("qdrant-edge", tmp)
        store = backend.create("bench-ingest", col.embedder.dim, {"embedder": col.embedder.name})
        temp = Collection("bench-ingest", store, col.embedder, backend.meta("bench-ingest"), backend)
        try:
            col.embedder.embed(["warm up the embedder"])
            report = Ingestor(settings, temp).run([corpus])
        finally:
            temp.close()
    if report.chunks_written == 0:
        reasons = "; ".join(f"{s}: {r}" for s, r in report.failed[:3]) or "no supported files"
        raise BenchError(f"ingestion sample ({what}): no chunk was written ({reasons})")
    return {"what": what, "store": "qdrant-edge (temporary)", "files": len(report.added),
            "failed": len(report.failed), "chunks": report.chunks_written, "seconds": round(report.seconds, 3),
            "chunks_per_s": round(report.chunks_written / max(report.seconds, 1e-9), 2)}


# ---------------------------------------------------------------- 2. search
def measure_search(col: Collection, questions: Sequence[str], opt: BenchOptions) -> dict[str, Any]:
    for q in questions[:SEARCH_WARMUP]:
        search(col, q, top_k=opt.top_k, mode="hybrid")
    embed_s, search_s, hits = [], [], []
    for i in range(opt.searches):
        q = questions[i % len(questions)]
        t0 = time.perf_counter()
        col.embedder.embed([q])
        embed_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        found = search(col, q, top_k=opt.top_k, mode="hybrid")
        search_s.append(time.perf_counter() - t0)
        hits.append(len(found))
    return {"mode": "hybrid", "top_k": opt.top_k, "latency_ms": percentiles(search_s, 1000),
            "embed_question_ms": percentiles(embed_s, 1000), "hits_mean": round(float(np.mean(hits)), 2),
            "samples_ms": [round(s * 1000, 3) for s in search_s]}


# ---------------------------------------------------------------- 3./4. answers
def answer_once(pipeline: AnswerPipeline, question: str) -> dict[str, Any]:
    """One full answer through the question journey (retrieve, then `AnswerPipeline.stream` on that Context),
    timed from the timings the journey records."""
    t0 = time.perf_counter()
    context = pipeline.retrieve(question)
    *_, answer = pipeline.stream(question, context=context)
    end = time.perf_counter()
    assert isinstance(answer, Answer)
    t, tm = answer.timings, answer.engine
    prepare_s = t.get("retrieve_s", 0.0) + t.get("compress_s", 0.0)
    first = t.get("first_token_s")  # from the start of retrieval (the stream counts the context's time)
    return {
        "question": question, "retrieved": len(context.hits), "sources": len(answer.sources),
        "generated": "generate_s" in t, "abstained": answer.abstained,
        "prepare_s": round(prepare_s, 4), "ttft_s": round(first, 4) if first is not None else None,
        "llm_first_token_s": round(first - prepare_s, 4) if first is not None else None,
        "generate_s": round(t.get("generate_s", 0.0), 4), "verify_s": round(t.get("verify_s", 0.0), 4),
        "total_s": round(end - t0, 4),
        "prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens,
        # engine timings (llama.cpp): prompt_n excludes prompt tokens reused from its cache
        "prompt_n": tm.get("prompt_n"), "prompt_ms": tm.get("prompt_ms"),
        "predicted_n": tm.get("predicted_n"), "predicted_ms": tm.get("predicted_ms"),
    }


def token_rates(rows: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """Tokens per second of the LLM: prompt processing, decoding, and both over the whole generation."""
    gen = [r for r in rows if r["generated"] and r["completion_tokens"] > 0]
    if not gen:
        return {"prefill_tokens_per_s": None, "decode_tokens_per_s": None, "tokens_per_s": None,
                "completion_tokens_per_s": None}
    gen_s = sum(r["generate_s"] for r in gen)
    engine = [r for r in gen if r["prompt_ms"] and r["predicted_ms"] and r["prompt_n"] and r["predicted_n"]]
    if engine:
        prefill = sum(r["prompt_n"] for r in engine) / (sum(r["prompt_ms"] for r in engine) / 1000)
        decode = sum(r["predicted_n"] for r in engine) / (sum(r["predicted_ms"] for r in engine) / 1000)
    else:  # a host without engine timings: split at the first token
        first = sum(r["llm_first_token_s"] or 0.0 for r in gen)
        prefill = sum(r["prompt_tokens"] for r in gen) / first if first > 0 else None
        rest = gen_s - first
        decode = sum(max(r["completion_tokens"] - 1, 0) for r in gen) / rest if rest > 0 else None
    return {
        "prefill_tokens_per_s": round(prefill, 2) if prefill else None,
        "decode_tokens_per_s": round(decode, 2) if decode else None,
        "tokens_per_s": round(sum(r["prompt_tokens"] + r["completion_tokens"] for r in gen) / gen_s, 2),
        "completion_tokens_per_s": round(sum(r["completion_tokens"] for r in gen) / gen_s, 2),
    }


def summarize_answers(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    gen = [r for r in rows if r["generated"]]
    return {
        "n": len(rows), "generated": len(gen), "abstained": sum(r["abstained"] for r in rows),
        "retrieved_mean": round(float(np.mean([r["retrieved"] for r in rows])), 2),
        "ttft_s": percentiles([r["ttft_s"] for r in gen if r["ttft_s"] is not None]),
        "total_s": percentiles([r["total_s"] for r in rows]),
        "prompt_tokens_mean": round(float(np.mean([r["prompt_tokens"] for r in gen])), 1) if gen else None,
        "completion_tokens_mean": round(float(np.mean([r["completion_tokens"] for r in gen])), 1) if gen else None,
        "overhead_s_mean": round(float(np.mean([r["total_s"] - r["generate_s"] for r in gen])), 4) if gen else None,
        **token_rates(rows),
    }


def measure_concurrency(pipeline: AnswerPipeline, questions: Sequence[str], opt: BenchOptions) -> dict[str, Any]:
    errors: list[str] = []

    def one(q: str) -> dict[str, Any] | None:
        try:
            return answer_once(pipeline, q)
        except Exception as e:  # noqa: BLE001 - a failed request is counted and reported, not fatal
            errors.append(f"{type(e).__name__}: {e}")
            return None

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=opt.concurrency, thread_name_prefix="bench") as pool:
        # questions not asked in the one-at-a-time phase (when there are enough): a host that caches
        # prompts would otherwise answer repeats from its cache
        todo = [questions[(opt.requests + i) % len(questions)] for i in range(opt.requests)]
        results = list(pool.map(one, todo))
    wall = time.perf_counter() - t0
    rows = [r for r in results if r is not None]
    if not rows:
        raise BenchError(f"concurrency {opt.concurrency}: every request failed ({errors[0]})")
    latency = summarize_answers(rows)
    return {"concurrency": opt.concurrency, "requests": opt.requests, "completed": len(rows), "errors": len(errors),
            "error_examples": errors[:3], "wall_s": round(wall, 3), "requests_per_s": round(len(rows) / wall, 4),
            "ttft_s": latency["ttft_s"], "total_s": latency["total_s"],
            "completion_tokens_per_s": round(sum(r["completion_tokens"] for r in rows) / wall, 2),
            "per_request": rows}


# ---------------------------------------------------------------- the run
def check_collection(col: Collection) -> int:
    """The collection's chunk count; an empty collection cannot be measured (checked before loading a model)."""
    count = col.store.count()
    if count == 0:
        raise BenchError(f"collection {col.name!r}: is empty; ingest documents into it first")
    return count


def run_bench(settings: Settings, col: Collection, llm: LLM, opt: BenchOptions,
              progress: Callable[[str], None] = lambda step: None) -> dict[str, Any]:
    from sovrag.bench.sample import questions_from_collection

    opt.check()
    count = check_collection(col)
    started = datetime.now(UTC)
    machine = machine_info()
    progress("drawing questions")
    questions = list(opt.questions) or questions_from_collection(col, max(opt.sample, 2 * opt.requests), opt.seed)
    contention: dict[str, float | None] = {}
    progress("ingestion throughput")
    meter = CpuMeter()
    ingest = measure_ingest(settings, col, opt)
    contention["ingest"] = meter.other_cores_busy()
    progress("search latency")
    meter = CpuMeter()
    search_result = measure_search(col, questions, opt)
    contention["search"] = meter.other_cores_busy()

    local = llm.name.startswith("llamacpp:")
    model: LLM = SharedLLM(llm) if local else llm
    # llama.cpp keeps earlier prompts in a cache and reuses them: off, so no request profits from another
    # (an OpenAI-compatible host may reject the unknown field, so it is sent to the local model only)
    params = GenerationParams(extra={"cache_prompt": False}) if local else GenerationParams()
    # the settings' verification and reranking, as `ask` and the server run them; no gate refuses a question
    options = AnswerOptions.of(settings, top_k=opt.top_k, max_tokens=opt.max_tokens, min_relevance=0.0,
                               min_coverage=0.0, min_answerable=0.0, params=params)
    pipeline = AnswerPipeline(col, model, options)
    progress("warming up the model")
    answer_once(pipeline, "What is this collection about?")  # not a timed question: no cache hit later
    rows = []
    meter = CpuMeter()
    for i in range(opt.requests):
        progress(f"answers one at a time ({i + 1}/{opt.requests})")
        rows.append(answer_once(pipeline, questions[i % len(questions)]))
    contention["answers"] = meter.other_cores_busy()
    answers = summarize_answers(rows)
    if not answers["generated"] or not answers["tokens_per_s"]:
        raise BenchError(f"no request produced any tokens with {llm.name}; check the model with `sovrag ask`")
    progress(f"{opt.requests} answers with {opt.concurrency} concurrent clients")
    meter = CpuMeter()
    conc = measure_concurrency(pipeline, questions, opt)
    contention["concurrency"] = meter.other_cores_busy()

    notes = [f"Questions: {'given' if opt.questions else 'drawn from the first sentences of random chunks'} "
             f"({len(questions)}); abstention gates before generation off, so every request is a full answer"
             + ("; llama.cpp's prompt cache off, so every prompt is processed in full." if local else ".")]
    if len(questions) < 2 * opt.requests:
        notes.append(f"Only {len(questions)} questions for {2 * opt.requests} requests: some were asked twice.")
    if local:
        notes.append("The local llama.cpp model generates one answer at a time: with concurrency > 1, clients "
                     "queue for it and only retrieval, compression and verification overlap; requests/s is "
                     "bounded by 1 / generation time, and time to first token includes the wait.")
    if answers["retrieved_mean"] < opt.top_k:
        notes.append(f"{answers['retrieved_mean']} chunks retrieved per answer on average, not {opt.top_k}: the "
                     "pipeline keeps at most 3 chunks per document, and the collection has too few matching "
                     "documents for more.")
    busy = {phase: v for phase, v in contention.items() if v is not None and v >= 0.25}
    if busy:
        notes.append("Other processes competed for the CPUs (cores' worth they used: " +
                     ", ".join(f"{phase} {v}" for phase, v in busy.items()) + f", of {machine['cores']}): those "
                     "phases ran slower than on an idle machine; llama.cpp decoding suffers most when a "
                     "core it uses is taken.")
    return {
        "kind": "sovrag-bench", "version": 1, "date": started.isoformat(timespec="seconds"),
        "collection": col.name, "chunks": count,
        "machine": {**machine, "loadavg_1m_end": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
                    "other_cores_busy": contention},
        "models": {"embedder": col.embedder.name, "llm": llm.name, "llm_context": llm.context_tokens,
                   "llm_threads": settings.llm_threads or machine["cores"], "store": settings.store},
        "settings": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in opt.__dict__.items() if k != "questions"},
                     "questions_given": bool(opt.questions), "prompt_cache": not local},
        "ingest": ingest, "search": search_result,
        "answer": {**answers, "per_request": rows}, "concurrency": conc,
        "cost_inputs": {
            "tokens_per_s": answers["tokens_per_s"], "prefill_tokens_per_s": answers["prefill_tokens_per_s"],
            "decode_tokens_per_s": answers["decode_tokens_per_s"], "overhead_s": answers["overhead_s_mean"],
            "prompt_tokens_mean": answers["prompt_tokens_mean"],
            "completion_tokens_mean": answers["completion_tokens_mean"],
            "requests_per_s": conc["requests_per_s"], "llm": llm.name, "cpu": machine["cpu"],
            "cores": machine["cores"],
        },
        "notes": notes,
    }

