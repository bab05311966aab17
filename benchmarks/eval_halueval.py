"""`sovrag eval` on HaluEval-QA: all metrics with a local judge, and judge seconds per sample.

Builds (once, cached under benchmarks/.cache/halueval-data) a collection `halueval` holding every HaluEval-QA
knowledge passage plus every BoolQ dev passage as distractors, writes a seeded sample of HaluEval questions
as an eval dataset (reference = the right answer, reference_contexts = the knowledge passage, relevant =
its document id), then runs the real command line:

    sovrag --data-dir benchmarks/.cache/halueval-data eval DATASET -c halueval --llm SPEC --json --out DIR

    .venv/bin/python benchmarks/eval_halueval.py --questions 100 --llm fast
    .venv/bin/python benchmarks/eval_halueval.py --questions 20 --llm quality
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import datasets as D  # noqa: E402
from answer_quality import build_index  # noqa: E402

DATA = D.CACHE / "halueval-data"


def build_collection(data: Path) -> None:
    settings = D.test_settings().with_overrides(data_dir=data)
    data.mkdir(parents=True, exist_ok=True)
    if not (data / "models").exists():
        (data / "models").symlink_to(D.test_settings().models_dir, target_is_directory=True)
    from sovrag.store import open_backend

    backend = open_backend(settings.store, settings.data_dir)
    exists = backend.exists("halueval")
    backend.close()
    if exists:
        return
    passages = D.union([D.load("halueval"), D.load("boolq")]).passages
    build_index(settings, "halueval", passages).close()


def write_dataset(n: int, seed: int) -> Path:
    rows = list(D._rows("halueval"))
    picked = random.Random(seed).sample(range(len(rows)), n)
    path = D.CACHE / f"halueval-eval-{n}-seed{seed}.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for i in picked:
            r = rows[i]
            f.write(json.dumps({"id": f"halueval-{i}", "question": r["question"], "reference": r["right_answer"],
                                "reference_contexts": [r["knowledge"].strip()],
                                "relevant": [D.passage_id(r["knowledge"])]}) + "\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", type=int, default=100)
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--llm", default="fast")
    ap.add_argument("--data-dir", type=Path, default=DATA, help="another one to run two evaluations at once (the "
                    "embedded store lets one process open a collection)")
    ap.add_argument("--name", default="", help="results name (default eval_halueval_<llm>)")
    a = ap.parse_args()
    name = a.name or f"eval_halueval_{a.llm}"
    build_collection(a.data_dir)
    dataset = write_dataset(a.questions, a.seed)
    out = HERE / "results" / name
    cmd = [str(Path(sys.executable).parent / "sovrag"), "--data-dir", str(a.data_dir), "eval", str(dataset),
           "-c", "halueval", "--llm", a.llm, "--json", "--out", str(out)]
    print(" ".join(cmd), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    print(proc.stdout[-4000:], proc.stderr[-2000:], sep="\n")
    if proc.returncode not in (0, 3):
        raise SystemExit(f"sovrag eval failed with exit status {proc.returncode}")
    data = json.loads((out / "results.json").read_text())
    summary = {"command": " ".join(["sovrag", *cmd[1:]]), "seconds": round(time.perf_counter() - t0, 1),
               "machine": D.machine(), "llm": data["llm"], "judge": data["judge"], "questions": len(data["samples"]),
               "abstention_rate": data["abstention_rate"],
               "answer_seconds_per_sample": data["answer_seconds_per_sample"],
               "judge_seconds_per_sample": data["judge_seconds_per_sample"],
               "metrics": data["summary"]}
    (HERE / "results" / f"{name}.json").write_text(json.dumps(summary, indent=2))
    (out / "results.json").unlink()  # per-sample details stay in the report; the summary above is committed
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
