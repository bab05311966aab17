"""A training pack: everything one model's fine-tune needs, in one xz-compressed JSON file.

Building the examples needs the data wheels, the sentence splitter and (for the reranker) sovrag's own search
over an index of every passage; training needs only torch. Splitting the recipe at the pack lets the slow part
run on a GPU machine that has no network and none of sovrag's run-time dependencies, and lets anyone check that
two machines trained on exactly the same examples (the pack's sha256 is recorded in the manifest).

    verifier pack: texts (premises, each once), train examples (text index, claim, label, source, kind), and the
                   dev split as the verifier reads it at run time (long premises already cut into its windows)
    reranker pack: texts (passages), mined training questions, dev candidates (hybrid top-N)
"""

from __future__ import annotations

import hashlib
import json
import lzma
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sovrag.errors import SovragError

FORMAT = 1


def write(path: Path, pack: dict) -> str:
    """Write the pack; returns its sha256."""
    data = lzma.compress(json.dumps({**pack, "format": FORMAT}, separators=(",", ":")).encode("utf-8"),
                         preset=9 | lzma.PRESET_EXTREME)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return hashlib.sha256(data).hexdigest()


def read(path: Path) -> tuple[dict, str]:
    try:
        data = Path(path).read_bytes()
        pack = json.loads(lzma.decompress(data))
    except (OSError, lzma.LZMAError, ValueError) as e:
        raise SovragError(f"training pack {path}: cannot be read ({e})") from e
    if pack.get("format") != FORMAT or pack.get("kind") not in ("verifier", "reranker"):
        raise SovragError(f"training pack {path}: not a sovrag training pack (format {pack.get('format')!r})")
    return pack, hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- the verifier
def verifier_pack(train, dev, seed: int, max_tokens: int, count: Callable[[str], int]) -> dict:
    """`train`/`dev`: verifier_data.Example lists (train focused, dev whole as at run time)."""
    from sovrag.text import split_sentences
    from sovrag.verifier import windows

    texts: dict[str, int] = {}

    def tid(t: str) -> int:
        return texts.setdefault(t, len(texts))

    rows = [[tid(e.premise), e.claim, e.label, e.source, e.kind] for e in train]
    dev_rows, dev_windows = [], []
    for k, e in enumerate(dev):
        dev_rows.append([e.label, e.source, e.kind])
        room = max_tokens - min(count(e.claim), max_tokens // 2) - 3
        for w in windows(split_sentences(e.premise), e.claim, room, count) or [e.premise]:
            dev_windows.append([k, tid(w), e.claim])
    return {"kind": "verifier", "seed": seed, "max_tokens": max_tokens, "texts": list(texts), "train": rows,
            "dev": dev_rows, "dev_windows": dev_windows}


def balanced_accuracy(gold: list[bool], pred: list[bool]) -> float:
    pos = [p for g, p in zip(gold, pred, strict=True) if g]
    neg = [not p for g, p in zip(gold, pred, strict=True) if not g]
    parts = [sum(x) / len(x) for x in (pos, neg) if x]
    return sum(parts) / len(parts) if parts else float("nan")


def verifier_dev(pack: dict, probs: np.ndarray) -> dict:
    """Per dev source, balanced accuracy at the threshold (on p(supported), max over windows) with the best
    mean over sources; `probs`: one row of class probabilities per dev window."""
    n = len(pack["dev"])
    best = np.zeros(n)
    for (k, _, _), p in zip(pack["dev_windows"], probs, strict=True):
        best[k] = max(best[k], float(p[0]))
    sources = sorted({r[1] for r in pack["dev"]})
    gold = np.array([r[0] == 0 for r in pack["dev"]])
    src = np.array([r[1] for r in pack["dev"]])
    out: dict = {"threshold": 0.5, "mean": -1.0}
    for t in np.arange(0.05, 0.96, 0.01):
        per = {s: balanced_accuracy(list(gold[src == s]), list(best[src == s] >= t)) for s in sources}
        m = float(np.mean(list(per.values())))
        if m > out["mean"]:
            out = {"threshold": round(float(t), 2), "mean": round(m, 4), "per_source": {k: round(v, 4)
                                                                                         for k, v in per.items()}}
    return out


# ---------------------------------------------------------------- the reranker
def reranker_pack(mined: dict, seed: int, max_tokens: int) -> dict:
    return {"kind": "reranker", "seed": seed, "max_tokens": max_tokens, **mined}


def ndcg_at_10(ranked: list[str], gold: str) -> float:
    for r, pid in enumerate(ranked[:10]):
        if pid == gold:
            return float(1.0 / np.log2(r + 2))
    return 0.0


def reranker_dev(pack: dict, scores: list[list[float]], top: int = 30) -> dict:
    """nDCG@10 of the hybrid order and of the reranked top-`top`, per corpus and over both, and how well the
    best score separates questions whose passage is among the candidates from the same questions with it
    taken out (ROC AUC): the abstention gate's signal."""
    per: dict[str, dict[str, list[float]]] = {}
    present, removed = [], []
    for (_q, gold, cands, _hyb, corpus, _a), sc in zip(pack["dev"], scores, strict=True):
        cands, sc = cands[:top], sc[:top]
        order = [cands[i] for i in np.argsort(-np.asarray(sc), kind="stable")]
        d = per.setdefault(corpus, {"hybrid": [], "reranked": []})
        d["hybrid"].append(ndcg_at_10(cands, gold))
        d["reranked"].append(ndcg_at_10(order, gold))
        if gold in cands:
            present.append(max(sc))
            rest = [s for c, s in zip(cands, sc, strict=True) if c != gold]
            removed.append(max(rest) if rest else -1e9)
    out = {c: {k: round(float(np.mean(v)), 4) for k, v in d.items()} for c, d in per.items()}
    allh = [x for d in per.values() for x in d["hybrid"]]
    allr = [x for d in per.values() for x in d["reranked"]]
    out["union"] = {"hybrid": round(float(np.mean(allh)), 4), "reranked": round(float(np.mean(allr)), 4)}
    out["answerable_auc"] = round(_auc(present, removed), 4)
    out["mean"] = out["union"]["reranked"]
    return out


def _auc(pos: list[float], neg: list[float]) -> float:
    if not pos or not neg:
        return float("nan")
    s = np.asarray(pos + neg)
    ranks = s.argsort().argsort() + 1.0
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))
