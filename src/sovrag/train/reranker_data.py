"""(question, passage) groups for the reranker, with hard negatives mined by sovrag's own hybrid search.

Questions and passages come from HaluEval-QA (a knowledge passage per question) and BoolQ dev (a Wikipedia
passage per question), split by passage like every training source (`sources.split_of`). Training groups: a
train-split question, its passage, and the passages sovrag's hybrid search (the embedded Qdrant engine, the
bundled embedder, DBSF fusion: what users get) ranks highest for it among the *train-split* passages only, so
no dev or test passage is ever seen in training, not even as a negative. Dev and test candidates: the hybrid
top-N for dev/test questions from an index of every passage of both corpora (as the retrieval benchmark
searches), which is what the reranker reorders at run time.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sovrag.train.sources import rows

CORPORA = ("halueval-qa", "boolq")


@dataclass(frozen=True)
class Question:
    text: str
    gold: str  # passage id
    corpus: str
    split: str
    answer: str  # HaluEval's right answer, or yes/no


def passage_id(text: str) -> str:
    return str(uuid.UUID(bytes=hashlib.sha256(text.strip().encode("utf-8")).digest()[:16], version=5))


def load(cache: Path) -> tuple[dict[str, str], dict[str, str], list[Question]]:
    """Passages (id -> text), their split, and every question of both corpora."""
    texts: dict[str, str] = {}
    split: dict[str, str] = {}
    questions: list[Question] = []
    for corpus in CORPORA:
        for r in rows(corpus, cache):
            q = (r.fields.get("question") or "").strip()
            if not q:
                continue
            pid = passage_id(r.doc)
            texts.setdefault(pid, r.doc)
            split[pid] = r.split
            if corpus == "boolq":
                answer = "yes" if str(r.fields.get("answer")) == "True" else "no"
            else:
                answer = str(r.fields.get("right_answer", "")).strip()
            questions.append(Question(q, pid, corpus, r.split, answer))
    return texts, split, questions


def _index(settings, name: str, texts: dict[str, str], ids: list[str], vectors: np.ndarray):
    from sovrag.collection import open_collection
    from sovrag.types import Chunk

    col = open_collection(settings, name, create=True)
    for start in range(0, len(ids), 512):
        part = ids[start:start + 512]
        chunks = [Chunk(i, i, texts[i], i, "", 0, version="1", chunk_count=1) for i in part]
        col.store.upsert(chunks, vectors[start:start + len(part)])
    col.store.flush()
    col.store.optimize()
    return col


def _search_all(col, questions: list[Question], qvecs: np.ndarray, depth: int) -> Iterator[list[tuple[str, float]]]:
    from sovrag.store import SearchQuery

    for q, v in zip(questions, qvecs, strict=True):
        hits = col.store.search(SearchQuery(q.text, v), top_k=depth, mode="hybrid")
        yield [(h.chunk.id, float(h.score)) for h in hits]


def mine(settings, cache: Path, depth: int = 30, log: Callable[[str], None] = print,
         limit: int = 0, seed: int = 13) -> dict:
    """{"texts": {id: passage}, "train": [(question, gold, [ranked ids])], "dev"/"test": [(question, gold,
    [candidate ids], [hybrid scores], corpus, answer)]}. Embeddings are cached in `cache`. `limit` caps the
    questions per split (0 = all; for smoke runs)."""
    from sovrag.embed import create_embedder

    texts, split, questions = load(cache)
    if limit:
        rng = random.Random(seed)
        by_split = {s: [q for q in questions if q.split == s] for s in ("train", "dev", "test")}
        questions = [q for s in by_split.values() for q in rng.sample(s, min(limit, len(s)))]
        keep = {q.gold for q in questions}
        extra = rng.sample(sorted(texts), min(len(texts), limit * 4))
        texts = {i: texts[i] for i in sorted(keep | set(extra))}
    embedder = create_embedder(settings)
    all_ids = sorted(texts)
    vecs = _embed_cached(embedder, [texts[i] for i in all_ids], cache, "passages")
    row = {i: k for k, i in enumerate(all_ids)}
    qvecs = _embed_cached(embedder, [q.text for q in questions], cache, "questions")
    log(f"{len(all_ids)} passages, {len(questions)} questions embedded")
    tmp = Path(tempfile.mkdtemp(prefix="sovrag-mine-"))
    try:
        (tmp / "models").symlink_to(settings.models_dir, target_is_directory=True)
        s = settings.with_overrides(data_dir=tmp, store="qdrant-edge")
        out: dict = {"texts": texts, "depth": depth}
        train_ids = [i for i in all_ids if split[i] == "train"]
        col = _index(s, "mine-train", texts, train_ids, vecs[[row[i] for i in train_ids]])
        tq = [k for k, q in enumerate(questions) if q.split == "train"]
        out["train"] = [(questions[k].text, questions[k].gold, [i for i, _ in hits], questions[k].corpus)
                        for k, hits in zip(tq, _search_all(col, [questions[k] for k in tq], qvecs[tq], depth),
                                           strict=True)]
        col.close()
        log(f"mined {len(out['train'])} training questions")
        col = _index(s, "mine-all", texts, all_ids, vecs)
        for name in ("dev", "test"):
            ks = [k for k, q in enumerate(questions) if q.split == name]
            out[name] = [(questions[k].text, questions[k].gold, [i for i, _ in hits], [sc for _, sc in hits],
                          questions[k].corpus, questions[k].answer)
                         for k, hits in zip(ks, _search_all(col, [questions[k] for k in ks], qvecs[ks], depth),
                                            strict=True)]
        col.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _embed_cached(embedder, texts: list[str], cache: Path, kind: str, batch: int = 128) -> np.ndarray:
    h = hashlib.sha256(embedder.name.encode())
    for t in texts:
        h.update(b"\x00" + t.encode("utf-8"))
    path = cache / "embeddings" / f"{kind}-{h.hexdigest()[:16]}.npy"
    if path.is_file():
        return np.load(path)
    vecs = np.concatenate([embedder.embed(texts[i:i + batch]) for i in range(0, len(texts), batch)])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


def groups(mined: dict, group_size: int, seed: int, hard: int = 0) -> tuple[list[tuple[str, str]], list[int],
                                                                           list[list[int]]]:
    """Training pairs, labels (1 relevant, 0 not) and groups: per question its passage and `group_size - 1`
    negatives, the `hard` best-ranked others (default: half) and the rest drawn from the remaining ranks."""
    rng = random.Random(f"{seed}-rerank")
    hard = hard or (group_size - 1) // 2 + 1
    texts = mined["texts"]
    pairs: list[tuple[str, str]] = []
    labels: list[int] = []
    out: list[list[int]] = []
    for question, gold, ranked, _corpus in mined["train"]:
        others = [i for i in ranked if i != gold]
        if len(others) < group_size - 1:
            continue
        chosen = others[:hard] + rng.sample(others[hard:], group_size - 1 - hard)
        g = []
        for pid, label in [(gold, 1)] + [(i, 0) for i in chosen]:
            g.append(len(pairs))
            pairs.append((question, texts[pid]))
            labels.append(label)
        out.append(g)
    return pairs, labels, out
