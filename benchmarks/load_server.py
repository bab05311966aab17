"""Load on `sovrag serve`: concurrent clients mixing search, RAG chat and uploads, for a fixed time.

Starts the real server (`sovrag serve`) as a subprocess on a free loopback port with a fresh data dir
(models from the shared cache), creates a tenant and key through the admin API, uploads examples/docs,
then runs N client threads for the given seconds. Each request picks a route at random (weights below),
and every request is bounded by a timeout; the run stops by itself. Reports requests/s, p50/p95/p99
latency per route, errors, and the server's peak RSS (from /proc).

    .venv/bin/python benchmarks/load_server.py --clients 8 --seconds 300
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import signal
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

from datasets import machine, test_settings  # noqa: E402

QUESTIONS = [
    "How many vacation days do new employees get?", "What is the hotel limit per night?",
    "How long must passwords be?", "When is the on-call handover?", "What is the NW-7 battery life?",
    "How much can the NW-7 carry?", "What changed in firmware 4.2?", "Who approves expenses over 500 EUR?",
]
WEIGHTS = {"search": 0.6, "chat": 0.25, "upload": 0.15}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=int, default=300)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    models = test_settings().models_dir
    admin = secrets.token_hex(16)
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        (data / "models").symlink_to(models, target_is_directory=True)
        env = {**os.environ, "SOVRAG_ADMIN_KEY": admin, "SOVRAG_DATA_DIR": str(data), "SOVRAG_LLM_CONTEXT": "2048",
               "SOVRAG_SERVE_RATE_LIMIT_RPM": "100000"}
        server = subprocess.Popen([str(ROOT / ".venv" / "bin" / "sovrag"), "serve", "--port", str(port),
                                   "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=10) as c:
                for _ in range(120):
                    try:
                        if c.get("/readyz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    time.sleep(0.5)
                else:
                    raise SystemExit("server did not become ready in 60 s")
                tid = c.post("/admin/tenants", json={"name": "load"}, headers={"Authorization": f"Bearer {admin}"}
                             ).json()["id"]
                key = c.post(f"/admin/tenants/{tid}/keys", json={"name": "load"},
                             headers={"Authorization": f"Bearer {admin}"}).json()["key"]
            auth = {"Authorization": f"Bearer {key}"}
            docs = sorted((ROOT / "examples" / "docs").iterdir())
            with httpx.Client(base_url=base, timeout=120, headers=auth) as c:
                c.post("/v1/collections", json={"name": "kb"}).raise_for_status()
                files = [("files", (p.name, p.read_bytes())) for p in docs]
                job = c.post("/v1/collections/kb/documents", files=files).json()["id"]
                while c.get(f"/v1/jobs/{job}").json()["state"] not in ("succeeded", "failed", "aborted"):
                    time.sleep(0.5)
                c.post("/v1/chat/completions", json={"model": "rag:kb", "max_tokens": 8, "messages": [
                    {"role": "user", "content": QUESTIONS[0]}]})  # loads the LLM before timing

            lat: dict[str, list[float]] = {r: [] for r in WEIGHTS}
            errors: dict[str, list[str]] = {r: [] for r in WEIGHTS}
            peak = [rss_kb(server.pid)]
            stop = time.monotonic() + args.seconds
            lock = threading.Lock()

            def client(n: int) -> None:
                rng = random.Random(args.seed + n)
                with httpx.Client(base_url=base, timeout=180, headers=auth) as c:
                    while time.monotonic() < stop:
                        route = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
                        q = rng.choice(QUESTIONS)
                        t0 = time.perf_counter()
                        try:
                            if route == "search":
                                r = c.post("/v1/collections/kb/search", json={"query": q, "top_k": 5})
                            elif route == "chat":
                                r = c.post("/v1/chat/completions", json={
                                    "model": "rag:kb", "max_tokens": 48, "messages": [{"role": "user", "content": q}]})
                            else:
                                doc = rng.choice(docs)
                                upload = [("files", (doc.name, doc.read_bytes()))]
                                r = c.post("/v1/collections/kb/documents", files=upload)
                            ok = r.status_code < 400
                            why = f"HTTP {r.status_code}: {r.text[:120]}"
                        except httpx.HTTPError as e:
                            ok, why = False, f"{type(e).__name__}: {e}"
                        dt = time.perf_counter() - t0
                        with lock:
                            (lat[route] if ok else errors[route]).append(dt if ok else why)  # type: ignore[arg-type]

            def sample_rss() -> None:
                while time.monotonic() < stop:
                    peak[0] = max(peak[0], rss_kb(server.pid))
                    time.sleep(1)

            threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
            threads.append(threading.Thread(target=sample_rss))
            t_start = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.monotonic() - t_start
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
    total = sum(len(v) for v in lat.values())
    result = {
        "machine": machine(), "clients": args.clients, "seconds": round(wall, 1),
        "requests_per_s": round(total / wall, 2), "errors": {r: len(v) for r, v in errors.items()},
        "error_samples": {r: v[:3] for r, v in errors.items() if v},
        "server_peak_rss_mb": round(peak[0] / 1024, 1),
        "routes": {r: {"n": len(v), "p50_s": round(pct(v, 0.5), 3), "p95_s": round(pct(v, 0.95), 3),
                       "p99_s": round(pct(v, 0.99), 3), "mean_s": round(statistics.fmean(v), 3) if v else 0}
                   for r, v in lat.items()},
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "load_server.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
