"""Ingestion throughput on a real corpus: Debian's linux-doc-6.1 (the kernel's Documentation, .rst files).

End to end (walk -> load -> chunk -> embed -> BM25 -> upsert into the embedded Qdrant engine) against the
raw embedder on exactly the chunks that run produced, measured in the same process one after the other,
so the ratio shows what everything besides embedding costs.

    .venv/bin/python benchmarks/ingest_throughput.py [--files N] [--seed S]

The .deb is fetched with `apt-get download linux-doc-6.1` into benchmarks/.cache (Debian's registry).
On a 2-core machine the embedder runs at roughly 10-25 chunks/s, so the full corpus (~3,000 files) takes
over an hour; --files takes a seeded random sample of files.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CACHE = Path(__file__).resolve().parent / ".cache"
RESULTS = Path(__file__).resolve().parent / "results"


def linux_doc_root() -> Path:
    target = CACHE / "linux-doc"
    docs = target / "usr" / "share" / "doc" / "linux-doc-6.1"
    if docs.is_dir():
        return docs
    CACHE.mkdir(parents=True, exist_ok=True)
    debs = sorted(CACHE.glob("linux-doc-6.1_*.deb"))
    if not debs:
        subprocess.run(["apt-get", "download", "linux-doc-6.1"], cwd=CACHE, check=True)
        debs = sorted(CACHE.glob("linux-doc-6.1_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(target)], check=True)
    return docs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=300, help="random sample of .rst files (0 = all)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from datasets import machine

    from sovrag.collection import open_collection
    from sovrag.config import Settings
    from sovrag.ingest.sync import ingest

    root = linux_doc_root()
    # Debian ships most of the .rst files gzipped; the sample is unpacked into the private copy below.
    files = sorted([*root.rglob("*.rst"), *root.rglob("*.rst.gz")])
    total_files = len(files)
    if args.files:
        files = sorted(random.Random(args.seed).sample(files, min(args.files, len(files))))
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        for f in files:  # a private copy of the sample, so ingest walks exactly these files
            dest = corpus / f.relative_to(root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if f.suffix == ".gz":
                dest.with_suffix("").write_bytes(gzip.decompress(f.read_bytes()))
            else:
                dest.write_bytes(f.read_bytes())
        data = Path(tmp) / "data"
        data.mkdir()
        (data / "models").symlink_to(Path.home() / ".cache" / "sovrag-test-models")
        settings = Settings(data_dir=data)
        with open_collection(settings, "linuxdoc", create=True) as col:
            col.embedder.embed(["warm up the session"])
            t0 = time.perf_counter()
            report = ingest(settings, col, [corpus])
            e2e = time.perf_counter() - t0
            texts = []
            offset = None
            import qdrant_edge as qe

            while True:
                recs, offset = col.store.shard.scroll(qe.ScrollRequest(
                    offset=offset, limit=2048, with_payload=qe.PayloadSelector.Include(["text"])))
                texts.extend(r.payload["text"] for r in recs)
                if offset is None:
                    break
            t1 = time.perf_counter()
            step = settings.ingest_batch_chunks
            for start in range(0, len(texts), step):  # the same batching as ingest
                col.embedder.embed(texts[start : start + step])
            raw = time.perf_counter() - t1
            t2 = time.perf_counter()
            again = ingest(settings, col, [corpus])
            resync = time.perf_counter() - t2
    n = report.chunks_written
    result = {
        "machine": machine(),
        "corpus": f"linux-doc-6.1 .rst, {len(files)} of {total_files} files (seed {args.seed})",
        "files_added": len(report.added), "files_failed": len(report.failed), "chunks": n,
        "e2e_seconds": round(e2e, 1), "e2e_chunks_per_s": round(n / e2e, 2),
        "raw_embed_seconds": round(raw, 1), "raw_embed_chunks_per_s": round(len(texts) / raw, 2),
        "ratio_e2e_to_raw": round((n / e2e) / (len(texts) / raw), 3),
        "unchanged_resync_seconds": round(resync, 2), "unchanged_files": len(again.unchanged),
        "failures": report.failed[:20],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ingest_throughput.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
