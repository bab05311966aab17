"""The server against slow clients, costly requests, key guessing and hostile documents, live on loopback.

`sovrag serve` runs as a real subprocess with its file-descriptor limit lowered to 256 (soft and hard), so
a flood of half-sent requests would exhaust it without the header timeout and the connection cap. Every
flood here is bounded in count and time and targets 127.0.0.1 only.
"""

from __future__ import annotations

import os
import resource
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sovrag.serve.sanitize import StreamNeutralizer, neutralize
from tests.conftest import MODELS_DIR

pytestmark = [pytest.mark.slow, pytest.mark.model]

ADMIN = "admin-" + secrets.token_hex(16)
BIN = Path(sys.executable).parent
HOSTILE = ("<html><head><title>Guide <script>alert(1)</script></title></head><body>"
           "<p>The badge office is in room 12. &lt;img src=x onerror=alert(2)&gt; "
           "[open the form](javascript:alert(3)) and the canteen opens at noon.</p></body></html>")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    base: str
    port: int
    proc: subprocess.Popen
    log: Path
    key: str

    def http(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {key or self.key}"}, timeout=60)


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("hardening")
    data = root / "data"
    data.mkdir()
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    (data / "models").symlink_to(MODELS_DIR, target_is_directory=True)
    port = _free_port()
    env = {**os.environ, "SOVRAG_DATA_DIR": str(data), "SOVRAG_ADMIN_KEY": ADMIN,
           "SOVRAG_SERVE_HEADER_TIMEOUT_S": "2", "SOVRAG_SERVE_BODY_TIMEOUT_S": "2",
           "SOVRAG_SERVE_RATE_LIMIT_TPM": "20000", "SOVRAG_SERVE_AUTH_FAILURES_PER_MINUTE": "20",
           "SOVRAG_SERVE_RATE_LIMIT_RPM": "100000", "SOVRAG_LLM_THREADS": "1"}
    log = root / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(BIN / "sovrag"), "serve", "--port", str(port), "--log-level", "info"],
                                env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_low_fd_limit)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.2)
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30) as a:
        tid = a.post("/admin/tenants", json={"name": "t"}).raise_for_status().json()["id"]
        key = a.post(f"/admin/tenants/{tid}/keys", json={}).raise_for_status().json()["key"]
    yield Server(base, port, proc, log, key)
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _wait_job(c: httpx.Client, job_id: str) -> dict:
    for _ in range(600):
        job = c.get(f"/v1/jobs/{job_id}").raise_for_status().json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError("job did not finish")


def test_half_sent_requests_are_cut_off_and_health_survives_a_flood(server: Server) -> None:
    flood: list[socket.socket] = []
    try:
        for _ in range(400):  # more than the 256 descriptors the server has
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            flood.append(s)
        time.sleep(4.5)  # past the 2 s header timeout
        closed = 0
        for s in flood:
            s.settimeout(0.5)
            try:
                closed += s.recv(1024) == b""
            except (ConnectionResetError, BrokenPipeError):
                closed += 1
            except TimeoutError:
                pass
        assert closed == len(flood), f"{len(flood) - closed} half-sent requests still open after the timeout"
        r = httpx.get(server.base + "/healthz", timeout=5)
        assert r.status_code == 200
    finally:
        for s in flood:
            s.close()
    assert server.proc.poll() is None
    log = server.log.read_text()
    assert "Too many open files" not in log
    assert len(log) < 200_000, f"log grew to {len(log)} bytes"


def test_a_stalled_body_is_cut_off(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n{\"input\": ")
        t0 = time.monotonic()
        data = s.recv(65536)
        while data and b"\r\n\r\n" not in data:
            data += s.recv(65536)
        assert time.monotonic() - t0 < 8
        # uvicorn answers what it has (the app saw a disconnect) or just closes: either way, not held open
        assert data == b"" or data.startswith(b"HTTP/1.1")


def test_embedding_and_search_cost_is_capped_in_tokens(server: Server) -> None:
    with server.http() as c:
        big = "。" * 9000  # one token per character
        r = c.post("/v1/embeddings", json={"model": "minilm-l6-v2", "input": big})
        assert r.status_code == 413 and "embeddings_max_input_tokens" in r.json()["error"]["message"]
        r = c.post("/v1/embeddings", json={"model": "minilm-l6-v2", "input": ["。" * 8000] * 9})
        assert r.status_code == 413 and "embeddings_max_request_tokens" in r.json()["error"]["message"]
        c.post("/v1/collections", json={"name": "kb"}).raise_for_status()
        r = c.post("/v1/collections/kb/search", json={"query": "why " * 600})
        assert r.status_code == 413 and "search_max_query_tokens" in r.json()["error"]["message"]
        ok = c.post("/v1/embeddings", json={"model": "minilm-l6-v2", "input": ["。" * 8000, "。" * 8000]})
        assert ok.status_code == 200
        again = c.post("/v1/embeddings", json={"model": "minilm-l6-v2", "input": ["。" * 8000] * 2})
        assert again.status_code == 429, again.text  # 20,000 tokens of work a minute: the bucket is spent
        assert "rate_limit_tpm" in again.json()["error"]["message"] and int(again.headers["retry-after"]) > 0


def test_guessing_keys_is_throttled_per_client(server: Server) -> None:
    codes = []
    for i in range(30):
        r = httpx.get(server.base + "/v1/models", headers={"Authorization": f"Bearer sk-guess-{i}"}, timeout=10)
        codes.append(r.status_code)
    assert codes[:20] == [401] * 20 and set(codes[20:]) == {429}, codes
    r = httpx.get(server.base + "/v1/models", headers={"Authorization": f"Bearer {server.key}"}, timeout=10)
    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_failed_sign_ins"
    assert int(r.headers["retry-after"]) >= 1


def test_document_markup_is_neutralised_and_failed_uploads_stay_listed(server: Server) -> None:
    time.sleep(3.5)  # 20 failed sign-ins a minute: let the previous test's block lift
    with server.http() as c:
        c.post("/v1/collections", json={"name": "web"})
        files = [("files", ("guide.html", HOSTILE.encode(), "text/html")),
                 ("files", ("broken.pdf", b"%PDF-1.4\n1 0 obj garbage\n%%EOF\n", "application/pdf"))]
        job = _wait_job(c, c.post("/v1/collections/web/documents", files=files).raise_for_status().json()["id"])
        assert job["state"] == "succeeded"
        hits = c.post("/v1/collections/web/search", json={"query": "badge office room", "top_k": 1}).json()["data"]
        text, title = hits[0]["text"], hits[0]["title"]
        assert "<img" not in text and "&lt;img src=x onerror=alert(2)>" in text
        assert "](javascript:" not in text and "](#blocked-javascript:alert(3))" in text
        assert "<script>" not in title and "&lt;script>" in title
        raw = c.post("/v1/collections/web/search", json={"query": "badge office room", "top_k": 1, "raw": True})
        assert "<img src=x onerror=alert(2)>" in raw.json()["data"][0]["text"]

        docs = {d["name"]: d for d in c.get("/v1/collections/web/documents").json()["data"]}
        assert docs["guide.html"]["status"] == "indexed" and "<script>" not in docs["guide.html"]["title"]
        broken = docs["broken.pdf"]
        assert broken["status"] == "failed" and "PDF" in broken["error"] and broken["chunks"] == 0
        c.delete(f"/v1/collections/web/documents/{broken['id']}").raise_for_status()
        names = {d["name"] for d in c.get("/v1/collections/web/documents").json()["data"]}
        assert names == {"guide.html"}


@pytest.mark.parametrize("pieces", [
    ["see <scr", "ipt>x</script> and [a](java", "script:alert(1)) done"],
    ["<", "img src=x onerror=y>", " ok"],
    ["plain text with a < b and x<5", " and [ok](https://example.org)"],
])
def test_streamed_pieces_are_neutralised_like_the_whole(pieces: list[str]) -> None:
    s = StreamNeutralizer()
    streamed = "".join(s.feed(p) for p in pieces) + s.flush()
    assert streamed == neutralize("".join(pieces))
    assert StreamNeutralizer(raw=True).feed("<b>") == "<b>"


def test_neutralize_leaves_ordinary_text_alone() -> None:
    for text in ("a < b", "x<5 and y>3", "[ok](https://example.org)", "use <= and >=", "1 <2"):
        assert neutralize(text) == text
    assert neutralize("[x]: javascript:alert(1)") == "[x]: #blocked-javascript:alert(1)"
    assert neutralize("<a href='x'>") == "&lt;a href='x'>"
