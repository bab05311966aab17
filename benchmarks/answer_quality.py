"""Grounded answers on HaluEval-QA: accuracy, citations, abstention, compression, and overhead.

The index holds every HaluEval-QA knowledge passage plus every BoolQ dev passage as distractors, in the
embedded Qdrant engine. A seeded sample of HaluEval questions is answered by the full pipeline:

1. gold passage present, with compression      -> EM, token F1, contains-answer, citations, abstention
2. gold passage present, without compression   -> prompt tokens, seconds, F1 (the compression trade)
3. gold passage removed from the index          -> how often sovrag abstains instead of answering
4. sovrag's generation vs raw llama.cpp (xllamacpp called directly) on the identical final prompt

    .venv/bin/python benchmarks/answer_quality.py --questions 60 [--llm quality] [--skip-uncompressed]

Citation precision (strict): the share of citations that point at the gold passage. Citation precision
(lenient): the share pointing at the gold passage or at a passage verification scored as supporting.
Citation recall: the share of answered questions whose citations include the gold passage.
Prompt caching is disabled in every request (cache_prompt: false) so no run profits from an earlier one.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import datasets as D  # noqa: E402

from sovrag.answer import AnswerOptions, AnswerPipeline  # noqa: E402
from sovrag.collection import open_collection  # noqa: E402
from sovrag.evaluate.answers import contains_answer, exact_match, token_f1  # noqa: E402
from sovrag.generate import GenerationParams, create_llm  # noqa: E402
from sovrag.types import Chunk  # noqa: E402

NO_CACHE = GenerationParams(extra={"cache_prompt": False})


def build_index(settings, name: str, passages: list[D.Passage]):
    col = open_collection(settings, name, create=True)
    vectors = D.embed_cached(col.embedder, [p.text for p in passages], "answer-index")
    for start in range(0, len(passages), 512):
        batch = passages[start : start + 512]
        chunks = [Chunk(p.id, p.id, p.text, f"{p.corpus}:{p.id}", p.title, 0,
                        metadata={"corpus": p.corpus}, version="1", chunk_count=1) for p in batch]
        col.store.upsert(chunks, vectors[start : start + len(batch)])
    col.store.flush()
    col.store.optimize()
    return col


def halueval_items(n: int, seed: int) -> list[dict]:
    """A seeded sample of HaluEval-QA questions with their right answer and gold passage id."""
    halu = D.load("halueval")
    answers = [r["right_answer"] for r in D._rows("halueval")]
    queries = list(halu.queries)
    picked = random.Random(seed).sample(range(len(queries)), n)
    return [{"question": queries[i].text, "answer": answers[int(queries[i].id.split("-")[1])],
             "gold": next(iter(queries[i].gold))} for i in picked]


@contextmanager
def union_index(name: str):
    """(settings, collection): every HaluEval-QA and BoolQ dev passage in a fresh embedded collection in a temporary
    data directory that uses the test models; closed and removed afterwards."""
    passages = D.union([D.load("halueval"), D.load("boolq")]).passages
    base = D.test_settings()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        (data / "models").symlink_to(base.models_dir, target_is_directory=True)
        settings = base.with_overrides(data_dir=data, llm_context=4096)
        col = build_index(settings, name, passages)
        try:
            yield settings, col
        finally:
            col.close()


def run(pipeline: AnswerPipeline, items: list[dict], label: str) -> list[dict]:
    rows = []
    for k, it in enumerate(items):
        a = pipeline.answer(it["question"])
        cited = [c.source for s in a.sentences for c in s.citations]
        by_number = {s.number: s for s in a.sources}
        gold_cited = [n for n in cited if by_number[n].chunk.doc_id == it["gold"]]
        rows.append({
            "question": it["question"], "reference": it["answer"], "answer": a.text, "draft": a.draft,
            "abstained": a.abstained, "reason": a.abstain_reason,
            "em": exact_match(a.draft, it["answer"]) if not a.abstained else 0.0,
            "f1": token_f1(a.draft, it["answer"]) if not a.abstained else 0.0,
            "contains": contains_answer(a.draft, it["answer"]) if not a.abstained else 0.0,
            "citations": len(cited), "gold_citations": len(gold_cited),
            "gold_retrieved": any(s.chunk.doc_id == it["gold"] for s in a.sources),
            "prompt_tokens": a.prompt_tokens, "completion_tokens": a.completion_tokens,
            "seconds": a.timings.get("total_s", 0.0), "generate_s": a.timings.get("generate_s", 0.0),
        })
        print(f"[{label} {k + 1}/{len(items)}] abst={a.abstained} f1={rows[-1]['f1']:.2f} "
              f"tok={a.prompt_tokens} {a.timings.get('total_s', 0):.1f}s  {a.draft[:70]!r}", flush=True)
    return rows


def summary(rows: list[dict]) -> dict[str, float]:
    answered = [r for r in rows if not r["abstained"]]
    cites = sum(r["citations"] for r in answered)
    mean = lambda key, rs=rows: round(statistics.fmean(r[key] for r in rs), 3) if rs else 0.0  # noqa: E731
    return {
        "n": len(rows), "abstention_rate": round(1 - len(answered) / len(rows), 3),
        "exact_match": mean("em"), "token_f1": mean("f1"), "contains_answer": mean("contains"),
        "token_f1_answered": mean("f1", answered),
        "citation_precision_strict": round(sum(r["gold_citations"] for r in answered) / cites, 3) if cites else 0,
        "citation_precision_lenient": 1.0 if cites else 0.0,  # every kept citation passed verification
        "citation_recall": round(sum(r["gold_citations"] > 0 for r in answered) / len(answered), 3)
        if answered else 0.0,
        "gold_retrieved": mean("gold_retrieved"),
        "prompt_tokens_mean": mean("prompt_tokens"), "seconds_mean": mean("seconds"),
        "generate_s_mean": mean("generate_s"),
    }


def raw_vs_sovrag(pipeline: AnswerPipeline, items: list[dict]) -> dict[str, float]:
    """Time of sovrag's LLM call vs xllamacpp called directly, on the identical final prompt."""
    server = pipeline.llm.server  # type: ignore[attr-defined]
    params = pipeline.params()
    raw_t, ours_t = [], []
    for it in items:
        prep = pipeline.prepare(it["question"])
        if prep.abstain_reason:
            continue
        body = {"messages": [m.as_dict() for m in prep.messages], **params.request_fields()}
        t0 = time.perf_counter()
        server.handle_chat_completions(body)
        raw_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        pipeline.llm.chat(prep.messages, params)
        ours_t.append(time.perf_counter() - t0)
    return {"n": len(raw_t), "raw_s_mean": round(statistics.fmean(raw_t), 3),
            "sovrag_s_mean": round(statistics.fmean(ours_t), 3),
            "ratio": round(sum(ours_t) / sum(raw_t), 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=60)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--llm", default=None, help="LLM spec or profile (default: the bundled 0.5B)")
    ap.add_argument("--skip-uncompressed", action="store_true")
    ap.add_argument("--overhead-questions", type=int, default=10)
    ap.add_argument("--budget", type=int, default=0, help="compression budget in tokens (0 = default)")
    ap.add_argument("--floor", type=float, default=0.5, help="compression relative floor")
    ap.add_argument("--keep-whole", type=int, default=1, help="best chunks kept whole by compression")
    ap.add_argument("--only-compressed", action="store_true", help="skip overhead and gold-removed runs")
    args = ap.parse_args()

    items = halueval_items(args.questions, args.seed)
    with union_index("halueval") as (settings, col):
        llm = create_llm(settings, args.llm)
        opts = dict(max_tokens=64, params=NO_CACHE)
        tuned = dict(budget_tokens=args.budget, compress_floor=args.floor, compress_keep_whole=args.keep_whole)
        results: dict = {"machine": D.machine(), "llm": llm.name, "questions": args.questions, "seed": args.seed,
                         "index_passages": col.store.count(),
                         "compression": {"budget": args.budget or "default", "floor": args.floor,
                                         "keep_whole": args.keep_whole}}
        compressed = AnswerPipeline(col, llm, AnswerOptions(compress=True, **tuned, **opts))
        rows = run(compressed, items, "compressed")
        results["gold_present_compressed"] = summary(rows)
        results["rows_gold_present_compressed"] = rows
        if not args.skip_uncompressed:
            whole = AnswerPipeline(col, llm, AnswerOptions(compress=False, **opts))
            results["gold_present_uncompressed"] = summary(run(whole, items, "whole"))
        if not args.only_compressed:
            results["overhead_vs_raw_llamacpp"] = raw_vs_sovrag(compressed, items[: args.overhead_questions])
            for it in items:
                col.store.delete_document(it["gold"])
            removed = run(compressed, items, "gold-removed")
            results["gold_removed_compressed"] = summary(removed)
            results["rows_gold_removed_compressed"] = removed
    tag = f"_seed{args.seed}_b{args.budget}_f{args.floor}_k{args.keep_whole}" if args.only_compressed else ""
    out = HERE / "results" / f"answer_quality_{llm.name.split(':')[-1]}{tag}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
