"""`sovrag tune` on this machine: wall time per step and in total, peak memory, base vs tuned (docs/benchmarks.md).

Runs the real command as a user would (a fresh process, `/usr/bin/time -v` for the peak resident memory of the
whole run) on collections that already exist in the data directory, then reads the run's saved report:

    .venv/bin/sovrag ingest examples/docs -c examples
    .venv/bin/python benchmarks/halueval_collection.py --passages 300 --out /tmp/halueval
    .venv/bin/sovrag ingest /tmp/halueval/passages -c halueval
    .venv/bin/python benchmarks/tune.py examples halueval [--base fast] [-- extra sovrag tune options]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOVRAG = ROOT / ".venv" / "bin" / "sovrag"
METRICS = ("f1", "contains_answer", "abstain_answerable", "abstain_unanswerable", "groundedness",
           "seconds_per_answer")


def data_dir() -> Path:
    from sovrag.config import load_settings

    return load_settings().data_dir


def run(collection: str, base: str, extra: list[str]) -> dict:
    name = f"bench-{collection}"
    cmd = ["/usr/bin/time", "-v", str(SOVRAG), "tune", "-c", collection, "--out", name, *(["--base", base] if base
                                                                                          else []), *extra]
    print(" ".join(cmd[2:]), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "140"})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"sovrag tune -c {collection} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    report = re.search(r"report: (\S+)", " ".join(proc.stdout.split()))
    results = json.loads((Path(report.group(1)).parent / "results.json").read_text()) if report else {}
    return {"collection": collection, "wall_s": round(wall, 1), "peak_rss_mb": round(int(rss.group(1)) / 1024)
            if rss else None, **results}


def table(runs: list[dict]) -> str:
    lines = ["| collection | chunks | questions kept | train examples (unanswerable) | held out | steps | s/step | "
             "data min | train min | total min | peak RSS MB |", "|---" * 11 + "|"]
    for r in runs:
        d, t = r["data"], r["training"]
        lines.append(f"| {r['collection']} | {d['chunks_in_collection']} | {d['questions_kept']} | "
                     f"{d['train_examples']} ({d['train_unanswerable']}) | {d['heldout_questions']} | {t['steps']} | "
                     f"{t['seconds_per_step']} | {t['data_seconds'] / 60:.1f} | {t['train_s'] / 60:.1f} | "
                     f"{r['wall_s'] / 60:.1f} | {r['peak_rss_mb']} |")
    lines += ["", "| collection | model | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 2) + "|"]
    for r in runs:
        for label, m in r["evaluation"].items():
            lines.append(f"| {r['collection']} | {label} | " + " | ".join("" if m.get(k) is None else f"{m[k]:.3f}"
                                                                         for k in METRICS) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("collections", nargs="+")
    ap.add_argument("--base", default="")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tune.json")
    args, extra = ap.parse_known_args()
    extra = [x for x in extra if x != "--"]
    runs = [run(c, args.base, extra) for c in args.collections]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps([{k: v for k, v in r.items() if k != "rows"} for r in runs], indent=1))
    print(table(runs))


if __name__ == "__main__":
    main()
