"""The groundedness verifier's recipe: examples -> pack -> fine-tune MiniLM-L6 (fp16-rounded base, word embeddings
frozen) -> ONNX (fused, int8 if it keeps accuracy) -> threshold on dev -> metrics on test -> model.onnx +
tokenizer.json + manifest.json.

    python -m sovrag.train verifier --out build/verifier [--seed 13] [--device auto]

Same seed, same data -> the same pack (its sha256 is in the manifest); the fine-tune is deterministic on a CPU
and nearly so on a GPU (cuBLAS order of summation), so a retrain lands within noise of the recorded numbers.
"""

from __future__ import annotations

import json
import platform
import shutil
import statistics
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from sovrag.models.registry import sha256
from sovrag.train import pack as P
from sovrag.train.base import BASE, BASE_SHA256, base_fp16
from sovrag.train.sources import MEMBERS, SPLITS, WHEELS, fetch
from sovrag.train.verifier_data import SOURCES, build
from sovrag.verifier import SUPPORTED, Verifier

#: Documents per source and split (0 = all of the split's documents).
TRAIN_LIMITS = {"halueval-qa": 0, "halueval-dialogue": 0, "halueval-summarization": 0, "boolq": 0, "synthetic": 0}
DEV_LIMITS = {"halueval-qa": 500, "halueval-dialogue": 500, "halueval-summarization": 300, "boolq": 0,
              "synthetic": 600}
TEST_LIMITS = {"halueval-qa": 0, "halueval-dialogue": 0, "halueval-summarization": 0, "boolq": 0, "synthetic": 0}
MAX_TOKENS = 256


def balanced_accuracy(gold_supported: list[bool], pred: list[bool]) -> float:
    return P.balanced_accuracy(gold_supported, pred)


def _scale(limits: dict[str, int], quick: bool) -> dict[str, int]:
    return {k: (v or 400) // 20 for k, v in limits.items()} if quick else dict(limits)


def _counter(tokenizer_path: Path):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.no_padding()
    tok.no_truncation()
    return lambda s: len(tok.encode(s, add_special_tokens=False).ids)


def make_pack(out: Path, cache: Path, seed: int = 13, quick: bool = False, log=print,
              distractors: bool = False) -> str:
    fetch(cache)
    count = _counter(base_fp16(cache) / "tokenizer.json")
    log("building verifier examples ...")
    tr = build("train", cache, count, seed, _scale(TRAIN_LIMITS, quick), distractors=distractors)
    dev = build("dev", cache, count, seed, _scale(DEV_LIMITS, quick), focus=False, distractors=distractors)
    pack = P.verifier_pack(tr, dev, seed, MAX_TOKENS, count)
    if distractors:  # recorded only when on, so the shipped recipe's pack keeps its bytes and sha256
        pack["distractors"] = True
    digest = P.write(out, pack)
    log(f"{out}: {len(tr)} training and {len(dev)} dev examples, sha256 {digest}")
    return digest


def score(verifier: Verifier, examples) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities per example: (the model alone, with the numbers-must-match rule applied as at run time)."""
    from sovrag.verifier import _must_match

    verifier.numbers_rule = False
    vs = verifier.score_pairs([(e.premise, e.claim) for e in examples])
    raw = np.array([[v.supported, v.contradicted, v.nei] for v in vs])
    ruled = np.array([_must_match(p, e.claim, e.premise, "") for p, e in zip(raw, examples, strict=True)])
    verifier.numbers_rule = True
    return raw, ruled


def per_source(examples, probs: np.ndarray, threshold: float) -> dict[str, dict]:
    out: dict[str, dict] = {}
    groups: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(examples):
        groups[e.source].append(i)
    for src, idx in sorted(groups.items()):
        gold = [examples[i].label == SUPPORTED for i in idx]
        pred = [bool(probs[i, 0] >= threshold) for i in idx]
        row = {"n": len(idx), "balanced_accuracy": round(balanced_accuracy(gold, pred), 4)}
        known = [i for i in idx if examples[i].label >= 0]
        if known and src in ("synthetic", "boolq"):
            row["three_way_accuracy"] = round(float(np.mean([int(np.argmax(probs[i])) == examples[i].label
                                                              for i in known])), 4)
        if src == "synthetic":
            kinds: dict[str, list[bool]] = defaultdict(list)
            for i in idx:
                kinds[examples[i].kind].append((probs[i, 0] >= threshold) == (examples[i].label == SUPPORTED))
            row["accuracy_by_kind"] = {k: round(sum(v) / len(v), 3) for k, v in sorted(kinds.items())}
        out[src] = row
    return out


def choose_threshold(examples, probs: np.ndarray) -> float:
    """The threshold with the best mean balanced accuracy over the dev sources."""
    best, best_t = -1.0, 0.5
    for t in np.arange(0.05, 0.96, 0.01):
        m = statistics.mean(r["balanced_accuracy"] for r in per_source(examples, probs, float(t)).values())
        if m > best:
            best, best_t = m, float(t)
    return round(best_t, 2)


def latency(model: Path, tokenizer: Path, max_tokens: int, examples, n: int = 64) -> dict[str, float]:
    """Milliseconds per (claim, passage) pair, batched by 16, at the model's full window, one thread."""
    one = Verifier(model, tokenizer, max_tokens, threads=1)
    pairs = [(one.tok.decode(one.tok.encode(e.premise * 4, e.claim).ids[:max_tokens]), e.claim) for e in examples[:n]]
    one._run(pairs[:16])
    best = float("inf")
    for _ in range(3):  # the best of three: this machine is shared
        t0 = time.perf_counter()
        one._run(pairs)
        best = min(best, (time.perf_counter() - t0) * 1000 / len(pairs))
    return {"ms_per_pair_256_tokens_1_thread": round(best, 2)}


def export(weights: Path, pack_path: Path, out: Path, cache: Path, threads: int = 2, quick: bool = False,
           log=print) -> dict:
    """From fine-tuned weights (a fit folder, or carried parts) to the shipped files and their manifest."""
    from sovrag.train.onnx_export import model_folder, onnx_variants

    pack, pack_sha = P.read(pack_path)
    out.mkdir(parents=True, exist_ok=True)
    base = base_fp16(cache)
    work = out / "work"
    torch_dir, fit_info = model_folder(weights, base, "verifier", work)
    paths = onnx_variants(torch_dir, work)
    shutil.copy(base / "tokenizer.json", out / "tokenizer.json")
    count = _counter(out / "tokenizer.json")
    seed = int(pack["seed"])
    more = bool(pack.get("distractors"))
    dev = build("dev", cache, count, seed, _scale(DEV_LIMITS, quick), focus=False, distractors=more)
    test = build("test", cache, count, seed, _scale(TEST_LIMITS, quick), focus=False, distractors=more)
    variants = {}
    for name, path in paths.items():
        v = Verifier(path, out / "tokenizer.json", MAX_TOKENS, threads=threads)
        raw, p = score(v, dev)
        t = choose_threshold(dev, p)
        rows = per_source(dev, p, t)
        alone_t = choose_threshold(dev, raw)
        variants[name] = {"threshold": t, "dev": rows, "dev_mean_balanced_accuracy": round(statistics.mean(
            r["balanced_accuracy"] for r in rows.values()), 4),
            "model_alone": {"threshold": alone_t, "dev": {k: r["balanced_accuracy"] for k, r in per_source(
                dev, raw, alone_t).items()}}}
        log(f"{name}: dev {json.dumps(variants[name])}")
    fp32 = variants["fp32"]["dev_mean_balanced_accuracy"]
    chosen = "int8" if variants["int8"]["dev_mean_balanced_accuracy"] >= fp32 - 0.01 else "fp32"
    shutil.copy(paths[chosen], out / "model.onnx")
    v = Verifier(out / "model.onnx", out / "tokenizer.json", MAX_TOKENS, threads=threads)
    threshold = variants[chosen]["threshold"]
    t0 = time.time()
    raw, p = score(v, test)
    log(f"test scored in {time.time() - t0:.0f} s")
    counts = {s: {"train": sum(r[3] == s for r in pack["train"]), "dev": sum(e.source == s for e in dev),
                  "test": sum(e.source == s for e in test)} for s in SOURCES}
    manifest = {
        "name": f"sovrag-verifier-minilm-l6-{chosen}",
        "model": "model.onnx",
        "sha256": sha256(out / "model.onnx"),
        "size": (out / "model.onnx").stat().st_size,
        "labels": ["supported", "contradicted", "not enough information"],
        "max_tokens": MAX_TOKENS,
        "threshold": threshold,
        "precision": chosen,
        "base": {"requirement": BASE[0], "file": "model.safetensors", "sha256": BASE_SHA256,
                 "rounded_to": "float16"},
        "data": {s: {"requirement": WHEELS[MEMBERS[s][0]][0], "member": MEMBERS[s][1]} for s in MEMBERS},
        "splits": {"by": "sha256 of the document text", "shares": dict(SPLITS)},
        "limits": {"train": _scale(TRAIN_LIMITS, quick), "dev": _scale(DEV_LIMITS, quick),
                   "test": _scale(TEST_LIMITS, quick)},
        "examples": counts,
        "pack_sha256": pack_sha,
        "fit": fit_info,
        "variants": variants,
        "test": per_source(test, p, threshold),
        # the model without the numbers-must-match rule, at its own dev-chosen threshold
        "test_model_alone": {"threshold": variants[chosen]["model_alone"]["threshold"], **per_source(
            test, raw, variants[chosen]["model_alone"]["threshold"])},
        "latency": latency(out / "model.onnx", out / "tokenizer.json", MAX_TOKENS, test),
        "export_machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                           "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d"),
    }
    manifest["test_mean_balanced_accuracy"] = round(statistics.mean(
        r["balanced_accuracy"] for r in manifest["test"].values()), 4)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log(json.dumps({"test": manifest["test"], "latency": manifest["latency"], "threshold": threshold}, indent=1))
    return manifest
