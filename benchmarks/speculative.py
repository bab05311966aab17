"""Speculative decoding (n-gram / prompt lookup) vs plain decoding in embedded llama.cpp, side by side.

The prompts are sovrag's own: a collection of the example documents plus the gold passages of 40 HaluEval-QA
questions (rows 9000-9039, never used to choose the n-gram settings; those were chosen on six example-document
questions), and for each question `AnswerPipeline.prepare` builds the prompt the answer would get (hybrid
retrieval, compression, the prompt template). Each model is loaded twice in one process, plain and with
speculation, and every prompt is run on both, alternating which goes first; temperature 0. Reported per model:
answer seconds (p50, and the median of per-prompt ratios), decode tokens/s, draft acceptance, and whether the two
outputs are identical.

    .venv/bin/python benchmarks/speculative.py [--models qwen2.5-coder-0.5b-instruct-q4_k_m ...] [--limit 50]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import datasets  # noqa: E402  (benchmarks/datasets.py)

from sovrag.answer import AnswerOptions, AnswerPipeline  # noqa: E402
from sovrag.collection import open_collection  # noqa: E402
from sovrag.config import Settings  # noqa: E402
from sovrag.generate import GenerationParams  # noqa: E402
from sovrag.generate.llamacpp import NGRAM_M, NGRAM_N, LlamaCppLLM  # noqa: E402
from sovrag.ingest.sync import ingest  # noqa: E402
from sovrag.models import registry  # noqa: E402

EXAMPLE_QUESTIONS = [
    "How many vacation days do new employees get?", "Can unused vacation days be carried over?",
    "What is the hotel limit per night?", "Which new features does firmware 4.2 add?",
    "How do I hand over the on-call pager?", "What is the maximum payload of the NW-7?",
    "How long must passwords be?", "Who approves travel expenses?", "What equipment does the company provide?",
    "What bugs were fixed in firmware 4.2?",
]
MODELS = ["qwen2.5-coder-0.5b-instruct-q4_k_m", "qwen2.5-coder-1.5b-instruct-q4_k_m"]


def prompts(data: Path, limit: int, llm: LlamaCppLLM) -> list[tuple[str, list]]:
    """(question, messages) built by sovrag's pipeline on a small real collection (`llm` counts the tokens;
    both models share Qwen2.5's tokenizer)."""
    halu = datasets.load("halueval")
    rows = halu.queries[9000:9000 + max(0, limit - len(EXAMPLE_QUESTIONS))]
    by_id = {p.id: p for p in halu.passages}
    docs = data / "docs"
    docs.mkdir(parents=True)
    for src in (ROOT / "examples" / "docs").iterdir():
        (docs / src.name).write_bytes(src.read_bytes())
    for q in rows:
        pid = next(iter(q.gold))
        (docs / f"halueval-{pid[:12]}.txt").write_text(by_id[pid].text)
    s = Settings(data_dir=data)
    out = []
    with open_collection(s, "bench", create=True) as col:
        ingest(s, col, [docs])

        pipeline = AnswerPipeline(col, llm, AnswerOptions())
        for question in EXAMPLE_QUESTIONS + [q.text for q in rows]:
            prep = pipeline.prepare(question)
            if prep.messages:
                out.append((question, prep.messages))
    return out[:limit]


def run_model(name: str, models_dir: Path, items: list[tuple[str, list]], threads: int,
              max_tokens: int) -> dict:
    path = registry.resolve_file(models_dir, name, "model.gguf", False)
    plain = LlamaCppLLM(path, f"llamacpp:{name}", context=4096, threads=threads, speculative="off")
    spec = LlamaCppLLM(path, f"llamacpp:{name}", context=4096, threads=threads, speculative="ngram")
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0, seed=42)
    rows = []
    for i, (question, messages) in enumerate(items):
        order = [("plain", plain), ("ngram", spec)]
        if i % 2:
            order.reverse()
        got = {}
        for label, llm in order:
            t0 = time.perf_counter()
            g = llm.chat(messages, params)
            got[label] = (g, time.perf_counter() - t0)
        (gp, sp), (gs, ss) = got["plain"], got["ngram"]
        rows.append({"question": question, "plain_s": sp, "ngram_s": ss, "tokens": gs.completion_tokens,
                     "plain_decode_tps": gp.timings.get("predicted_per_second"),
                     "ngram_decode_tps": gs.timings.get("predicted_per_second"),
                     "draft_n": gs.timings.get("draft_n", 0), "draft_accepted": gs.timings.get("draft_n_accepted", 0),
                     "identical": gp.text == gs.text,
                     **({} if gp.text == gs.text else {"plain_text": gp.text, "ngram_text": gs.text})})
        print(f"{name} {i + 1}/{len(items)}: plain {sp:.2f}s ngram {ss:.2f}s identical {gp.text == gs.text}",
              flush=True)
    drafts = sum(r["draft_n"] or 0 for r in rows)
    return {
        "model": name, "prompts": len(rows), "threads": threads, "max_tokens": max_tokens,
        "ngram": {"size_n": NGRAM_N, "size_m": NGRAM_M},
        "plain_answer_p50_s": statistics.median(r["plain_s"] for r in rows),
        "ngram_answer_p50_s": statistics.median(r["ngram_s"] for r in rows),
        "median_ratio": statistics.median(r["ngram_s"] / r["plain_s"] for r in rows),
        "total_ratio": sum(r["ngram_s"] for r in rows) / sum(r["plain_s"] for r in rows),
        "plain_decode_tps_p50": statistics.median(r["plain_decode_tps"] or 0 for r in rows),
        "ngram_decode_tps_p50": statistics.median(r["ngram_decode_tps"] or 0 for r in rows),
        "draft_tokens": drafts, "draft_accepted": sum(r["draft_accepted"] or 0 for r in rows),
        "acceptance": (sum(r["draft_accepted"] or 0 for r in rows) / drafts) if drafts else None,
        "identical": sum(r["identical"] for r in rows),
        "rows": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--threads", type=int, default=0, help="llama.cpp threads (0 = all cores)")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--models-dir", type=Path, default=Path.home() / ".cache" / "sovrag-test-models")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "speculative.json")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        (data).mkdir()
        (data / "models").symlink_to(a.models_dir, target_is_directory=True)
        counter = LlamaCppLLM(registry.resolve_file(a.models_dir, a.models[0], "model.gguf", False),
                              f"llamacpp:{a.models[0]}", threads=a.threads)
        items = prompts(data, a.limit, counter)
        counter.server = None  # type: ignore[assignment]  (frees the model before the measured ones load)
        del counter
        results = [run_model(m, a.models_dir, items, a.threads, a.max_tokens) for m in a.models]
    out = {"machine": datasets.machine(), "date": time.strftime("%Y-%m-%d"), "results": results}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=1))
    print("\n| model | prompts | plain p50 s | ngram p50 s | median ratio | total ratio | decode tok/s plain -> "
          "ngram | drafts accepted | identical |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        acc = f"{r['draft_accepted']}/{r['draft_tokens']} ({r['acceptance']:.0%})" if r["acceptance"] else "-"
        print(f"| {r['model']} | {r['prompts']} | {r['plain_answer_p50_s']:.2f} | {r['ngram_answer_p50_s']:.2f} | "
              f"{r['median_ratio']:.2f} | {r['total_ratio']:.2f} | {r['plain_decode_tps_p50']:.1f} -> "
              f"{r['ngram_decode_tps_p50']:.1f} | {acc} | {r['identical']}/{r['prompts']} |")


if __name__ == "__main__":
    main()
