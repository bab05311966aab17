"""The reranker's recipe: mined (question, passage) groups -> pack -> fine-tune MiniLM-L6 with one output -> ONNX
(int8 if it keeps nDCG) -> on dev: the weight of the hybrid score in the final order, and the abstention gate ->
nDCG@10 and the gate on test -> manifest.

    python -m sovrag.train reranker --out build/reranker [--seed 13] [--device auto]

The final order is logit + w * (hybrid search's fused score), w chosen on dev from a few values (a strong first
stage keeps information a cross-encoder trained on 10k questions lacks). The gate is a logistic regression of
"the question's passage is among the candidates" on the best logit and the best hybrid score, fitted on dev
questions with their passage present and, the same questions, with it taken out; its threshold keeps GATE_KEEP of
the answerable ones.
"""

from __future__ import annotations

import json
import platform
import random
import shutil
import time
from pathlib import Path

import numpy as np

from sovrag.models.registry import sha256
from sovrag.train import pack as P
from sovrag.train.base import BASE, BASE_SHA256, base_fp16
from sovrag.train.sources import MEMBERS, SPLITS, WHEELS

MAX_TOKENS = 256
#: Candidates reranked at run time (hybrid search's best): on dev, 20 gave nDCG@10 within 0.001 of 30 for 2/3 of
#: the time.
DEPTH = 20
FUSION_WEIGHTS = (0.0, 1.0, 2.0, 4.0, 8.0)
#: Dev questions on which the precision (int8 or fp32) is chosen.
DEV_QUESTIONS = 300
#: The abstention gate keeps this share of dev questions whose passage is among the candidates (the rest of the
#: issue's 10% budget is left to what generation and verification lose).
GATE_KEEP = 0.92


def make_pack(out: Path, cache: Path, seed: int = 13, quick: bool = False, log=print) -> str:
    from sovrag.config import Settings
    from sovrag.train.reranker_data import mine

    mined = mine(Settings(), cache, depth=DEPTH, log=log, limit=60 if quick else 0, seed=seed)
    digest = P.write(out, P.reranker_pack(mined, seed, MAX_TOKENS))
    log(f"{out}: {len(mined['train'])} training, {len(mined['dev'])} dev, {len(mined['test'])} test questions, "
        f"sha256 {digest}")
    return digest


def _scores(reranker, rows: list, texts: dict) -> list[list[float]]:
    return [list(map(float, reranker.scores(q, [texts[c] for c in cands[:DEPTH]]))) for q, _g, cands, *_ in rows]


def fused(logits, hybrid, weight: float) -> np.ndarray:
    return np.asarray(logits, dtype=np.float64) + weight * np.asarray(hybrid, dtype=np.float64)


def ndcg(rows: list, scores: list[list[float]], weight: float | None) -> dict:
    """nDCG@10 per corpus and over both: the hybrid order (weight None) or reranked by logit + weight * hybrid
    score (the candidates past DEPTH keep their hybrid order after the reranked ones)."""
    per: dict[str, list[float]] = {}
    for (_q, gold, cands, hyb, corpus, *_), sc in zip(rows, scores, strict=True):
        if weight is None:
            order = cands
        else:
            top = cands[:DEPTH]
            order = [top[i] for i in np.argsort(-fused(sc, hyb[:DEPTH], weight), kind="stable")] + cands[DEPTH:]
        per.setdefault(corpus, []).append(P.ndcg_at_10(order, gold))
    out = {c: round(float(np.mean(v)), 4) for c, v in per.items()}
    out["union"] = round(float(np.mean([x for v in per.values() for x in v])), 4)
    return out


def gate_features(rows: list, scores: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """(best logit, best hybrid score) per question with its passage among the candidates (label 1) and for the
    same question with it taken out (label 0): what the gate sees with the gold passage present and removed."""
    x, y = [], []
    for (_q, gold, cands, hyb, *_), sc in zip(rows, scores, strict=True):
        top = cands[:DEPTH]
        if gold not in top:
            continue
        x.append([max(sc), max(hyb[:DEPTH])])
        y.append(1.0)
        rest = [k for k, c in enumerate(top) if c != gold]
        x.append([max(sc[k] for k in rest), max(hyb[k] for k in rest)])
        y.append(0.0)
    return np.array(x), np.array(y)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 50) -> np.ndarray:
    """Weights (bias first) of a logistic regression, by Newton's method."""
    xb = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(xb.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-xb @ w))
        grad = xb.T @ (p - y) + l2 * w
        hess = xb.T @ (xb * (p * (1 - p))[:, None]) + l2 * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    return w


def fit_gate(rows: list, scores: list[list[float]]) -> dict:
    """P(answerable) = sigmoid(bias + a * best logit + b * best hybrid score), fitted on dev, and the threshold
    that keeps GATE_KEEP of the answerable dev questions (hybrid search); `logit_only` for other search modes."""
    x, y = gate_features(rows, scores)
    out = {}
    for name, cols in (("hybrid", [0, 1]), ("logit_only", [0])):
        w = fit_logistic(x[:, cols], y)
        z = np.hstack([np.ones((len(y), 1)), x[:, cols]]) @ w
        t = float(np.quantile(z[y == 1], 1 - GATE_KEEP))
        out[name] = {"bias": round(float(w[0]), 4), "logit": round(float(w[1]), 4),
                     "hybrid": round(float(w[2]), 4) if len(cols) == 2 else 0.0,
                     "threshold": round(float(1 / (1 + np.exp(-t))), 4),
                     "dev_abstain_present": round(float(np.mean(z[y == 1] < t)), 4),
                     "dev_abstain_removed": round(float(np.mean(z[y == 0] < t)), 4)}
    return out


def gate_rates(rows: list, scores: list[list[float]], gate: dict) -> dict:
    from sovrag.reranker import answerable

    x, y = gate_features(rows, scores)
    out = {}
    for name, g in gate.items():
        p = np.array([answerable(a, b if name == "hybrid" else None, g) for a, b in x])
        out[name] = {"abstain_present": round(float(np.mean(p[y == 1] < g["threshold"])), 4),
                     "abstain_removed": round(float(np.mean(p[y == 0] < g["threshold"])), 4), "n": int(y.sum())}
    return out


def latency(reranker, rows: list, texts: dict, n: int = 20) -> dict:
    """Milliseconds to rerank DEPTH (and 30) candidates, all cores and one thread (median over n questions)."""
    from sovrag.reranker import Reranker

    out = {}
    one = Reranker(reranker.model_path, reranker.tokenizer_path, reranker.max_tokens, threads=1)
    for depth in (DEPTH, 30):
        for label, r in (("all_cores", reranker), ("1_thread", one)):
            times = []
            for q, _g, cands, *_ in rows[:n]:
                t0 = time.perf_counter()
                r.scores(q, [texts[c] for c in cands[:depth]])
                times.append((time.perf_counter() - t0) * 1000)
            out[f"ms_{depth}_candidates_{label}"] = round(float(np.median(times)), 1)
    return out


def export(weights: Path, pack_path: Path, out: Path, cache: Path, threads: int = 2, quick: bool = False,
           log=print) -> dict:
    from sovrag.reranker import Reranker
    from sovrag.train.onnx_export import model_folder, onnx_variants

    pack, pack_sha = P.read(pack_path)
    out.mkdir(parents=True, exist_ok=True)
    base = base_fp16(cache)
    work = out / "work"
    torch_dir, fit_info = model_folder(weights, base, "reranker", work)
    paths = onnx_variants(torch_dir, work)
    shutil.copy(base / "tokenizer.json", out / "tokenizer.json")
    texts = pack["texts"]
    dev = list(pack["dev"])
    random.Random(int(pack["seed"])).shuffle(dev)
    sample = dev[: 40 if quick else DEV_QUESTIONS]
    variants = {}
    for name, path in paths.items():  # precision, on a sample of dev
        sc = _scores(Reranker(path, out / "tokenizer.json", MAX_TOKENS, threads=threads), sample, texts)
        variants[name] = {"dev_sample": ndcg(sample, sc, 0.0), "answerable_auc": _gate_auc(sample, sc)}
        log(f"{name}: {json.dumps(variants[name])}")
    chosen = "int8" if variants["int8"]["dev_sample"]["union"] >= variants["fp32"]["dev_sample"]["union"] - 0.005 \
        else "fp32"
    shutil.copy(paths[chosen], out / "model.onnx")
    r = Reranker(out / "model.onnx", out / "tokenizer.json", MAX_TOKENS, threads=threads)
    dev = dev[: 80 if quick else None]
    sc = _scores(r, dev, texts)  # fusion weight and gate, on every dev question
    by_weight = {str(w): ndcg(dev, sc, w) for w in FUSION_WEIGHTS}
    weight = max(FUSION_WEIGHTS, key=lambda w: by_weight[str(w)]["union"])
    gate = fit_gate(dev, sc)
    log(f"fusion {json.dumps(by_weight)} -> {weight}; gate {json.dumps(gate)}")
    test = pack["test"][: 60 if quick else None]
    t0 = time.time()
    tsc = _scores(r, test, texts)
    log(f"test scored in {time.time() - t0:.0f} s")
    manifest = {
        "name": f"sovrag-reranker-minilm-l6-{chosen}",
        "model": "model.onnx",
        "sha256": sha256(out / "model.onnx"),
        "size": (out / "model.onnx").stat().st_size,
        "max_tokens": MAX_TOKENS,
        "candidates": DEPTH,
        "hybrid_weight": weight,
        "gate": gate,
        "precision": chosen,
        "base": {"requirement": BASE[0], "file": "model.safetensors", "sha256": BASE_SHA256,
                 "rounded_to": "float16"},
        "data": {s: {"requirement": WHEELS[MEMBERS[s][0]][0], "member": MEMBERS[s][1]}
                 for s in ("halueval-qa", "boolq")},
        "splits": {"by": "sha256 of the passage text", "shares": dict(SPLITS),
                   "negatives": "hybrid search over train-split passages only"},
        "questions": {"train": len(pack["train"]), "dev": len(pack["dev"]), "test": len(pack["test"])},
        "pack_sha256": pack_sha,
        "fit": fit_info,
        "variants": variants,
        "dev": {"fusion": by_weight},
        "test": {"hybrid": ndcg(test, tsc, None), "reranked": ndcg(test, tsc, 0.0),
                 "reranked_fused": ndcg(test, tsc, weight), "answerable_auc": _gate_auc(test, tsc),
                 "gate": gate_rates(test, tsc, gate)},
        "latency": latency(r, test, texts),
        "export_machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                           "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d"),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log(json.dumps({"test": manifest["test"], "latency": manifest["latency"]}, indent=1))
    return manifest


def _gate_auc(rows: list, scores: list[list[float]]) -> float:
    x, y = gate_features(rows, scores)
    return round(P._auc(list(x[y == 1, 0]), list(x[y == 0, 0])), 4) if len(y) else float("nan")
