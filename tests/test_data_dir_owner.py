"""One owner per data directory, for real: a live `sovrag serve`, a second one refused, and the CLI's
commands in subprocesses working through the server with the same output as without it."""

from __future__ import annotations

import json
import os
import secrets
import socket
import stat
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


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(data: Path) -> dict[str, str]:
    return {**os.environ, "SOVRAG_DATA_DIR": str(data), "SOVRAG_ADMIN_KEY": ADMIN, "SOVRAG_LLM_THREADS": "1",
            "SOVRAG_LLM_CONTEXT": "2048", "COLUMNS": "200"}


def cli(data: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SOVRAG, *args], env=_env(data), capture_output=True, text=True, timeout=300, cwd=ROOT)


def _start(data: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([SOVRAG, "serve", "--port", str(port), "--log-level", "warning"], env=_env(data),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.2)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    (d / "models").symlink_to(MODELS_DIR, target_is_directory=True)
    return d


@pytest.fixture
def server(data: Path) -> Iterator[tuple[subprocess.Popen, int]]:
    port = _port()
    proc = _start(data, port)
    yield proc, port
    _stop(proc)


def test_a_second_server_on_the_data_directory_is_refused_naming_the_first(data: Path, server) -> None:
    proc, port = server
    second = cli(data, "serve", "--port", str(_port()))
    assert second.returncode == 1
    assert f"already served by process {proc.pid}" in second.stderr.replace("\n", " ")
    sock = data / "server.sock"
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert httpx.get(f"http://127.0.0.1:{port}/local/collections").status_code == 404  # never over TCP


def test_cli_commands_work_through_the_server_with_the_same_output(data: Path) -> None:
    port = _port()
    proc = _start(data, port)
    try:
        ingest = cli(data, "ingest", "examples/docs", "-c", "ex", "--json")
        assert ingest.returncode == 0, ingest.stderr
        through = {k: v for k, v in json.loads(ingest.stdout).items() if k != "seconds"}
        listed = cli(data, "collections", "list")
        searched = cli(data, "search", "How many vacation days do new employees get?", "-c", "ex", "--json")
        asked = cli(data, "ask", "How many vacation days do new employees get?", "-c", "ex", "--json")
        assert searched.returncode == 0 and asked.returncode == 0, searched.stderr + asked.stderr
        answer = json.loads(asked.stdout)
        assert "25" in answer["text"] and not answer["abstained"]
    finally:
        _stop(proc)
    # the same commands with no server: they open the store themselves, and print the same
    again = cli(data, "ingest", "examples/docs", "-c", "ex", "--json")
    direct = {k: v for k, v in json.loads(again.stdout).items() if k != "seconds"}
    assert through["added"] == 6 and through["chunks"] > 6 and through["failures"] == []
    assert direct["unchanged"] == 6 and direct["chunks"] == 0  # what the server wrote is what the CLI sees
    assert cli(data, "collections", "list").stdout == listed.stdout
    assert cli(data, "search", "How many vacation days do new employees get?", "-c", "ex", "--json").stdout == \
        searched.stdout


def test_tenant_collections_are_reached_with_tenant_from_the_cli(data: Path) -> None:
    port = _port()
    proc = _start(data, port)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60) as a:
            tid = a.post("/admin/tenants", json={"name": "acme"}).raise_for_status().json()["id"]
            key = a.post(f"/admin/tenants/{tid}/keys", json={}).raise_for_status().json()["key"]
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120) as c:
            c.post("/v1/collections", json={"name": "docs"}).raise_for_status()
            job = c.post("/v1/collections/docs/documents", files=[("files", (
                "plan.md", b"# Plan\n\nProject Orion ships on 3 May.\n", "text/markdown"))]).raise_for_status().json()
            while c.get(f"/v1/jobs/{job['id']}").json()["state"] in ("queued", "running"):
                time.sleep(0.2)
        through = cli(data, "search", "When does Orion ship?", "-c", "docs", "--tenant", "acme", "--json")
        assert through.returncode == 0, through.stderr
        assert "3 May" in json.loads(through.stdout)[0]["text"]
        assert "docs" in cli(data, "collections", "list", "--tenant", "acme").stdout
        assert "docs" not in cli(data, "collections", "list").stdout  # the CLI's own namespace
        missing = cli(data, "search", "x", "-c", "docs", "--tenant", "nobody")
        assert missing.returncode == 1 and "tenant 'nobody': not found" in missing.stderr
    finally:
        _stop(proc)
    direct = cli(data, "search", "When does Orion ship?", "-c", "docs", "--tenant", "acme", "--json")
    assert direct.returncode == 0 and direct.stdout == through.stdout


def test_eval_goes_through_the_server_and_bench_refuses_beside_it(data: Path) -> None:
    assert cli(data, "ingest", "examples/docs", "-c", "ex").returncode == 0
    port = _port()
    proc = _start(data, port)
    try:
        through = cli(data, "eval", "examples/eval.jsonl", "-c", "ex", "--judge", "none", "--limit", "2",
                      "--max-tokens", "32", "--json")
        assert through.returncode == 0, through.stderr
        run = json.loads(through.stdout)
        assert run["summary"]["hit_rate@10"]["scored"] == 2 and Path(run["report"]).is_file()
        assert (data / "reports" / run["run"]).is_dir()  # saved where a CLI run saves it: listed by the UI too
        bench = cli(data, "bench", "-c", "ex")
        assert bench.returncode == 1 and "owns data directory" in bench.stderr.replace("\n", " ")
        other = cli(data, "eval", "examples/eval.jsonl", "-c", "ex", "--judge", "quality", "--limit", "1")
        assert other.returncode == 1 and "its own model" in other.stderr.replace("\n", " ")
    finally:
        _stop(proc)
    direct = cli(data, "eval", "examples/eval.jsonl", "-c", "ex", "--judge", "none", "--limit", "2",
                 "--max-tokens", "32", "--json")
    assert direct.returncode == 0 and json.loads(direct.stdout)["summary"]["hit_rate@10"] == \
        run["summary"]["hit_rate@10"]


CONVERSATION = "How many vacation days do new employees get?\nAnd after five years of service?\n/clear\n/exit\n"


def _chat(data: Path) -> subprocess.CompletedProcess:
    return subprocess.run([SOVRAG, "chat", "-c", "ex", "--max-tokens", "64"], input=CONVERSATION, env=_env(data),
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_chat_is_a_conversation_with_follow_ups_with_or_without_a_server(data: Path) -> None:
    assert cli(data, "ingest", "examples/docs", "-c", "ex").returncode == 0
    direct = _chat(data)
    assert direct.returncode == 0, direct.stderr
    first, follow_up = direct.stdout.split("\n› ")[1:3]
    assert "25" in first and "handbook.md" in first  # the answer streamed, then its sources
    assert "30" in follow_up  # "after five years" was understood as being about vacation days
    assert "Conversation cleared" in direct.stderr
    port = _port()
    proc = _start(data, port)
    try:
        through = _chat(data)
    finally:
        _stop(proc)
    assert through.returncode == 0, through.stderr
    first, follow_up = through.stdout.split("\n› ")[1:3]
    assert "25" in first and "30" in follow_up
    missing = subprocess.run([SOVRAG, "chat", "-c", "nope"], input="hello?\n/exit\n", env=_env(data),
                             capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert missing.returncode == 0 and "collection 'nope': does not exist" in missing.stderr  # said, and goes on
