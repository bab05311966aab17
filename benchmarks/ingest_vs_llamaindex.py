"""Ingestion side by side: sovrag vs LlamaIndex's defaults, the same ONNX embedder, the same files.

LlamaIndex runs in its own virtual environment (benchmarks/.cache/llamaindex-venv: llama-index-core and the same
onnxruntime and tokenizers as sovrag, nothing of sovrag), so neither installation shapes the other. Both read the
same seeded sample of files from disk — HaluEval-QA's knowledge passages (real Wikipedia text, one .txt each) or
Debian's linux-doc-6.1 (the kernel's Documentation, reStructuredText) — and embed
with the same MiniLM-L6 int8 ONNX model on onnxruntime with the same thread count:

- sovrag: `sovrag.ingest.sync.ingest` into a fresh collection of the embedded Qdrant engine (parse, chunk,
  embed, BM25, write);
- LlamaIndex: `SimpleDirectoryReader(dir, recursive=True).load_data()` then `VectorStoreIndex.from_documents`
  (its defaults: SentenceSplitter 1024/200 tiktoken tokens, embed batch 10, the in-memory vector store), with
  the model wrapped as a `BaseEmbedding` that truncates at the model's 256-token window, as sentence-transformers
  does for this model; and LlamaIndex with chunks sized like sovrag's (SentenceSplitter 200/32) so that little
  is cut ("llamaindex-window");
- raw: sovrag's embedder alone on exactly the chunk texts sovrag stored (what everything else costs);
- "sovrag-pool-64": sovrag as it was before `ingest_batch_chunks` grew from 64 to 512 (the embedder sorts each
  write batch by length, so a bigger pool pads less).

Each system runs in a fresh process per round, rounds interleaved (the order alternates), timed from reading
the files to the index built, after the model is loaded and warmed. Speed is kilobytes of source file per
second; text loss is the share of each system's embedder input tokens beyond the model's window.

    .venv/bin/python benchmarks/ingest_vs_llamaindex.py [--corpus halueval|linux-doc] [--files N] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
VENV = CACHE / "llamaindex-venv"
#: LlamaIndex's side; onnxruntime/tokenizers/numpy as in sovrag's own environment.
LLAMAINDEX = ["llama-index-core==0.14.25", "onnxruntime==1.32.0", "tokenizers==0.23.3", "numpy==2.4.6"]
MODEL = Path.home() / ".cache" / "sovrag-test-models" / "minilm-l6-v2"
WINDOW = 256
#: "sovrag-pool-64": sovrag with ingest_batch_chunks = 64, as it was (each embedder batch sorted from 64 chunks).
SYSTEMS = ("sovrag", "sovrag-pool-64", "llamaindex", "llamaindex-window")


def venv_python() -> Path:
    py = VENV / "bin" / "python"
    if not py.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *LLAMAINDEX], check=True)
    return py


def corpus(name: str, files: int, seed: int) -> tuple[Path, int]:
    out = CACHE / f"li-corpus-{name}-{files}-{seed}"
    if not out.is_dir():
        tmp = out.with_suffix(".tmp")
        (_halueval if name == "halueval" else _linux_doc)(tmp, files, seed)
        tmp.rename(out)
    return out, sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


def _halueval(out: Path, files: int, seed: int) -> None:
    """HaluEval-QA knowledge passages (real Wikipedia text), one .txt file each."""
    sys.path.insert(0, str(HERE))
    import datasets as D

    ds = D.load("halueval")
    out.mkdir(parents=True)
    for p in random.Random(seed).sample(ds.passages, min(files, len(ds.passages))):
        (out / f"{p.id}.txt").write_text(p.text + "\n", encoding="utf-8")


def _linux_doc(out: Path, files: int, seed: int) -> None:
    import gzip

    sys.path.insert(0, str(HERE))
    from ingest_throughput import linux_doc_root

    root = linux_doc_root()
    found = sorted([*root.rglob("*.rst"), *root.rglob("*.rst.gz")])
    for f in sorted(random.Random(seed).sample(found, min(files, len(found)))):
        dest = out / f.relative_to(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        data = gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes()
        dest.with_suffix("" if f.suffix == ".gz" else f.suffix).write_bytes(data)


# ---------------------------------------------------------------- the children (one process per run)
def child_sovrag(src: Path, threads: int, pool: int = 0) -> dict:
    sys.path.insert(0, str(HERE.parent / "src"))
    from sovrag.collection import open_collection
    from sovrag.config import Settings
    from sovrag.ingest.sync import ingest

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        (data / "models").symlink_to(MODEL.parent)
        settings = Settings(data_dir=data, embed_threads=threads, **({"ingest_batch_chunks": pool} if pool else {}))
        with open_collection(settings, "bench", create=True) as col:
            col.embedder.embed(["warm up the session"])
            t0 = time.perf_counter()
            report = ingest(settings, col, [src])
            seconds = time.perf_counter() - t0
            texts = _texts(col)
            tokens = [col.embedder.count_tokens(t) for t in texts]
            t1 = time.perf_counter()
            step = settings.ingest_batch_chunks
            for start in range(0, len(texts), step):  # as ingest batches them
                col.embedder.embed(texts[start:start + step])
            raw = time.perf_counter() - t1
    body = WINDOW - 2  # sovrag embeds a longer chunk window by window: nothing is cut
    return {"seconds": seconds, "raw_seconds": raw, "chunks": report.chunks_written, "failed": len(report.failed),
            "tokens": sum(tokens), "tokens_beyond_window": 0, "chunks_over_window": sum(t > body for t in tokens)}


def _texts(col) -> list[str]:
    import qdrant_edge as qe

    texts, offset = [], None
    while True:
        recs, offset = col.store.shard.scroll(qe.ScrollRequest(
            offset=offset, limit=2048, with_payload=qe.PayloadSelector.Include(["text"])))
        texts.extend(r.payload["text"] for r in recs)
        if offset is None:
            return texts


def child_llamaindex(src: Path, threads: int, window: bool = False) -> dict:
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    import numpy as np
    import onnxruntime as ort
    from llama_index.core import SimpleDirectoryReader, VectorStoreIndex
    from llama_index.core.embeddings import BaseEmbedding
    from tokenizers import Tokenizer

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(MODEL / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    full = Tokenizer.from_file(str(MODEL / "tokenizer.json"))
    full.no_truncation()
    full.no_padding()
    tok = Tokenizer.from_file(str(MODEL / "tokenizer.json"))
    tok.enable_truncation(WINDOW)
    tok.enable_padding()
    seen = {"tokens": 0, "beyond": 0, "texts": 0}

    def embed(texts: list[str]) -> list[list[float]]:
        for e in full.encode_batch(texts):
            seen["tokens"] += len(e.ids)
            seen["beyond"] += max(0, len(e.ids) - WINDOW)
            seen["texts"] += 1
        encs = tok.encode_batch(texts)
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = session.run(None, feeds)[0]
        v = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).tolist()

    class OnnxMiniLM(BaseEmbedding):
        def _get_text_embeddings(self, texts):
            return embed(list(texts))

        def _get_text_embedding(self, text):
            return embed([text])[0]

        def _get_query_embedding(self, query):
            return embed([query])[0]

        async def _aget_query_embedding(self, query):
            return embed([query])[0]

    model = OnnxMiniLM(model_name="minilm-l6-v2-int8")
    model.get_text_embedding("warm up the session")
    seen.update(tokens=0, beyond=0, texts=0)
    t0 = time.perf_counter()
    docs = SimpleDirectoryReader(str(src), recursive=True).load_data()
    if window:  # chunks sized like sovrag's (200 tokens, 32 overlap; tiktoken tokens here) so little is cut
        from llama_index.core.node_parser import SentenceSplitter

        index = VectorStoreIndex.from_documents(docs, embed_model=model,
                                                transformations=[SentenceSplitter(chunk_size=200, chunk_overlap=32)])
    else:
        index = VectorStoreIndex.from_documents(docs, embed_model=model)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "chunks": len(index.docstore.docs), "documents": len(docs),
            "tokens": seen["tokens"], "tokens_beyond_window": seen["beyond"],
            "chunks_over_window": None, "embed_batch_size": model.embed_batch_size}


# ---------------------------------------------------------------- the driver
def run(which: str, src: Path, threads: int) -> dict:
    py = str(venv_python()) if which.startswith("llamaindex") else sys.executable
    env = {**os.environ, "ORT_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run([py, __file__, "--child", which, "--src", str(src), "--threads", str(threads)],
                         capture_output=True, text=True, env=env, check=False)
    if out.returncode:
        raise SystemExit(f"{which} run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", choices=["halueval", "linux-doc"], default="halueval")
    ap.add_argument("--files", type=int, default=2000, help="passages (halueval) or .rst files (linux-doc)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--child", choices=SYSTEMS)
    ap.add_argument("--src", type=Path)
    args = ap.parse_args()
    if args.child:
        if args.child.startswith("sovrag"):
            print(json.dumps(child_sovrag(args.src, args.threads, 64 if args.child == "sovrag-pool-64" else 0)))
        else:
            print(json.dumps(child_llamaindex(args.src, args.threads, window=args.child == "llamaindex-window")))
        return
    sys.path.insert(0, str(HERE))
    import shutil

    from datasets import machine

    venv_python()
    cached, size = corpus(args.corpus, args.files, args.seed)
    # a copy outside the hidden .cache folder: LlamaIndex's reader skips every file under a hidden directory
    src = Path(tempfile.mkdtemp(prefix="sovrag-li-")) / "corpus"
    shutil.copytree(cached, src)
    runs: dict[str, list[dict]] = {k: [] for k in SYSTEMS}
    for r in range(args.rounds):
        for which in (SYSTEMS if r % 2 == 0 else SYSTEMS[::-1]):
            got = run(which, src, args.threads)
            got["kb_per_s"] = size / 1000 / got["seconds"]
            runs[which].append(got)
            print(f"round {r + 1} {which}: {got['seconds']:.1f} s, {got['kb_per_s']:.1f} KB/s, {got['chunks']} chunks",
                  flush=True)
    s = runs["sovrag"]
    p64 = runs["sovrag-pool-64"]

    def med(rows, key):
        return statistics.median(x[key] for x in rows)

    result = {
        "machine": machine(),
        "corpus": f"{args.corpus}, {args.files} files (seed {args.seed}), {size / 1e6:.2f} MB",
        "threads": args.threads, "rounds": args.rounds,
        "sovrag": {"kb_per_s": round(med(s, "kb_per_s"), 2), "seconds": round(med(s, "seconds"), 1),
                   "chunks": s[0]["chunks"], "failed_files": s[0]["failed"], "embedder_tokens": s[0]["tokens"],
                   "share_of_text_beyond_window": 0.0, "chunks_longer_than_window": s[0]["chunks_over_window"],
                   "raw_embedder_seconds": round(med(s, "raw_seconds"), 1),
                   "ratio_to_raw_embedder_median": round(statistics.median(
                       x["raw_seconds"] / x["seconds"] for x in s), 3)},
        "sovrag-pool-64": {"kb_per_s": round(med(p64, "kb_per_s"), 2), "seconds": round(med(p64, "seconds"), 1),
                           "ratio_sovrag_to_this_median": round(statistics.median(
                               a["kb_per_s"] / b["kb_per_s"] for a, b in zip(s, p64, strict=True)), 3)},
    }
    for name in SYSTEMS[2:]:
        li = runs[name]
        ratios = [a["kb_per_s"] / b["kb_per_s"] for a, b in zip(s, li, strict=True)]
        result[name] = {"kb_per_s": round(med(li, "kb_per_s"), 2), "seconds": round(med(li, "seconds"), 1),
                        "chunks": li[0]["chunks"], "embedder_tokens": li[0]["tokens"],
                        "share_of_text_beyond_window": round(li[0]["tokens_beyond_window"] / li[0]["tokens"], 3),
                        "embed_batch_size": li[0]["embed_batch_size"],
                        "ratio_sovrag_to_this_per_round": [round(x, 3) for x in ratios],
                        "ratio_sovrag_to_this_median": round(statistics.median(ratios), 3)}
    shutil.rmtree(src.parent)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"ingest_vs_llamaindex_{args.corpus}.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
