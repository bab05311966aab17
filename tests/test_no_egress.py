"""Sovereignty, tested for real: ingest, search, ask, eval and serve inside a network namespace with only loopback.

Every DNS lookup and every connect/sendto to a non-loopback address made by any sovrag process (or a
library in it, native code included) is recorded by `tests/netjail.py` and fails the test. onnxruntime's
telemetry starts about 10 s after an inference session is created and repeats every few seconds, so the
server is kept busy for longer than that. A control run first proves the jail sees both kinds of attempt.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sovrag.models import pull
from tests.conftest import MODELS_DIR
from tests.netjail import egress

ROOT = Path(__file__).resolve().parent.parent
JAIL = Path(__file__).resolve().parent / "netjail.py"
BIN = Path(sys.executable).parent

pytestmark = [pytest.mark.slow, pytest.mark.model]


def _can_jail() -> str | None:
    if os.geteuid() != 0:
        return "needs root for a network namespace"
    for tool in ("unshare", "strace", "ip", "mount"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    probe = subprocess.run(["unshare", "--net", "--mount", "--fork", "true"], capture_output=True)
    return None if probe.returncode == 0 else f"unshare failed: {probe.stderr.decode().strip()}"


@pytest.fixture(scope="module")
def jail_ok() -> None:
    why = _can_jail()
    if why and os.environ.get("CI"):
        pytest.fail(f"the egress test must run in CI: {why}")
    if why:
        pytest.skip(why)


def _run_jailed(tmp_path: Path, script: str, timeout: float = 600) -> tuple[subprocess.CompletedProcess, list[str]]:
    logs = tmp_path / "jail"
    logs.mkdir()
    path = tmp_path / "scenario.sh"
    path.write_text("set -euo pipefail\n" + textwrap.dedent(script))
    proc = subprocess.run(["unshare", "--net", "--mount", "--fork", sys.executable, str(JAIL), str(logs), str(path)],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    return proc, egress(logs)


def test_the_jail_records_lookups_and_direct_connections(jail_ok: None, tmp_path: Path) -> None:
    proc, found = _run_jailed(tmp_path, f"""
        {sys.executable} - <<'PY'
        import socket
        try:
            socket.getaddrinfo("telemetry.example.com", 443)
        except OSError:
            pass
        s = socket.socket()
        try:
            s.connect(("192.0.2.7", 443))
        except OSError:
            pass
        PY
    """)
    assert proc.returncode == 0, proc.stderr
    assert any("telemetry.example.com" in f for f in found), found
    assert any("192.0.2.7 port 443" in f for f in found), found


DRIVE_SERVER = """
import os, sys, time
import httpx
base, admin, started = sys.argv[1], sys.argv[2], time.monotonic()
for _ in range(600):
    try:
        if httpx.get(base + "/healthz", timeout=2).status_code == 200:
            break
    except httpx.HTTPError:
        time.sleep(0.2)
a = httpx.Client(base_url=base, headers={"Authorization": "Bearer " + admin}, timeout=120)
tid = a.post("/admin/tenants", json={"name": "t"}).raise_for_status().json()["id"]
key = a.post(f"/admin/tenants/{tid}/keys", json={}).raise_for_status().json()["key"]
c = httpx.Client(base_url=base, headers={"Authorization": "Bearer " + key}, timeout=300)
c.post("/v1/collections", json={"name": "docs"}).raise_for_status()
files = [("files", ("policy.md", b"# Leave\\n\\nNew employees get 25 vacation days per year.\\n", "text/markdown"))]
job = c.post("/v1/collections/docs/documents", files=files).raise_for_status().json()["id"]
while c.get(f"/v1/jobs/{job}").json()["state"] in ("queued", "running"):
    time.sleep(0.2)
r = c.post("/v1/chat/completions", json={"model": "rag:docs", "max_tokens": 32,
           "messages": [{"role": "user", "content": "How many vacation days do new employees get?"}]})
assert r.status_code == 200, r.text
c.post("/v1/embeddings", json={"model": "minilm-l6-v2", "input": ["hello"]}).raise_for_status()
while time.monotonic() - started < 40:  # past onnxruntime's first telemetry upload (~10 s), and a few repeats
    c.post("/v1/embeddings", json={"model": "minilm-l6-v2", "input": ["again"]})
    time.sleep(2)
print("server drove ok")
"""


def test_ingest_search_ask_and_serve_reach_nothing_but_loopback(jail_ok: None, tmp_path: Path) -> None:
    pull(MODELS_DIR, "minilm-l6-v2")
    pull(MODELS_DIR, "qwen2.5-coder-0.5b-instruct-q4_k_m")
    data = tmp_path / "data"
    data.mkdir()
    (data / "models").symlink_to(MODELS_DIR, target_is_directory=True)
    (tmp_path / "drive.py").write_text(DRIVE_SERVER)
    admin = "admin-" + secrets.token_hex(12)
    proc, found = _run_jailed(tmp_path, f"""
        export SOVRAG_DATA_DIR={data} SOVRAG_LLM_THREADS=1 SOVRAG_LLM_CONTEXT=2048
        {BIN}/sovrag ingest examples/docs -c ex
        {BIN}/sovrag search "vacation days" -c ex --top-k 2
        {BIN}/sovrag ask "How many vacation days do new employees get?" -c ex
        {BIN}/sovrag eval examples/eval.jsonl -c ex --judge none --limit 2 --max-tokens 32 --out {tmp_path / "eval"}
        SOVRAG_ADMIN_KEY={admin} {BIN}/sovrag serve --port 18731 --log-level warning &
        server=$!
        {sys.executable} {tmp_path / "drive.py"} http://127.0.0.1:18731 {admin}
        kill -TERM $server
        wait $server || true
    """)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "server drove ok" in proc.stdout
    assert "vacation" in proc.stdout.lower()
    assert found == [], "\n".join(found[:20])
