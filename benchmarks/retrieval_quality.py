"""Retrieval quality of sovrag's embedded store: BM25, dense and hybrid on public QA datasets.

Each corpus (HaluEval-QA knowledge passages, BoolQ dev passages, and their union) is one collection
of the embedded Qdrant store, one passage per chunk, searched through the real Store API; every
question's gold passage is known, so nDCG@10, recall@10 and MRR@10 are computed per corpus over that
corpus's collection only. Fusion alternatives are measured in the same run by sending the same two
prefetches with another fusion to the same shard.

    .venv/bin/python benchmarks/retrieval_quality.py [--queries N] [--seed S]
    .venv/bin/python benchmarks/retrieval_quality.py --rerank --no-variants   # + the trained reranker

With --rerank, only the questions whose passage is in the held-out test split (sovrag.train.sources.split_of)
are asked, since the reranker was trained on the others, and "hybrid+rerank" (hybrid search's best reordered
by the shipped reranker, as `sovrag search --rerank` and `sovrag ask` do) is measured beside the three modes.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import qdrant_edge as qe

sys.path.insert(0, str(Path(__file__).resolve().parent))
import datasets as data  # noqa: E402

from sovrag.embed import create_embedder  # noqa: E402
from sovrag.evaluate import evaluate_run, ndcg_at_k  # noqa: E402
from sovrag.store import SearchQuery, open_backend  # noqa: E402
from sovrag.store import bm25 as sparse_model  # noqa: E402
from sovrag.store.base import DEFAULT_FUSION, DEFAULT_RRF_K, DENSE, SPARSE, prefetch_limit  # noqa: E402
from sovrag.store.qdrant_edge import EdgeStore  # noqa: E402
from sovrag.types import Chunk  # noqa: E402

TOP_K = 10
MODES = ("bm25", "dense", "hybrid")
RESULTS = Path(__file__).resolve().parent / "results" / "retrieval_quality.json"

#: Fusion alternatives measured against each other: name -> (fusion factory, prefetch depth per retriever).
#: Weights are [dense, bm25], the order of the store's prefetches.
VARIANTS: dict[str, tuple[Callable[[], object], int]] = {
    "dbsf, depth 50 (the store's default)": (lambda: qe.Fusion.Dbsf(), 50),
    "rrf k=60, depth 50 (the store's previous default)": (lambda: qe.Fusion.Rrf(k=60), 50),
    "rrf k=2, depth 50 (Qdrant default k)": (lambda: qe.Fusion.Rrf(k=2), 50),
    "rrf k=60, depth 10": (lambda: qe.Fusion.Rrf(k=60), 10),
    "rrf k=60, depth 20": (lambda: qe.Fusion.Rrf(k=60), 20),
    "rrf k=60, depth 100": (lambda: qe.Fusion.Rrf(k=60), 100),
    "rrf k=60, weights dense 2 : bm25 1": (lambda: qe.Fusion.Rrf(k=60, weights=[2.0, 1.0]), 50),
    "rrf k=60, weights dense 1 : bm25 2": (lambda: qe.Fusion.Rrf(k=60, weights=[1.0, 2.0]), 50),
    "dbsf, depth 20": (lambda: qe.Fusion.Dbsf(), 20),
    "dbsf, depth 100": (lambda: qe.Fusion.Dbsf(), 100),
}


def build(backend, name: str, ds: data.Dataset, vectors: np.ndarray, batch: int) -> EdgeStore:
    store = backend.create(name, vectors.shape[1], {"benchmark": "retrieval_quality", "corpus": name})
    for start in range(0, len(ds.passages), batch):
        part = ds.passages[start : start + batch]
        chunks = [
            Chunk(id=p.id, doc_id=p.id, text=p.text, source=p.corpus, title=p.title, index=0,
                  metadata={"corpus": p.corpus}, version="1", chunk_count=1)
            for p in part
        ]
        store.upsert(chunks, vectors[start : start + len(part)])
    store.optimize()
    return store


def run_store(store: EdgeStore, queries: list[data.Query], qvecs: np.ndarray, mode: str
              ) -> tuple[dict[str, list[str]], float]:
    run: dict[str, list[str]] = {}
    t = time.perf_counter()
    for q, v in zip(queries, qvecs, strict=True):
        hits = store.search(SearchQuery(q.text, v), top_k=TOP_K, mode=mode)  # type: ignore[arg-type]
        run[q.id] = [h.chunk.id for h in hits]
    return run, (time.perf_counter() - t) * 1000 / max(1, len(queries))


def run_reranked(store: EdgeStore, queries: list[data.Query], qvecs: np.ndarray, reranker
                 ) -> tuple[dict[str, list[str]], float]:
    """Hybrid search's best `reranker.candidates`, reordered as sovrag's search does (retrieve/rerank.py)."""
    from sovrag.retrieve.rerank import rerank

    run: dict[str, list[str]] = {}
    t = time.perf_counter()
    for q, v in zip(queries, qvecs, strict=True):
        hits = store.search(SearchQuery(q.text, v), top_k=max(TOP_K, reranker.candidates), mode="hybrid")
        run[q.id] = [h.chunk.id for h in rerank(reranker, q.text, hits[: reranker.candidates]).hits][:TOP_K]
    return run, (time.perf_counter() - t) * 1000 / max(1, len(queries))


def run_variant(store: EdgeStore, queries: list[data.Query], qvecs: np.ndarray, fusion: object, depth: int
                ) -> dict[str, list[str]]:
    """The store's hybrid request (same prefetches, same fallback) with another fusion or depth."""
    run: dict[str, list[str]] = {}
    for q, v in zip(queries, qvecs, strict=True):
        dense = qe.Query.Nearest(np.asarray(v, dtype=np.float32).tolist(), using=DENSE)
        idx, val = sparse_model.encode_query(q.text)
        if idx:
            req = qe.QueryRequest(
                limit=TOP_K,
                prefetches=[qe.Prefetch(limit=depth, query=dense),
                            qe.Prefetch(limit=depth, query=qe.Query.Nearest(qe.SparseVector(idx, val),
                                                                            using=SPARSE))],
                query=fusion, with_payload=False)
        else:
            req = qe.QueryRequest(limit=TOP_K, query=dense, with_payload=False)
        run[q.id] = [str(p.id) for p in store.shard.query(req)]
    return run


def paired_ci(a: list[float], b: list[float], seed: int, rounds: int = 2000) -> tuple[float, float, float]:
    """Mean of a - b over queries with a 95% paired bootstrap interval."""
    d = np.asarray(a) - np.asarray(b)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(rounds, len(d)))].mean(axis=1)
    return float(d.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def sample(queries: list[data.Query], n: int, seed: int) -> list[data.Query]:
    if n <= 0 or n >= len(queries):
        return queries
    return sorted(random.Random(seed).sample(queries, n), key=lambda q: q.id)


def fmt(x: float) -> str:
    return f"{x:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=0,
                    help="random sample of questions per corpus (0 = all); the union uses both samples")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=512, help="chunks per upsert")
    ap.add_argument("--no-variants", action="store_true", help="skip the fusion alternatives")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--rerank", action="store_true",
                    help="held-out (test-split) questions only, with hybrid+rerank beside the three modes")
    args = ap.parse_args()
    args.out = args.out or (RESULTS.with_name("retrieval_quality_rerank.json") if args.rerank else RESULTS)
    reranker = None
    if args.rerank:
        from sovrag.reranker import load as load_reranker
        from sovrag.train.sources import split_of

        reranker = load_reranker()

    corpora = data.load_all()
    embedder = create_embedder(data.test_settings())
    pvecs = {c: data.embed_cached(embedder, [p.text for p in corpora[c].passages], f"passages-{c}")
             for c in data.CORPORA}
    qvecs_all = {c: data.embed_cached(embedder, [q.text for q in corpora[c].queries], f"queries-{c}")
                 for c in data.CORPORA}
    by_id = {p.id: v for c in data.CORPORA for p, v in zip(corpora[c].passages, pvecs[c], strict=True)}
    pvecs["union"] = np.stack([by_id[p.id] for p in corpora["union"].passages])

    qsets: dict[str, tuple[list[data.Query], np.ndarray]] = {}
    for c in data.CORPORA:
        row = {q.id: i for i, q in enumerate(corpora[c].queries)}
        pool = corpora[c].queries
        if reranker is not None:
            text = {p.id: p.text for p in corpora[c].passages}
            pool = [q for q in pool if split_of(text[next(iter(q.gold))]) == "test"]
        qs = sample(pool, args.queries, args.seed)
        qsets[c] = (qs, qvecs_all[c][[row[q.id] for q in qs]])
    qsets["union"] = ([q for c in data.CORPORA for q in qsets[c][0]],
                      np.concatenate([qsets[c][1] for c in data.CORPORA]))

    results: dict[str, dict[str, dict[str, float]]] = {}
    variants: dict[str, dict[str, dict[str, float]]] = {}
    stats: dict[str, dict[str, int]] = {}
    margins: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="sovrag-bench-") as tmp:
        backend = open_backend(f"qdrant-edge:{tmp}", Path(tmp))
        for name in ("halueval", "boolq", "union"):
            ds, (qs, qv) = corpora[name], qsets[name]
            t = time.perf_counter()
            store = build(backend, name, ds, pvecs[name], args.batch)
            print(f"[{name}] indexed {store.count()} passages in {time.perf_counter() - t:.1f}s; "
                  f"{len(qs)} of {len(ds.queries)} questions", flush=True)
            stats[name] = {"passages": len(ds.passages), "queries_total": len(ds.queries),
                           "queries_used": len(qs)}
            qrels = {q.id: set(q.gold) for q in qs}
            results[name] = {}
            per_query: dict[str, list[float]] = {}
            for mode in MODES:
                run, ms = run_store(store, qs, qv, mode)
                results[name][mode] = {**evaluate_run(run, qrels, TOP_K), "mean_ms": round(ms, 2)}
                per_query[mode] = [ndcg_at_k(run[q.id], qrels[q.id], TOP_K) for q in qs]
                print(f"  {mode:7s} " + "  ".join(f"{k}={fmt(v)}" for k, v in results[name][mode].items()),
                      flush=True)
            if reranker is not None:
                run, ms = run_reranked(store, qs, qv, reranker)
                results[name]["hybrid+rerank"] = {**evaluate_run(run, qrels, TOP_K), "mean_ms": round(ms, 2)}
                per_query["hybrid+rerank"] = [ndcg_at_k(run[q.id], qrels[q.id], TOP_K) for q in qs]
                mean, lo, hi = paired_ci(per_query["hybrid+rerank"], per_query["hybrid"], args.seed)
                results[name]["hybrid+rerank"]["ndcg@10_vs_hybrid"] = {"diff": round(mean, 4),
                                                                      "ci95": [round(lo, 4), round(hi, 4)]}
                print("  hybrid+rerank " + "  ".join(f"{k}={v}" for k, v in results[name]["hybrid+rerank"].items()),
                      flush=True)
            best = max(("bm25", "dense"), key=lambda m: results[name][m]["ndcg@10"])
            mean, lo, hi = paired_ci(per_query["hybrid"], per_query[best], args.seed)
            margins[name] = {"vs": best, "ndcg@10_diff": round(mean, 4), "ci95": [round(lo, 4), round(hi, 4)]}
            print(f"  hybrid - {best}: nDCG@10 {mean:+.4f} (95% CI {lo:+.4f} .. {hi:+.4f})", flush=True)
            if not args.no_variants:
                for label, (fusion, depth) in VARIANTS.items():
                    res = evaluate_run(run_variant(store, qs, qv, fusion(), depth), qrels, TOP_K)
                    variants.setdefault(label, {})[name] = res
                    print(f"  variant {label}: ndcg@10={fmt(res['ndcg@10'])} "
                          f"recall@10={fmt(res['recall@10'])} mrr@10={fmt(res['mrr@10'])}", flush=True)
            store.close()
        backend.close()

    store_fusion = {"fusion": DEFAULT_FUSION, "rrf_k (when fusion is rrf)": DEFAULT_RRF_K,
                    "prefetch_depth": prefetch_limit(TOP_K)}
    report = {
        "machine": data.machine(),
        "command": " ".join(["benchmarks/retrieval_quality.py", *sys.argv[1:]]),
        "embedder": embedder.name,
        "reranker": reranker.name if reranker is not None else None,
        "top_k": TOP_K,
        "store_fusion": store_fusion,
        "seed": args.seed,
        "datasets": stats,
        "results": results,
        "hybrid_vs_best_single": margins,
        "fusion_variants": variants,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print()
    print(markdown(report))


def markdown(report: dict) -> str:
    lines = ["| corpus | passages | questions | mode | nDCG@10 | recall@10 | MRR@10 | ms/query |",
             "|---|---:|---:|---|---:|---:|---:|---:|"]
    for name, modes in report["results"].items():
        st = report["datasets"][name]
        best = max(modes, key=lambda m: modes[m]["ndcg@10"])
        for mode, m in modes.items():
            b = "**" if mode == best else ""
            label = f"hybrid ({report['store_fusion']['fusion']})" if mode == "hybrid" else mode
            lines.append(f"| {name} | {st['passages']} | {st['queries_used']} | {label} | "
                         f"{b}{fmt(m['ndcg@10'])}{b} | {fmt(m['recall@10'])} | {fmt(m['mrr@10'])} | "
                         f"{m['mean_ms']:.1f} |")
    lines += ["", "Hybrid minus the better single retriever, nDCG@10, with a 95% paired bootstrap interval:", ""]
    for name, m in report["hybrid_vs_best_single"].items():
        lines.append(f"- {name}: hybrid - {m['vs']} = {m['ndcg@10_diff']:+.4f} "
                     f"({m['ci95'][0]:+.4f} .. {m['ci95'][1]:+.4f})")
    for name, modes in report["results"].items():
        if "hybrid+rerank" in modes:
            d = modes["hybrid+rerank"]["ndcg@10_vs_hybrid"]
            lines.append(f"- {name}: hybrid+rerank - hybrid = {d['diff']:+.4f} ({d['ci95'][0]:+.4f} .. "
                         f"{d['ci95'][1]:+.4f})")
    if report["fusion_variants"]:
        names = list(report["results"])
        lines += ["", "Hybrid fusion alternatives (nDCG@10 / recall@10 / MRR@10):", "",
                  "| fusion | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        for label, per in report["fusion_variants"].items():
            cells = [f"{fmt(per[n]['ndcg@10'])} / {fmt(per[n]['recall@10'])} / {fmt(per[n]['mrr@10'])}"
                     for n in names if n in per]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
