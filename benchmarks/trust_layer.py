"""`sovrag ask` before and after the trust layer (trained verifier, recalibrated abstention, yes/no answers).

Questions come only from documents in the verifier's held-out test split (sovrag.train.sources.split_of): N
HaluEval-QA questions and N BoolQ dev questions (lower-case, paraphrased web queries), answered from one index
of every HaluEval-QA and BoolQ passage, twice: as indexed (gold passage present) and with each question's gold
passage deleted from the index (gold removed).

    before: lexical verification, the question-term coverage gate, no reranker (the defaults before the trust
            layer)
    after:  the defaults: the trained verifier, the reranker (reorders the best 20, gates abstention on P(the best
            answers)), quoting the best source when no sentence of the model's answer is supported
    no-rerank, no-lexical-fallback, yes-no-lead (LLM log-odds + verifier, fitted on BoolQ dev): variants

Per run: token F1 and contains-answer (HaluEval), yes/no agreement with BoolQ's label (first word of the
answer; an abstention counts as a miss), citation precision (share of citations on the gold passage) and
recall (answered questions citing it), abstention with the gold present (all, and where the gold passage was
retrieved) and removed, share of answer sentences marked unsupported, seconds per answer and to first text.

    .venv/bin/python benchmarks/trust_layer.py --questions 100 [--llm quality] [--configs before after]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import answer_quality as AQ  # noqa: E402
import datasets as D  # noqa: E402

from sovrag.answer import AnswerOptions, AnswerPipeline  # noqa: E402
from sovrag.evaluate.answers import contains_answer, token_f1  # noqa: E402
from sovrag.generate import GenerationParams, create_llm  # noqa: E402
from sovrag.text import strip_citations  # noqa: E402
from sovrag.train.sources import split_of  # noqa: E402

#: The prompt cache stays on (llama.cpp's default, what `sovrag serve` runs with): within one question the yes/no
#: probe and the answer share their prompt; across questions only the system prompt is shared.
PARAMS = GenerationParams()
CONFIGS = {
    # the defaults before the trust layer: lexical verification, the question-term coverage gate, no reranker
    "before": dict(verify="lexical", min_coverage=0.5, rerank="off", quote_fallback=False),
    # the defaults now: the verifier, the reranker and its answerability gate, quoting the best source
    "after": dict(),
    # variants of "after"
    "no-rerank": dict(rerank="off"),
    "no-lexical-fallback": dict(lexical_fallback=False),
    "yes-no-lead": dict(yes_no_lead=True),
}


def items(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for corpus in ("halueval", "boolq"):
        rows = list(D._rows(corpus))
        pool = []
        for r in rows:
            doc = (r.get("knowledge") or r.get("passage") or "").strip()
            if doc and split_of(doc) == "test":
                ref = r["right_answer"] if corpus == "halueval" else ("yes" if str(r["answer"]) == "True" else "no")
                pool.append({"corpus": corpus, "question": r["question"].strip(), "answer": ref,
                             "gold": D.passage_id(doc)})
        out.append(rng.sample(pool, min(n, len(pool))))
    # alternate the corpora, so that a run stopped early still has as many questions of each
    return [it for pair in zip(*out, strict=True) for it in pair]


def first_word(text: str) -> str:
    m = re.match(r"\s*([A-Za-z]+)", text)
    return m.group(1).lower() if m else ""


def answer_row(pipeline: AnswerPipeline, it: dict) -> dict:
    a = pipeline.answer(it["question"])
    cited = [c.source for s in a.sentences for c in s.citations]
    by_number = {s.number: s for s in a.sources}
    gold_cited = [n for n in cited if by_number[n].chunk.doc_id == it["gold"]]
    claims = [s for s in a.sentences if s.citations or not s.supported]
    row = {
        "corpus": it["corpus"], "question": it["question"], "reference": it["answer"], "answer": a.text,
        "draft": a.draft, "abstained": a.abstained, "reason": a.abstain_reason, "quoted": a.quoted,
        "answerable": a.answerable,
        "gold_retrieved": any(s.chunk.doc_id == it["gold"] for s in a.sources),
        "citations": len(cited), "gold_citations": len(gold_cited),
        "sentences": len(claims), "unsupported": sum(not s.supported for s in claims),
        "seconds": a.timings.get("total_s", 0.0), "first_text_s": a.timings.get("first_text_s", 0.0),
        "first_token_s": a.timings.get("first_token_s", 0.0), "verify_s": a.timings.get("verify_s", 0.0),
        "rerank_s": a.timings.get("rerank_s", 0.0),
    }
    if it["corpus"] == "halueval":
        shown = strip_citations(a.text.replace("[unsupported]", ""))
        row["f1"] = token_f1(shown, it["answer"]) if not a.abstained else 0.0
        row["contains"] = contains_answer(shown, it["answer"]) if not a.abstained else 0.0
    else:
        row["agree"] = float(not a.abstained and first_word(a.text) == it["answer"])
    return row


def run(runs: list[tuple[dict, Path, dict]], its: list[dict], phase: str) -> None:
    """Each question answered by every (LLM, configuration) in turn, so that all of them meet the same moments of a
    shared, noisy machine and a run stopped early still compares them on the same questions; the results files
    are rewritten every 10 questions."""
    for k, it in enumerate(its):
        for results, _, pipes in runs:
            for name, p in pipes.items():
                row = answer_row(p, it)
                results.setdefault(f"rows_{name}_{phase}", []).append(row)
                print(f"[{results['llm']} {name} {phase} {k + 1}/{len(its)}] {it['corpus']} abst={row['abstained']} "
                      f"{row['seconds']:.1f}s {row['answer'][:80]!r}", flush=True)
        if (k + 1) % 10 == 0 or k + 1 == len(its):
            for results, out, pipes in runs:
                for name in pipes:
                    results[f"{name}_{phase}"] = summary(results[f"rows_{name}_{phase}"])
                out.write_text(json.dumps(results, indent=2))


def summary(rows: list[dict]) -> dict:
    def mean(key, rs):
        vals = [r[key] for r in rs if key in r]
        return round(statistics.fmean(vals), 3) if vals else None

    out = {}
    for corpus in ("halueval", "boolq"):
        rs = [r for r in rows if r["corpus"] == corpus]
        if not rs:
            continue
        answered = [r for r in rs if not r["abstained"]]
        retrieved = [r for r in rs if r["gold_retrieved"]]
        cites = sum(r["citations"] for r in answered)
        sents = sum(r["sentences"] for r in answered)
        out[corpus] = {
            "n": len(rs), "abstention": mean("abstained", [{"abstained": float(r["abstained"])} for r in rs]),
            "abstention_gold_retrieved": round(sum(r["abstained"] for r in retrieved) / len(retrieved), 3)
            if retrieved else None,
            "gold_retrieved": round(len(retrieved) / len(rs), 3),
            "token_f1": mean("f1", rs), "contains_answer": mean("contains", rs), "yes_no_agreement": mean("agree", rs),
            "yes_no_agreement_answered": mean("agree", answered),
            "citation_precision": round(sum(r["gold_citations"] for r in answered) / cites, 3) if cites else None,
            "citation_recall": round(sum(r["gold_citations"] > 0 for r in answered) / len(answered), 3)
            if answered else None,
            "unsupported_sentence_share": round(sum(r["unsupported"] for r in answered) / sents, 3) if sents else None,
            "quoted": round(sum(r.get("quoted", False) for r in rs) / len(rs), 3),
            "seconds_mean": mean("seconds", rs), "rerank_s_mean": mean("rerank_s", rs),
            "first_text_s_mean": mean("first_text_s", answered),
            "first_token_s_mean": mean("first_token_s", answered), "verify_s_mean": mean("verify_s", answered),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=100, help="per corpus")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--llm", nargs="+", default=[None], help="LLM specs or profiles, answered side by side on one "
                    "index (default: the bundled 0.5B); e.g. fast fast+lora:/path/adapter.gguf")
    ap.add_argument("--configs", nargs="+", default=["before", "after"], choices=list(CONFIGS))
    ap.add_argument("--skip-removed", action="store_true")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--tag", default="", help="suffix of the results file")
    args = ap.parse_args()
    its = items(args.questions, args.seed)
    with AQ.union_index("trust") as (settings, col):
        runs = []
        for spec in args.llm:
            llm = create_llm(settings, spec)
            results = {"machine": D.machine(), "questions_per_corpus": args.questions, "seed": args.seed,
                       "index_passages": col.store.count(), "configs": {k: CONFIGS[k] for k in args.configs},
                       "llm": llm.name, "max_tokens": args.max_tokens}
            name = llm.name.split(":", 1)[-1].replace("/", "_").replace(":", "-")
            out = HERE / "results" / f"trust_layer_{name}{args.tag}.json"
            out.parent.mkdir(exist_ok=True)
            pipes = {k: AnswerPipeline(col, llm, AnswerOptions(max_tokens=args.max_tokens, params=PARAMS,
                                                               **CONFIGS[k]))
                     for k in args.configs}
            runs.append((results, out, pipes))
        run(runs, its, "present")
        if not args.skip_removed:
            for it in its:
                col.store.delete_document(it["gold"])
            run(runs, its, "removed")
    for results, _, _ in runs:
        print(json.dumps({k: v for k, v in results.items() if not k.startswith("rows_")}, indent=2))


if __name__ == "__main__":
    main()
