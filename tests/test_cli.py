"""The CLI as a user runs it: real commands on the example documents, through Typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sovrag.cli import app

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "docs"


@pytest.fixture
def run(settings):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, ["--data-dir", str(settings.data_dir), *args], catch_exceptions=False)

    return invoke


def test_ingest_search_and_collections(run, tmp_path: Path):
    r = run("ingest", str(EXAMPLES), "--collection", "ex", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["added"] == 6 and report["failed"] == 0 and report["chunks"] > 6
    r = run("ingest", str(EXAMPLES), "--collection", "ex")
    assert r.exit_code == 0 and "0 added, 0 updated, 6 unchanged" in r.output

    r = run("search", "What is the maximum payload of the NW-7?", "-c", "ex", "--json", "-k", "3")
    hits = json.loads(r.output)
    assert len(hits) == 3 and [h["rank"] for h in hits] == [1, 2, 3]
    assert any(h["source"].endswith("product-faq.html") and "12 kg" in h["text"] for h in hits)
    r = run("search", "password length", "-c", "ex", "--filter", "format=pdf", "--json")
    hits = json.loads(r.output)
    assert hits and all(h["source"].endswith(".pdf") and h["page"] >= 1 for h in hits)
    r = run("search", "password length", "-c", "ex", "--mode", "bm25")
    assert r.exit_code == 0 and "security-policy.pdf, page" in r.output

    r = run("collections", "list")
    assert "ex" in r.output and "onnx:minilm-l6-v2" in r.output
    r = run("collections", "delete", "ex", "--yes")
    assert r.exit_code == 0
    r = run("search", "anything", "-c", "ex")
    assert r.exit_code == 1 and "collection 'ex': does not exist" in r.output


def test_failed_files_give_exit_3_and_name_the_file(run, tmp_path: Path):
    (tmp_path / "ok.md").write_text("# Fine\n\nA perfectly good document.\n")
    (tmp_path / "bad.txt").write_bytes(b"\x00\x00binary")
    r = run("ingest", str(tmp_path), "--collection", "mixed")
    assert r.exit_code == 3
    assert "1 added" in r.output and "bad.txt: binary content" in " ".join(r.output.split())


def test_usage_errors_are_one_clear_line(run):
    r = run("search", "x", "-c", "nope", "--mode", "fuzzy")
    assert r.exit_code == 1 and "error:" in r.output
    r = run("ingest", "/definitely/missing", "--collection", "c", "--chunk-mode", "pages")
    assert r.exit_code == 1 and "chunk_mode='pages'" in r.output


def test_models_list_shows_cache_state(run):
    r = run("models", "list")
    assert r.exit_code == 0 and "minilm-l6-v2" in r.output and "ready" in r.output
    assert r.output.count(" llm ") == 3  # the bundled LLMs: Qwen 0.5B and 1.5B, SmolLM2-135M
    assert "sovrag-rag: base qwen2.5-coder-0.5b-instruct-q4_k_m" in r.output  # the shipped LoRA adapter


@pytest.mark.model
@pytest.mark.slow
def test_ask_json_gives_a_cited_answer(run):
    assert run("ingest", str(EXAMPLES), "--collection", "ex").exit_code == 0
    r = run("ask", "How many vacation days do new employees get?", "-c", "ex", "--json", "--max-tokens", "60")
    assert r.exit_code == 0, r.output
    answer = json.loads(r.output)
    assert not answer["abstained"] and "25" in answer["text"]
    cited = {c["source"] for s in answer["sentences"] for c in s["citations"]}
    sources = {s["number"]: s["chunk"]["source"] for s in answer["sources"]}
    assert any(sources[n].endswith("handbook.md") for n in cited)
    r = run("ask", "   ", "-c", "ex")
    assert r.exit_code == 1 and "question: empty" in r.output



def test_serve_reads_its_config_file_and_names_what_is_wrong(run, tmp_path: Path, monkeypatch):
    monkeypatch.delenv("SOVRAG_ADMIN_KEY", raising=False)
    f = tmp_path / "serve.toml"
    f.write_text('[serve]\nadmin_key = "short"\n')
    r = run("serve", "--config", str(f))
    assert r.exit_code != 0 and "shorter than 16 characters" in r.output
    f.write_text('llm_context = "big"\n')
    r = run("serve", "--config", str(f))
    assert r.exit_code != 0 and "llm_context" in r.output


def test_version_full_model_names_and_an_unreachable_store_in_one_line() -> None:
    import os
    import subprocess
    import sys

    from sovrag import __version__

    sovrag = str(Path(sys.executable).parent / "sovrag")
    env = {**os.environ, "COLUMNS": "80"}
    assert subprocess.run([sovrag, "--version"], capture_output=True, text=True).stdout.strip() == \
        f"sovrag {__version__}"
    listed = subprocess.run([sovrag, "models", "list"], capture_output=True, text=True, env=env).stdout
    assert "qwen2.5-coder-0.5b-instruct-q4_k_m" in listed and "qwen2.5-coder-1.5b-instruct-q4_k_m" in listed
    down = subprocess.run([sovrag, "--store", "qdrant://127.0.0.1:9", "collections", "list"], capture_output=True,
                          text=True, env=env)
    assert down.returncode == 1 and "Traceback" not in down.stderr
    assert "Qdrant at http://127.0.0.1:9: unreachable" in " ".join(down.stderr.split())
    assert len(down.stderr.strip().splitlines()) <= 3


def test_chat_on_an_empty_collection_says_so_for_every_question(run, settings, tmp_path: Path):
    (tmp_path / "empty").mkdir()
    assert run("ingest", str(tmp_path / "empty"), "--collection", "e").exit_code == 0
    r = CliRunner().invoke(app, ["--data-dir", str(settings.data_dir), "chat", "-c", "e"],
                           input="hello?\nagain?\n/exit\n", catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert r.output.count("collection 'e': is empty") == 2  # the second question is not a lock error
    assert "WouldBlock" not in r.output and "shard" not in r.output


def test_logging_set_up_by_an_in_process_run_survives_the_run(run, tmp_path: Path, monkeypatch, capsys):
    """`sovrag serve` (and -v) point the root logger at stderr; run in-process (CliRunner, a notebook) that stderr
    is a buffer closed afterwards, and a handler holding it failed on every later record ('Logging error')."""
    import logging

    monkeypatch.delenv("SOVRAG_ADMIN_KEY", raising=False)
    f = tmp_path / "serve.toml"
    f.write_text('[serve]\nadmin_key = "short"\n')
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        assert run("serve", "--config", str(f)).exit_code != 0
        logging.getLogger("sovrag.test").warning("after the run")
        err = capsys.readouterr().err
        assert "after the run" in err and "Logging error" not in err
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
