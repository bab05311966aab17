"""Several `sovrag serve` workers on one PostgreSQL database behave as one service: real server processes, a real
PostgreSQL 18 + pgvector server (the store and the server database), uploads in a folder the workers share."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import MODELS_DIR

pytestmark = [pytest.mark.slow, pytest.mark.model]

ROOT = Path(__file__).resolve().parent.parent
SOVRAG = str(Path(sys.executable).parent / "sovrag")
ADMIN = "admin-" + secrets.token_hex(16)
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Workers:
    """Starts `sovrag serve` workers, each with its own data directory, on one database, store and uploads folder."""

    def __init__(self, tmp: Path, url: str) -> None:
        self.tmp, self.url = tmp, url
        self.procs: dict[str, subprocess.Popen] = {}
        self.ports: dict[str, int] = {}

    def start(self, name: str, ingest_workers: int, lease_s: float = 30.0, **extra_env: str) -> str:
        data = self.tmp / f"data-{name}"
        data.mkdir()
        (data / "models").symlink_to(MODELS_DIR, target_is_directory=True)
        env = {**os.environ, "SOVRAG_DATA_DIR": str(data), "SOVRAG_ADMIN_KEY": ADMIN, "SOVRAG_STORE": self.url,
               "SOVRAG_SERVE_DATABASE": self.url, "SOVRAG_SERVE_UPLOADS_DIR": str(self.tmp / "uploads"),
               "SOVRAG_SERVE_INGEST_WORKERS": str(ingest_workers), "SOVRAG_SERVE_JOB_LEASE_S": str(lease_s),
               "SOVRAG_LLM_THREADS": "1",
               # small write batches, so a job reports progress file by file and can be killed halfway
               "SOVRAG_INGEST_BATCH_CHUNKS": "8", **extra_env}
        port = _port()
        log = open(self.tmp / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([SOVRAG, "serve", "--port", str(port), "--log-level", "info"], env=env, cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (self.tmp / f"{name}.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"worker {name} did not start"
            time.sleep(0.3)
        self.procs[name], self.ports[name] = proc, port
        return f"http://127.0.0.1:{port}"

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def workers(tmp_path: Path, pg_database: str) -> Iterator[Workers]:
    w = Workers(tmp_path, pg_database)
    yield w
    w.stop_all()


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _upload(base: str, key: str, collection: str, files: list[Path]) -> str:
    parts = [("files", (f.name, f.read_bytes())) for f in files]
    r = httpx.post(f"{base}/v1/collections/{collection}/documents", files=parts, headers=_bearer(key), timeout=120)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def _wait_job(base: str, key: str, job_id: str, until: tuple[str, ...], timeout_s: float = 300,
              done_at_least: int = 0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        job = httpx.get(f"{base}/v1/jobs/{job_id}", headers=_bearer(key), timeout=30).json()
        if job["state"] in until and job["files_done"] >= done_at_least:
            return job
        assert job["state"] not in ("failed", "aborted"), job
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


def _sections(tmp: Path) -> list[Path]:
    """Real documents, many of them: each section of this repository's README and benchmark report as a file."""
    out = []
    for src in (ROOT / "README.md", ROOT / "docs" / "benchmarks.md", ROOT / "docs" / "architecture.md"):
        for i, part in enumerate(re.split(r"\n(?=## )", src.read_text(encoding="utf-8"))):
            if len(part) > 400:
                f = tmp / f"{src.stem}-{i:02d}.md"
                f.write_text(part, encoding="utf-8")
                out.append(f)
    return out


def test_workers_on_one_database_share_keys_limits_and_jobs(workers: Workers) -> None:
    a = workers.start("a", ingest_workers=0)  # an API-only worker
    b = workers.start("b", ingest_workers=1)
    tenant = httpx.post(f"{a}/admin/tenants", json={"name": "acme"}, headers=AS_ADMIN).json()
    made = httpx.post(f"{a}/admin/tenants/{tenant['id']}/keys", json={}, headers=AS_ADMIN).json()
    key = made["key"]
    assert httpx.get(f"{b}/v1/tenant", headers=_bearer(key)).json()["name"] == "acme"  # made on A, works on B

    assert httpx.post(f"{a}/v1/collections", json={"name": "docs"}, headers=_bearer(key)).status_code == 201
    files = sorted((ROOT / "examples" / "docs").iterdir())
    job_id = _upload(a, key, "docs", files)  # uploaded through A, which runs no jobs ...
    job = _wait_job(b, key, job_id, ("succeeded",))
    assert job["worker"].split(":")[1] == str(workers.procs["b"].pid)  # ... so B ingested it
    assert job["report"]["added"] == len(files)
    hits = httpx.post(f"{a}/v1/collections/docs/search", json={"query": "How many vacation days?", "top_k": 3},
                      headers=_bearer(key)).json()["data"]
    assert hits and "vacation" in hits[0]["text"].lower()

    # one key's rate limit holds across the workers: 3 requests a minute in all, wherever they arrive
    limited = httpx.post(f"{a}/admin/tenants/{tenant['id']}/keys", json={"rate_limit_rpm": 3},
                         headers=AS_ADMIN).json()["key"]
    codes = [httpx.get(f"{base}/v1/collections", headers=_bearer(limited)).status_code for base in (a, b, a, b)]
    assert codes == [200, 200, 200, 429], codes
    # and a key revoked through one worker stops working on every worker at once
    assert httpx.delete(f"{b}/admin/keys/{made['id']}", headers=AS_ADMIN).status_code == 200
    assert httpx.get(f"{a}/v1/collections", headers=_bearer(key)).status_code == 401

    # the CLI of another machine reaches the tenant's collection directly: the tenant is looked up in the
    # PostgreSQL server database of its settings (before, it looked only for a SQLite server.db and failed)
    data = workers.tmp / "data-cli"
    data.mkdir()
    (data / "models").symlink_to(MODELS_DIR, target_is_directory=True)
    env = {**os.environ, "SOVRAG_DATA_DIR": str(data), "SOVRAG_STORE": workers.url,
           "SOVRAG_SERVE_DATABASE": workers.url}
    found = subprocess.run([SOVRAG, "search", "How many vacation days?", "-c", "docs", "--tenant", "acme", "--json"],
                           env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert found.returncode == 0, found.stderr
    assert "vacation" in json.loads(found.stdout)[0]["text"].lower()
    nobody = subprocess.run([SOVRAG, "search", "x", "-c", "docs", "--tenant", "nobody"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert nobody.returncode == 1
    assert "--tenant 'nobody': no such tenant in postgresql://" in " ".join(nobody.stderr.split()), nobody.stderr


def test_a_worker_killed_mid_job_loses_it_to_another_that_finishes_it(workers: Workers, tmp_path: Path,
                                                                        settings) -> None:
    b = workers.start("b", ingest_workers=1, lease_s=4)
    c = workers.start("c", ingest_workers=1, lease_s=4)
    tenant = httpx.post(f"{b}/admin/tenants", json={"name": "acme"}, headers=AS_ADMIN).json()
    key = httpx.post(f"{b}/admin/tenants/{tenant['id']}/keys", json={}, headers=AS_ADMIN).json()["key"]
    assert httpx.post(f"{b}/v1/collections", json={"name": "big"}, headers=_bearer(key)).status_code == 201
    src = tmp_path / "src"
    src.mkdir()
    files = _sections(src)
    assert len(files) >= 20
    job_id = _upload(b, key, "big", files)
    running = _wait_job(b, key, job_id, ("running",), done_at_least=2)
    victim = next(n for n, p in workers.procs.items() if str(p.pid) == running["worker"].split(":")[1])
    survivor = "c" if victim == "b" else "b"
    base = c if survivor == "c" else b
    workers.procs[victim].send_signal(signal.SIGKILL)  # no shutdown, no cleanup: the worker is simply gone
    workers.procs[victim].wait(10)
    job = _wait_job(base, key, job_id, ("succeeded",), timeout_s=300)
    assert job["worker"].split(":")[1] == str(workers.procs[survivor].pid)
    assert "taking it over" in workers.log(survivor)
    report = job["report"]
    assert report["failed"] == 0 and report["added"] + report["unchanged"] + report["updated"] == len(files)

    # nothing lost, nothing twice: the same chunks as one uninterrupted local ingestion of the same files
    from sovrag.collection import open_collection
    from sovrag.ingest.sync import ingest

    ref = open_collection(settings, "ref", create=True)
    ingest(settings, ref, files)
    expected = sorted(c.text for c in ref.store.chunks(limit=100_000))
    ref.close()
    info = httpx.get(f"{base}/v1/collections/big", headers=_bearer(key)).json()
    assert info["chunks"] == len(expected) and info["documents"] == len(files)
    docs = httpx.get(f"{base}/v1/collections/big/documents", headers=_bearer(key)).json()["data"]
    assert len(docs) == len(files) and all(d.get("status", "indexed") == "indexed" for d in docs), docs


def test_workers_are_the_hosts_of_one_llm_pool_and_a_dead_one_is_skipped(workers: Workers, settings,
                                                                            monkeypatch) -> None:
    """Each worker's local llama.cpp model is one OpenAI-compatible host; a pool over both (as a further worker,
    or any client, would configure it) spreads the requests and goes on when one worker is killed."""
    from sovrag.generate import Message, create_llm
    from sovrag.generate.pool import HostPool

    smol = {"SOVRAG_LLM": "llamacpp:smollm2-135m-instruct-q4_1", "SOVRAG_LLM_CONTEXT": "1024"}
    a = workers.start("a", ingest_workers=0, **smol)
    b = workers.start("b", ingest_workers=0, **smol)
    tenant = httpx.post(f"{a}/admin/tenants", json={"name": "acme"}, headers=AS_ADMIN).json()
    key = httpx.post(f"{a}/admin/tenants/{tenant['id']}/keys", json={}, headers=AS_ADMIN).json()["key"]
    monkeypatch.setenv("SOVRAG_LLM_API_KEY", key)  # one key for both hosts: they share the database
    llm = create_llm(settings, "|".join(f"openai://{base[7:]}/v1?model=smollm2-135m-instruct-q4_1" for base in (a, b)))
    assert isinstance(llm, HostPool)
    llm.check()
    assert all(s["up"] for s in llm.status())  # both list the model under the name the pool asks for
    msgs = [Message("user", "Say hello.")]
    for _ in range(4):
        assert llm.chat(msgs).text.strip()
    assert [s["served"] for s in llm.status()] == [2, 2]
    workers.procs["a"].send_signal(signal.SIGKILL)
    workers.procs["a"].wait(10)
    for _ in range(3):
        assert llm.chat(msgs).text.strip()
    status = llm.status()
    assert status[1]["served"] == 5 and not status[0]["up"] and status[0]["failures"] == 1
    llm.close()


def test_a_worker_shutting_down_hands_its_job_back_to_the_queue(pg_database: str, tmp_path: Path,
                                                                 settings) -> None:
    """Graceful stop (SIGTERM) on a shared database: the running job is stopped between files and queued again,
    not marked aborted; the next worker finishes it."""
    from dataclasses import replace

    from sovrag.serve.db import open_database
    from sovrag.serve.metrics import Metrics
    from sovrag.serve.services.collections import TenantCollections
    from sovrag.serve.services.files import UploadedFiles
    from sovrag.serve.services.jobs import JobRunner

    s = replace(settings, store=pg_database, ingest_batch_chunks=8)  # progress file by file
    db = open_database(pg_database, s.data_dir)
    cols = TenantCollections(s, tmp_path / "uploads")
    cols.create(1, "docs")
    src = tmp_path / "src"
    src.mkdir()
    files = _sections(src)
    first = JobRunner(s, db, cols, UploadedFiles(db), Metrics(), workers=1, lease_s=30)
    job_id = first.submit(1, "docs", files)
    deadline = time.monotonic() + 120
    while first.get(1, job_id)["files_done"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    first.shutdown(grace_s=0)
    job = first.get(1, job_id)
    assert job["state"] == "queued" and not job["error"], job
    second = JobRunner(s, db, cols, UploadedFiles(db), Metrics(), workers=1, lease_s=30)
    while (job := second.get(1, job_id))["state"] != "succeeded":
        assert job["state"] in ("queued", "running") and time.monotonic() < deadline + 180, job
        time.sleep(0.2)
    assert job["worker"] == second.worker_id and job["report"]["failed"] == 0
    with cols.use(1, "docs") as col:
        assert len(col.store.documents()) == len(files)
    second.shutdown(grace_s=5)
    cols.close()
    db.close()
