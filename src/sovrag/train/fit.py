"""Fine-tune a cross-encoder from a training pack, on CPU or a GPU, and score it on the pack's dev split.

    python -m sovrag.train fit PACK --base DIR --out DIR [--device auto] [--epochs N] [--lr X] [--batch-size N]
                                    [--layers N] [--parts NAME] [--sample N --keep SOURCE --pair-with SOURCE]

`--sample N` trains on a seeded sample of N of the pack's training examples, every example of the `--keep`
sources among them, with the supported examples of their premises from the `--pair-with` sources: continuing
an already fine-tuned model (`--base` its folder) on what it lacks, with the rest of its data replayed so it
does not forget it.

Writes out/torch (the fine-tuned model), out/dev.json (dev metrics: verifier: balanced accuracy per source at
the best threshold; reranker: nDCG@10 hybrid vs reranked, answerability AUC) and, with --parts, the weights
without the base's word embeddings as fp16 files small enough to carry back from a GPU machine
(crossencoder.save_parts; `export` rebuilds the model from them).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from sovrag.errors import SovragError
from sovrag.train import pack as P
from sovrag.train.crossencoder import TrainConfig, need_torch, predict, save_parts, train

#: Recipe defaults per model (the shipped models' manifests record what was used).
DEFAULTS = {
    "verifier": dict(num_labels=3, batch_size=32, epochs=3.0, lr=5e-5),
    "reranker": dict(num_labels=1, batch_size=32, epochs=2.0, lr=5e-5, group_size=8),
}


def sample_rows(rows: list, n: int, keep: tuple[str, ...], seed: int, pair_with: tuple[str, ...] = ()) -> list:
    """`n` training rows (verifier pack rows: [text, claim, label, source, kind]): every row of the `keep`
    sources and every supported row of the `pair_with` sources about the same premises (a source of negatives
    comes with the positives of its documents, or the model learns to reject everything that looks like them),
    the rest a seeded uniform sample of the others; in the pack's order."""
    import random

    kept = {i for i, r in enumerate(rows) if r[3] in keep}
    premises = {rows[i][0] for i in kept}
    kept |= {i for i, r in enumerate(rows) if r[2] == 0 and r[3] in pair_with and r[0] in premises}
    others = [i for i in range(len(rows)) if i not in kept]
    room = max(0, n - len(kept))
    chosen = kept | set(random.Random(f"{seed}-sample").sample(others, min(room, len(others))))
    return [r for i, r in enumerate(rows) if i in chosen]


def fit(pack_path: Path, base: Path, out: Path, log=print, parts: str = "", sample: int = 0,
        keep: tuple[str, ...] = (), pair_with: tuple[str, ...] = (), **overrides) -> dict:
    need_torch()
    from tokenizers import Tokenizer

    pack, digest = P.read(pack_path)
    kind = pack["kind"]
    if (keep or pair_with) and not sample:
        raise SovragError("--keep/--pair-with: only with --sample N (they choose what a sample keeps)")
    if sample and kind != "verifier":
        raise SovragError(f"--sample: only for a verifier pack ({pack_path} is a {kind} pack)")
    opts = {"max_tokens": int(pack["max_tokens"]), **DEFAULTS[kind],
            **{k: v for k, v in overrides.items() if v is not None}}
    cfg = TrainConfig(base=str(base), out=str(out), seed=int(pack["seed"]), **opts)
    tok = Tokenizer.from_file(str(base / "tokenizer.json"))
    texts = pack["texts"]
    t0 = time.time()
    if kind == "verifier":
        rows = sample_rows(pack["train"], sample, keep, cfg.seed, pair_with) if sample else pack["train"]
        pairs = [(texts[t], claim) for t, claim, *_ in rows]
        labels = [int(r[2]) for r in rows]
        log(f"verifier: {len(pairs)} training pairs, {len(pack['dev'])} dev examples")
        model_dir = train(cfg, pairs, labels, tok, log)
    else:
        from sovrag.train.reranker_data import groups

        pairs, labels, grouped = groups(pack, cfg.group_size, cfg.seed)
        log(f"reranker: {len(grouped)} training questions, {len(pairs)} pairs, {len(pack['dev'])} dev questions")
        model_dir = train(cfg, pairs, labels, tok, log, groups=grouped)
    if model_dir is None:
        return {}
    train_s = time.time() - t0
    dev = dev_metrics({**pack, "max_tokens": cfg.max_tokens}, model_dir, tok, cfg.device, cfg.threads)
    done = json.loads((out / "train_config.json").read_text())
    result = {"kind": kind, "pack_sha256": digest, "config": {**asdict(cfg), "base": str(base), "out": str(out),
                                                              "sample": sample, "keep": list(keep),
                                                              "pair_with": list(pair_with)},
              "steps": done["steps"], "steps_done": done["steps_done"], "dev": dev,
              "train_minutes": round(train_s / 60, 2)}
    (out / "dev.json").write_text(json.dumps(result, indent=1))
    log(json.dumps({"dev": dev, "train_minutes": result["train_minutes"]}))
    if parts:
        save_parts(model_dir, out / "parts", parts)
        (out / "parts" / f"{parts}.dev.json").write_text(json.dumps(result, indent=1))
    return result


def dev_metrics(pack: dict, model_dir: Path, tok, device: str = "cpu", threads: int = 2) -> dict:
    texts = pack["texts"]
    if pack["kind"] == "verifier":
        pairs = [(texts[w], claim) for _, w, claim in pack["dev_windows"]]
        logits = predict(model_dir, tok, pairs, int(pack["max_tokens"]), device, threads=threads)
        z = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        return P.verifier_dev(pack, probs)
    pairs, spans = [], []
    for q, _gold, cands, *_ in pack["dev"]:
        spans.append((len(pairs), len(cands)))
        pairs.extend((q, pack["texts"][c]) for c in cands)
    logits = predict(model_dir, tok, pairs, int(pack["max_tokens"]), device, threads=threads)[:, 0]
    return P.reranker_dev(pack, [list(map(float, logits[a:a + n])) for a, n in spans])
