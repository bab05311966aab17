"""The reranker's recipe: mined (question, passage) groups -> pack -> fine-tune MiniLM-L6 with one output -> ONNX
(int8 if it keeps nDCG) -> answerability threshold on dev -> nDCG@10 and gate on test -> manifest.

    python -m sovrag.train reranker --out build/reranker [--seed 13] [--device auto]

The answerability threshold is the one that best separates, on dev questions, the best reranked candidate
when the question's passage is among the candidates from the best one when it is taken out (balanced accuracy):
the abstention gate's decision, measured on the same candidate lists the reranker reorders at run time.
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
DEPTH = 30
#: Dev questions used to choose precision and the threshold (scoring 30 candidates each on a CPU takes time).
DEV_QUESTIONS = 600


def make_pack(out: Path, cache: Path, seed: int = 13, quick: bool = False, log=print) -> str:
    from sovrag.config import Settings
    from sovrag.train.reranker_data import mine

    mined = mine(Settings(), cache, depth=DEPTH, log=log, limit=60 if quick else 0, seed=seed)
    digest = P.write(out, P.reranker_pack(mined, seed, MAX_TOKENS))
    log(f"{out}: {len(mined['train'])} training, {len(mined['dev'])} dev, {len(mined['test'])} test questions, "
        f"sha256 {digest}")
    return digest


def _scores(reranker, rows: list, texts: dict) -> list[list[float]]:
    return [list(map(float, reranker.scores(q, [texts[c] for c in cands]))) for q, _g, cands, *_ in rows]


def gate(rows: list, scores: list[list[float]]) -> tuple[list[float], list[float]]:
    """Best P(answers) per question with its passage among the candidates, and with it taken out."""
    from sovrag.reranker import Reranker

    present, removed = [], []
    for (_q, gold, cands, *_), sc in zip(rows, scores, strict=True):
        if gold not in cands:
            continue
        p = Reranker.probability(np.asarray(sc))
        present.append(float(p.max()))
        rest = [x for c, x in zip(cands, p, strict=True) if c != gold]
        removed.append(float(max(rest)) if rest else 0.0)
    return present, removed


def choose_threshold(present: list[float], removed: list[float]) -> dict:
    best = {"balanced_accuracy": -1.0}
    for t in np.arange(0.02, 0.99, 0.01):
        keep = float(np.mean([p >= t for p in present]))
        drop = float(np.mean([r < t for r in removed]))
        if (keep + drop) / 2 > best["balanced_accuracy"]:
            best = {"threshold": round(float(t), 2), "balanced_accuracy": round((keep + drop) / 2, 4),
                    "abstain_present": round(1 - keep, 4), "abstain_removed": round(drop, 4)}
    return best


def latency(reranker, rows: list, texts: dict, n: int = 20) -> dict:
    """Milliseconds to rerank 30 candidates, all cores of this machine and one thread (median of n questions)."""
    from sovrag.reranker import Reranker

    out = {}
    for threads in (0, 1):
        r = reranker if not threads else Reranker(reranker.model_path, reranker.tokenizer_path, reranker.max_tokens,
                                                  threads=1)
        times = []
        for q, _g, cands, *_ in rows[:n]:
            t0 = time.perf_counter()
            r.scores(q, [texts[c] for c in cands[:DEPTH]])
            times.append((time.perf_counter() - t0) * 1000)
        out["ms_30_candidates_" + ("all_cores" if not threads else "1_thread")] = round(float(np.median(times)), 1)
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
    dev = dev[: 40 if quick else DEV_QUESTIONS]
    variants = {}
    for name, path in paths.items():
        r = Reranker(path, out / "tokenizer.json", MAX_TOKENS, threads=threads)
        sc = _scores(r, dev, texts)
        present, removed = gate(dev, sc)
        variants[name] = {"dev": P.reranker_dev({"dev": dev}, sc), "gate": choose_threshold(present, removed)}
        log(f"{name}: {json.dumps(variants[name])}")
    chosen = "int8" if variants["int8"]["dev"]["mean"] >= variants["fp32"]["dev"]["mean"] - 0.005 else "fp32"
    shutil.copy(paths[chosen], out / "model.onnx")
    r = Reranker(out / "model.onnx", out / "tokenizer.json", MAX_TOKENS, threads=threads)
    test = pack["test"][: 60 if quick else None]
    t0 = time.time()
    sc = _scores(r, test, texts)
    log(f"test scored in {time.time() - t0:.0f} s")
    threshold = variants[chosen]["gate"]["threshold"]
    present, removed = gate(test, sc)
    test_gate = {"threshold": threshold, "abstain_present": round(float(np.mean([p < threshold for p in present])), 4),
                 "abstain_removed": round(float(np.mean([x < threshold for x in removed])), 4), "n": len(present)}
    manifest = {
        "name": f"sovrag-reranker-minilm-l6-{chosen}",
        "model": "model.onnx",
        "sha256": sha256(out / "model.onnx"),
        "size": (out / "model.onnx").stat().st_size,
        "max_tokens": MAX_TOKENS,
        "candidates": DEPTH,
        "answerable": threshold,
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
        "test": {**P.reranker_dev({"dev": test}, sc), "gate": test_gate},
        "latency": latency(r, test, texts),
        "export_machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                           "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d"),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log(json.dumps({"test": manifest["test"], "latency": manifest["latency"]}, indent=1))
    return manifest
