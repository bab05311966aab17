"""The README's Usage commands, run as written, in the order written, on a fresh data directory."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MODELS_DIR

pytestmark = [pytest.mark.slow, pytest.mark.model]

ROOT = Path(__file__).resolve().parent.parent


def usage_commands() -> list[str]:
    """The lines of the first bash block under '## Usage'."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Usage\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README: no bash block under ## Usage"
    return [line for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


def test_the_usage_block_runs_as_written(tmp_path: Path) -> None:
    commands = usage_commands()
    assert commands[0].startswith(".venv/bin/sovrag ingest examples/docs")
    data = tmp_path / "data"
    data.mkdir()
    (data / "models").symlink_to(MODELS_DIR, target_is_directory=True)
    env = {**os.environ, "SOVRAG_DATA_DIR": str(data), "SOVRAG_LLM_THREADS": "1", "COLUMNS": "200"}
    outputs = []
    for line in commands:
        argv = shlex.split(line)
        assert argv[0] == ".venv/bin/sovrag", line
        argv[0] = str(Path(sys.executable).parent / "sovrag")  # the venv this test runs in
        r = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{line}\n{r.stdout}\n{r.stderr}"
        outputs.append(r.stdout)
    ingest, search, stream, as_json, listed = outputs
    assert "6 added" in ingest
    assert "oncall-runbook.rst" in search
    assert "180" in stream and "[1]" in stream.split("\n", 1)[0]  # streamed verified, citations included
    assert "25" in json.loads(as_json)["text"]
    assert "examples" in listed


def integration_blocks() -> list[str]:
    """The python blocks under '## Integrations'."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Integrations", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_integration_examples_run_as_written(tmp_path: Path) -> None:
    pytest.importorskip("sovrag.integrations.langchain")
    pytest.importorskip("sovrag.integrations.llama_index")
    pytest.importorskip("mcp")
    blocks = integration_blocks()
    assert len(blocks) == 3
    data = tmp_path / "data"
    data.mkdir()
    (data / "models").symlink_to(MODELS_DIR, target_is_directory=True)
    env = {**os.environ, "SOVRAG_DATA_DIR": str(data), "SOVRAG_LLM_THREADS": "1"}
    sovrag = str(Path(sys.executable).parent / "sovrag")
    r = subprocess.run([sovrag, "ingest", "examples/docs", "--collection", "examples"], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    # `.venv/bin/sovrag` as written, from the venv this test runs in
    venv = tmp_path / "repo"
    (venv / ".venv").mkdir(parents=True)
    (venv / ".venv" / "bin").symlink_to(Path(sys.executable).parent, target_is_directory=True)
    outputs = []
    for block in blocks:
        r = subprocess.run([sys.executable, "-c", block], env=env, cwd=venv, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, f"{block}\n{r.stdout}\n{r.stderr}"
        outputs.append(r.stdout)
    langchain, llama_index, mcp = outputs
    assert "handbook.md" in langchain and "25" in langchain and "abstained: False" in langchain
    assert "True [" in langchain  # a supported sentence with the sources it cites
    assert "expense-policy.docx" in llama_index and "False" in llama_index
    assert "'ask'" in mcp and ("five" in mcp.lower() or "5" in mcp), mcp
