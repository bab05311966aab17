"""Reliability figures for docs/benchmarks.md: hostile folders, long unspaced text, slow clients, costly requests.

    .venv/bin/python benchmarks/reliability.py [--copies 60] [--good 200]

1. A generated hostile folder (tests/hostile_corpus.py: 17 kinds of bad file x copies, plus good files)
   through `sovrag ingest` in a subprocess: bad files named, good files indexed, peak resident memory of
   the whole process tree (ingest + its parse worker), seconds.
2. Chunking a run of CJK text with no spaces, the chunker of the last release (read from git, commit
   957a5c3) against this one, side by side on the same text and tokenizer.
3. A live `sovrag serve` limited to 256 file descriptors: 400 half-sent requests, then /healthz; and the
   token caps on /v1/embeddings (the 117 KB request that took 55 s).
Results go to benchmarks/results/reliability.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sovrag.machine import machine_info  # noqa: E402
from tests import hostile_corpus  # noqa: E402
from tests.conftest import MODELS_DIR  # noqa: E402
from tests.ingest_fixtures import count_tokens_factory  # noqa: E402

BIN = Path(sys.executable).parent
OLD = "957a5c3"  # the last commit before the reliability work


def hostile(copies: int, good: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        corpus = hostile_corpus.build(base / "hostile", copies=copies, good=good)
        data = base / "data"
        data.mkdir()
        (data / "models").symlink_to(MODELS_DIR, target_is_directory=True)
        env = {**os.environ, "SOVRAG_DATA_DIR": str(data), "SOVRAG_MAX_FILE_MB": str(hostile_corpus.MAX_FILE_MB)}
        code, out, err, peak, seconds = hostile_corpus.run_measured(
            [str(BIN / "sovrag"), "ingest", str(corpus.root), "-c", "kb", "--json"], env, 3600)
        report = json.loads(out)
        named = {r["source"] for r in report["failures"] + report["skipped_files"]}
        return {"bad_files": len(corpus.bad), "bad_named": sum(str(p) in named for p in corpus.bad),
                "good_files": len(corpus.good), "good_indexed": report["added"], "exit_code": code,
                "peak_rss_mb": round(peak / 2**20), "seconds": round(seconds, 1)}


def _old_chunker():
    src = subprocess.run(["git", "show", f"{OLD}:src/sovrag/ingest/chunker.py"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "old_chunker.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("old_chunker", path)
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["old_chunker"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def chunking() -> list[dict]:
    from sovrag.ingest import chunker as new

    old = _old_chunker()
    count = count_tokens_factory()
    rows = []
    text = "这是一个很长的中文句子没有空格" * 3000
    for n in (10_000, 20_000, 40_000):
        row: dict = {"cjk_chars": n}
        for name, mod in (("old", old), ("new", new)):
            t0 = time.perf_counter()
            chunks = mod.split_text(text[:n], count, 200, 32)
            row[f"{name}_s"] = round(time.perf_counter() - t0, 3)
            row[f"{name}_max_tokens"] = max(count(c) for c in chunks)
        row["speedup"] = round(row["old_s"] / row["new_s"], 1)
        rows.append(row)
    return rows


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _probe(base: str) -> str:
    """One /healthz: its status and seconds, or how it failed."""
    import httpx

    t0 = time.monotonic()
    try:
        r = httpx.get(base + "/healthz", timeout=30)
        return f"{r.status_code} in {time.monotonic() - t0:.3f} s"
    except httpx.HTTPError as e:
        return f"{type(e).__name__} after {time.monotonic() - t0:.3f} s"


def server() -> dict:
    import httpx

    admin = "admin-" + secrets.token_hex(16)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        (data / "models").symlink_to(MODELS_DIR, target_is_directory=True)
        port = _port()
        env = {**os.environ, "SOVRAG_DATA_DIR": str(data), "SOVRAG_ADMIN_KEY": admin,
               "SOVRAG_SERVE_HEADER_TIMEOUT_S": "10"}
        log = Path(tmp) / "server.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([str(BIN / "sovrag"), "serve", "--port", str(port)], env=env, stdout=out,
                                    stderr=subprocess.STDOUT,
                                    preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256)))
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            a = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {admin}"}, timeout=60)
            tid = a.post("/admin/tenants", json={"name": "t"}).json()["id"]
            key = a.post(f"/admin/tenants/{tid}/keys", json={}).json()["key"]
            flood = []
            for _ in range(400):
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                flood.append(s)
            during = _probe(base)
            time.sleep(11)
            open_after = 0
            for s in flood:
                s.settimeout(0.2)
                try:
                    open_after += s.recv(16) != b""
                except TimeoutError:
                    open_after += 1
                except OSError:
                    pass
                s.close()
            after = _probe(base)
            c = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=300)
            body = {"model": "minilm-l6-v2", "input": "。" * 39_000}  # 117 KB of one-token characters
            t0 = time.monotonic()
            big = c.post("/v1/embeddings", json=body)
            big_s = time.monotonic() - t0
            return {"half_sent_connections": 400, "healthz_during_flood": during,
                    "still_open_after_header_timeout": open_after, "healthz_after": after,
                    "log_bytes": log.stat().st_size, "too_many_open_files_lines":
                    log.read_text().count("Too many open files"),
                    "embeddings_117kb": [big.status_code, round(big_s, 3), big.json()["error"]["message"][:120]]}
        finally:
            proc.terminate()
            proc.wait(60)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=60)
    ap.add_argument("--good", type=int, default=200)
    args = ap.parse_args()
    result = {"machine": machine_info(), "date": time.strftime("%Y-%m-%d"),
              "hostile_folder": hostile(args.copies, args.good), "chunking": chunking(), "server": server()}
    out = ROOT / "benchmarks" / "results" / "reliability.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
