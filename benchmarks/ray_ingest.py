"""Ingestion throughput on a local Ray cluster with one and with two worker nodes, next to a local run.

The corpus is N HaluEval-QA knowledge passages written as text files (real text, one short document each).
Three configurations ingest it into fresh collections of the embedded store, in alternating rounds so machine
noise falls on all alike: `local` (this process, onnxruntime on all cores), `ray 1 node` (a Ray cluster of one
node with one CPU: one Preparer actor) and `ray 2 nodes` (a head and a second node, one CPU each: two actors).
Chunks per second of wall time, end to end (walk, hash, parse, chunk, embed, write).

    .venv/bin/python benchmarks/ray_ingest.py --passages 600 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import datasets as data  # noqa: E402

from sovrag.collection import open_collection  # noqa: E402
from sovrag.ingest.sync import ingest  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "ray_ingest.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passages", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    from ray.cluster_utils import Cluster

    halu = data.load_all()["halueval"]
    with tempfile.TemporaryDirectory(prefix="sovrag-ray-") as tmp_s:
        tmp = Path(tmp_s)
        corpus = tmp / "corpus"
        corpus.mkdir()
        for i, p in enumerate(halu.passages[: args.passages]):
            (corpus / f"p{i:05d}.txt").write_text(p.text, encoding="utf-8")
        base = data.test_settings()
        one = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        two = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        two.add_node(num_cpus=1)
        two.wait_for_nodes()
        configs = {"local": None, "ray 1 node": one.address, "ray 2 nodes": two.address}
        rates: dict[str, list[float]] = {k: [] for k in configs}
        chunks = 0
        for r in range(args.rounds):
            for label, address in list(configs.items())[:: 1 if r % 2 == 0 else -1]:
                s = base.with_overrides(store=f"qdrant-edge:{tmp}/store-{r}-{label.replace(' ', '-')}")
                with open_collection(s, "bench", create=True) as col:
                    t = time.perf_counter()
                    rep = ingest(s, col, [corpus], ray=address)
                    secs = time.perf_counter() - t
                chunks = rep.chunks_written
                rates[label].append(chunks / secs)
                print(f"round {r + 1} {label}: {chunks} chunks in {secs:.1f} s = {chunks / secs:.1f} chunks/s "
                      f"({len(rep.failed)} failed)", flush=True)
        one.shutdown()
        two.shutdown()
    rows = {k: {"chunks_per_s_median": round(statistics.median(v), 1), "runs": [round(x, 1) for x in v]}
            for k, v in rates.items()}
    report = {"machine": data.machine(), "command": " ".join(["benchmarks/ray_ingest.py", *sys.argv[1:]]),
              "files": args.passages, "chunks": chunks, "results": rows,
              "ratio 2 nodes / 1 node": round(rows["ray 2 nodes"]["chunks_per_s_median"]
                                              / rows["ray 1 node"]["chunks_per_s_median"], 3),
              "ratio 2 nodes / local": round(rows["ray 2 nodes"]["chunks_per_s_median"]
                                             / rows["local"]["chunks_per_s_median"], 3)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
