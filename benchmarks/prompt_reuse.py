"""Prompt reuse in embedded llama.cpp: time to first token with and without the slot's prefix cache, on sovrag's
own RAG prompts, for first questions, repeated questions and follow-ups.

llama.cpp keeps the last prompt of its slot in the KV cache and, with `cache_prompt` (its default, and sovrag's
outside `sovrag bench`), recomputes only what follows the longest common prefix with the new prompt. The prompts
are those of benchmarks/speculative.py (AnswerPipeline.prepare on the example documents + 40 HaluEval-QA gold
passages). The default model is loaded twice in one process, with `cache_prompt` on and off, and each step runs
on both, alternating which goes first, each instance keeping its own slot:

- first: the next question, after a different one (only the system prompt is a shared prefix);
- repeat: the same question again right after it;
- follow-up: "What else do the documents say about that?" after the question and its answer, built by the
  pipeline with the conversation (`prepare(question, history)`).

    .venv/bin/python benchmarks/prompt_reuse.py [--limit 20]
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
sys.path.insert(0, str(HERE))

import datasets  # noqa: E402
from speculative import prompts  # noqa: E402

from sovrag.answer import AnswerOptions, AnswerPipeline  # noqa: E402
from sovrag.answer.followup import Turn  # noqa: E402
from sovrag.collection import open_collection  # noqa: E402
from sovrag.config import Settings  # noqa: E402
from sovrag.generate import GenerationParams  # noqa: E402
from sovrag.generate.llamacpp import LlamaCppLLM  # noqa: E402
from sovrag.models import registry  # noqa: E402

MODEL = "qwen2.5-coder-0.5b-instruct-q4_k_m"
FOLLOW_UP = "What else do the documents say about that?"
RESULTS = HERE / "results" / "prompt_reuse.json"


def ttft(llm: LlamaCppLLM, messages: list, cache: bool, max_tokens: int) -> tuple[float, str, int]:
    """(seconds to the first token, the text, prompt tokens)."""
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0, seed=42, extra={"cache_prompt": cache})
    t0 = time.perf_counter()
    first = None
    for ev in llm.stream(messages, params):
        if ev.delta and first is None:
            first = time.perf_counter() - t0
        if ev.done is not None:
            return (first if first is not None else time.perf_counter() - t0), ev.done.text, ev.done.prompt_tokens
    raise RuntimeError("stream ended without a result")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    s0 = datasets.test_settings()
    path = registry.resolve_file(s0.models_dir, MODEL, "model.gguf", False)
    on = LlamaCppLLM(path, f"llamacpp:{MODEL}", context=4096)
    off = LlamaCppLLM(path, f"llamacpp:{MODEL}", context=4096)
    arms = {"cache on": (on, True), "cache off": (off, False)}
    rows: dict[str, dict[str, list[float]]] = {k: {a: [] for a in arms} for k in ("first", "repeat", "follow-up")}
    tokens: dict[str, list[int]] = {k: [] for k in rows}
    with tempfile.TemporaryDirectory(prefix="sovrag-reuse-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        (data / "models").symlink_to(s0.models_dir, target_is_directory=True)
        items = prompts(data, args.limit, on)
        s = Settings(data_dir=data)
        with open_collection(s, "bench") as col:
            pipeline = AnswerPipeline(col, on, AnswerOptions())
            for i, (question, messages) in enumerate(items):
                order = list(arms) if i % 2 == 0 else list(arms)[::-1]
                answers = {}
                for arm in order:
                    llm, cache = arms[arm]
                    t, text, n = ttft(llm, messages, cache, args.max_tokens)
                    rows["first"][arm].append(t)
                    answers[arm] = text
                tokens["first"].append(n)
                for arm in order:
                    llm, cache = arms[arm]
                    t, _, n = ttft(llm, messages, cache, args.max_tokens)
                    rows["repeat"][arm].append(t)
                tokens["repeat"].append(n)
                history = [Turn("user", question), Turn("assistant", answers["cache on"])]
                follow = pipeline.prepare(FOLLOW_UP, history).messages
                if not follow:
                    continue
                for arm in order:  # each slot holds this question's prompt again, as after answering it
                    llm, cache = arms[arm]
                    ttft(llm, messages, cache, args.max_tokens)
                    t, _, n = ttft(llm, follow, cache, args.max_tokens)
                    rows["follow-up"][arm].append(t)
                tokens["follow-up"].append(n)
                print(f"{i + 1}/{len(items)} " + "  ".join(
                    f"{k}: {rows[k]['cache on'][-1]:.2f}/{rows[k]['cache off'][-1]:.2f}s" for k in rows
                    if rows[k]["cache on"]), flush=True)
    report = {"machine": datasets.machine(), "command": " ".join(["benchmarks/prompt_reuse.py", *sys.argv[1:]]),
              "model": MODEL, "results": {}}
    for kind, arm_rows in rows.items():
        on_t, off_t = arm_rows["cache on"], arm_rows["cache off"]
        report["results"][kind] = {
            "prompts": len(on_t), "prompt_tokens_p50": statistics.median(tokens[kind]) if tokens[kind] else None,
            "ttft_p50_s cache on": round(statistics.median(on_t), 3),
            "ttft_p50_s cache off": round(statistics.median(off_t), 3),
            "median per-prompt ratio on/off": round(statistics.median(a / b for a, b in zip(on_t, off_t,
                                                                                           strict=True)), 3)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
