"""Search latency of sovrag's embedded store at 100k chunks, next to faiss HNSW at known recall.

The 100k chunks carry real text payloads (HaluEval-QA and BoolQ passages, cycled, so BM25 scores real
text) and one of two synthetic vector sets (384-d, fixed seed):

- ``random``: random unit vectors, with random unit query vectors. No cluster structure, so it is the
  hardest case for any HNSW graph: recall at default settings is low, and speed is compared at that
  (reported) recall.
- ``jittered``: each chunk's vector is the real all-MiniLM-L6-v2 embedding of its passage plus Gaussian
  noise of norm 0.5 (then re-normalised), so the 100k vectors are distinct but lie where real embeddings
  lie; queries are the real embeddings of the real questions. This is the realistic case.

Questions are real in both sets (their text drives BM25). Dense accuracy is recall@10 against exact
brute-force search, so speed is compared at known accuracy.

    .venv/bin/python benchmarks/search_latency.py [--chunks 100000] [--queries 500] [--vectors random jittered]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import qdrant_edge as qe

sys.path.insert(0, str(Path(__file__).resolve().parent))
import datasets as data  # noqa: E402

from sovrag.embed import create_embedder  # noqa: E402
from sovrag.store import SearchQuery, open_backend  # noqa: E402
from sovrag.store.base import DENSE  # noqa: E402
from sovrag.types import Chunk  # noqa: E402

DIM = 384
TOP_K = 10
#: Qdrant's HNSW defaults (m=16, ef_construct=100); search ef defaults to ef_construct (max with top_k).
QDRANT_M, QDRANT_EF_CONSTRUCT = 16, 100
JITTER = 0.5
RESULTS = Path(__file__).resolve().parent / "results" / "search_latency.json"


def normalize(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def jittered(corpora: dict, embedder, rng: np.random.Generator, chunks: int, picks: list[int]
             ) -> tuple[np.ndarray, np.ndarray]:
    """The realistic set: `chunks` vectors, each a union passage's real embedding (cycled) plus noise of norm
    JITTER, re-normalised; and the real embeddings of the union questions at `picks`."""
    union = corpora["union"]
    pv = np.concatenate([data.embed_cached(embedder, [p.text for p in corpora[c].passages], f"passages-{c}")
                         for c in data.CORPORA])
    by_id = dict(zip([p.id for c in data.CORPORA for p in corpora[c].passages], pv, strict=True))
    base = np.stack([by_id[p.id] for p in union.passages])
    noise = rng.standard_normal((chunks, DIM), dtype=np.float32) * (JITTER / np.sqrt(DIM))
    vectors = normalize(base[np.arange(chunks) % len(base)] + noise)
    qv = np.concatenate([data.embed_cached(embedder, [q.text for q in corpora[c].queries], f"queries-{c}")
                         for c in data.CORPORA])
    return vectors, qv[picks]


def percentiles(ms: list[float]) -> dict[str, float]:
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {"p50_ms": round(statistics.median(ms), 3), "p95_ms": round(q[94], 3),
            "mean_ms": round(statistics.fmean(ms), 3), "n": len(ms)}


def timed(fn: Callable[[int], object], n: int, warmup: int = 20) -> list[float]:
    for i in range(min(warmup, n)):
        fn(i)
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t) * 1000)
    return out


def recall(approx: list[list[int]], exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(e.tolist())) / TOP_K for a, e in zip(approx, exact, strict=True)]))


def run_set(vectors: np.ndarray, qvecs: np.ndarray, texts: list[str], qtexts: list[str],
            search_threads: int, args: argparse.Namespace) -> dict:
    import faiss

    n, nq = len(vectors), len(qvecs)
    ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"sovrag-bench/{i}")) for i in range(n)]
    row = {pid: i for i, pid in enumerate(ids)}
    out: dict = {}
    lat: dict[str, dict[str, float]] = {}
    nr = min(args.recall_queries, nq)
    exact = np.argsort(-(qvecs[:nr] @ vectors.T), axis=1)[:, :TOP_K]
    acc: dict[str, float] = {}

    with tempfile.TemporaryDirectory(prefix="sovrag-bench-") as tmp:
        backend = open_backend(f"qdrant-edge:{tmp}", Path(tmp))
        store = backend.create("latency", DIM, {"benchmark": "search_latency"})
        t = time.perf_counter()
        for start in range(0, n, args.batch):
            end = min(start + args.batch, n)
            chunks = [Chunk(id=ids[i], doc_id=f"doc{i}", text=texts[i % len(texts)], source="bench",
                            title="", index=0) for i in range(start, end)]
            store.upsert(chunks, vectors[start:end])
        t_upsert = time.perf_counter() - t
        t = time.perf_counter()
        store.optimize()
        t_opt = time.perf_counter() - t
        info = store.shard.info()
        out["edge_build"] = {"upsert_s": round(t_upsert, 1), "optimize_s": round(t_opt, 1),
                             "segments": info.segments_count,
                             "indexed_vectors (dense + sparse)": info.indexed_vectors_count}
        print(f"  edge: upsert {t_upsert:.1f}s, optimize {t_opt:.1f}s, {info.segments_count} segments", flush=True)

        for mode in ("hybrid", "dense", "bm25"):
            ms = timed(lambda i, m=mode: store.search(SearchQuery(qtexts[i], qvecs[i]), top_k=TOP_K, mode=m), nq)
            lat[f"sovrag edge {mode}"] = percentiles(ms)
            print(f"  edge {mode}: {lat[f'sovrag edge {mode}']}", flush=True)
        acc["sovrag edge dense"] = recall(
            [[row[h.chunk.id] for h in store.search(SearchQuery(qtexts[i], qvecs[i]), TOP_K, "dense")]
             for i in range(nr)], exact)

        # the engine's exact (brute-force) dense search, through the shard: the Store API has no switch
        def exact_edge(i: int) -> list:
            return store.shard.query(qe.QueryRequest(
                limit=TOP_K, query=qe.Query.Nearest(qvecs[i].tolist(), using=DENSE), with_payload=True,
                params=qe.SearchParams(exact=True)))
        lat["sovrag edge dense, exact=True"] = percentiles(timed(exact_edge, nq))
        acc["sovrag edge dense, exact=True"] = recall([[row[str(p.id)] for p in exact_edge(i)] for i in range(nr)],
                                                     exact)
        store.close()
        backend.close()

    faiss.omp_set_num_threads(search_threads)
    for m in (QDRANT_M, 32):
        index = faiss.IndexHNSWFlat(DIM, m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = QDRANT_EF_CONSTRUCT
        t = time.perf_counter()
        index.add(vectors)
        build_s = time.perf_counter() - t
        index.hnsw.efSearch = QDRANT_EF_CONSTRUCT
        name = f"faiss HNSWFlat M={m}"
        ms = timed(lambda i, ix=index: ix.search(qvecs[i : i + 1], TOP_K), nq)
        lat[name] = {**percentiles(ms), "build_s": round(build_s, 1)}
        _, found = index.search(qvecs[:nr], TOP_K)
        acc[name] = recall([r.tolist() for r in found], exact)
        print(f"  {name}: {lat[name]}, recall@10 {acc[name]:.3f}", flush=True)
        del index

    flat = faiss.IndexFlatIP(DIM)
    flat.add(vectors)
    lat["faiss FlatIP (exact)"] = percentiles(timed(lambda i: flat.search(qvecs[i : i + 1], TOP_K), nq))
    acc["faiss FlatIP (exact)"] = 1.0
    # OpenMP threads spin-wait: on a shared machine two threads can be far slower than one for one query
    faiss.omp_set_num_threads(1)
    lat["faiss FlatIP (exact), 1 thread"] = percentiles(timed(lambda i: flat.search(qvecs[i : i + 1], TOP_K), nq))
    acc["faiss FlatIP (exact), 1 thread"] = 1.0
    faiss.omp_set_num_threads(search_threads)

    out["latency"] = lat
    out["recall_at_10_vs_exact"] = {k: round(v, 4) for k, v in acc.items()}
    out["ratio_p50 sovrag dense / faiss HNSW M=16"] = round(
        lat["sovrag edge dense"]["p50_ms"] / lat[f"faiss HNSWFlat M={QDRANT_M}"]["p50_ms"], 2)
    out["ratio_p50 sovrag dense / faiss HNSW M=32"] = round(
        lat["sovrag edge dense"]["p50_ms"] / lat["faiss HNSWFlat M=32"]["p50_ms"], 2)
    out["ratio_p50 sovrag exact / faiss FlatIP (best of 1 and 2 threads)"] = round(
        lat["sovrag edge dense, exact=True"]["p50_ms"]
        / min(lat["faiss FlatIP (exact)"]["p50_ms"], lat["faiss FlatIP (exact), 1 thread"]["p50_ms"]), 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=500, help="timed searches per mode")
    ap.add_argument("--recall-queries", type=int, default=200)
    ap.add_argument("--vectors", nargs="+", choices=("random", "jittered"), default=["random", "jittered"])
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--batch", type=int, default=1000, help="chunks per upsert")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    corpora = data.load_all()
    union = corpora["union"]
    texts = [p.text for p in union.passages]
    picks = sorted(random.Random(args.seed).sample(range(len(union.queries)), args.queries))
    qtexts = [union.queries[i].text for i in picks]

    # the edge shard's search pool: Qdrant's search_thread_count(0) = 1 for 1 CPU, 2 for 2, else CPUs - 1
    cpus = len(os.sched_getaffinity(0))
    search_threads = cpus if cpus <= 2 else cpus - 1
    embedder = create_embedder(data.test_settings())

    report: dict = {"machine": data.machine(),
                    "command": " ".join(["benchmarks/search_latency.py", *sys.argv[1:]]),
                    "chunks": args.chunks, "dim": DIM, "top_k": TOP_K, "seed": args.seed,
                    "texts": f"{len(texts)} HaluEval-QA + BoolQ passages cycled; {args.queries} real questions",
                    "hnsw": f"Qdrant defaults m={QDRANT_M}, ef_construct={QDRANT_EF_CONSTRUCT}, search ef = "
                            f"max(ef_construct, top_k) = {QDRANT_EF_CONSTRUCT}; faiss efConstruction = efSearch "
                            f"= {QDRANT_EF_CONSTRUCT}",
                    "edge_search_threads": search_threads, "faiss_omp_threads": search_threads,
                    "recall_queries": min(args.recall_queries, args.queries), "sets": {}}
    rng = np.random.default_rng(args.seed)
    for kind in args.vectors:
        print(f"[{kind}]", flush=True)
        if kind == "random":
            vectors = normalize(rng.standard_normal((args.chunks, DIM), dtype=np.float32))
            qvecs = normalize(rng.standard_normal((args.queries, DIM), dtype=np.float32))
        else:
            vectors, qvecs = jittered(corpora, embedder, rng, args.chunks, picks)
        report["sets"][kind] = run_set(vectors, qvecs, texts, qtexts, search_threads, args)

    report["latency_query_embedding (MiniLM-L6 int8, onnxruntime, one question per call)"] = percentiles(
        timed(lambda i: embedder.embed([qtexts[i]]), args.queries))
    report["machine"] = data.machine()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print()
    print(markdown(report))


def markdown(report: dict) -> str:
    lines = []
    for kind, s in report["sets"].items():
        rec = s["recall_at_10_vs_exact"]
        lines += [f"Vectors: {kind}", "", "| search | p50 ms | p95 ms | recall@10 vs exact |",
                  "|---|---:|---:|---:|"]
        for name, v in s["latency"].items():
            r = rec.get(name)
            lines.append(f"| {name} | {v['p50_ms']:.2f} | {v['p95_ms']:.2f} | {'' if r is None else f'{r:.3f}'} |")
        lines += ["", "; ".join(f"{k}: {v}x" for k, v in s.items() if k.startswith("ratio")), ""]
    e = next(v for k, v in report.items() if k.startswith("latency_query_embedding"))
    lines.append(f"Query embedding: p50 {e['p50_ms']:.2f} ms, p95 {e['p95_ms']:.2f} ms")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
