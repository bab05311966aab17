"""Several LLMs on one server (`[serve] llms`): listed by /v1/models with their kind, chosen by model name for a
plain chat and by `sovrag.llm` for a RAG answer, taking turns on the cores."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sovrag.config import Settings
from sovrag.errors import ConfigError
from sovrag.serve import create_app
from sovrag.serve.options import ServerOptions
from tests.conftest import MODELS_DIR

ADMIN = "admin-" + "l" * 32
SMALL, LARGE = "qwen2.5-coder-0.5b-instruct-q4_k_m", "qwen2.5-coder-1.5b-instruct-q4_k_m"
QUESTION = [{"role": "user", "content": "How many vacation days do new employees get?"}]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "models").symlink_to(MODELS_DIR, target_is_directory=True)
    opts = ServerOptions(admin_key=ADMIN, llms="quality", default_max_tokens=48)
    with TestClient(create_app(Settings(data_dir=data, llm_context=2048, llm_threads=1), options=opts)) as c:
        yield c


def _tenant(c: TestClient) -> dict[str, str]:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    tid = c.post("/admin/tenants", json={"name": "acme"}, headers=admin).json()["id"]
    me = {"Authorization": f"Bearer {c.post(f'/admin/tenants/{tid}/keys', json={}, headers=admin).json()['key']}"}
    c.post("/v1/collections", json={"name": "handbook"}, headers=me).raise_for_status()
    job = c.post("/v1/collections/handbook/documents", headers=me, files=[
        ("files", ("handbook.md", b"# Vacation\n\nNew employees get 25 vacation days per year.\n"))]).json()
    while c.get(f"/v1/jobs/{job['id']}", headers=me).json()["state"] in ("queued", "running"):
        time.sleep(0.1)
    return me


def test_several_llms_are_listed_with_their_kind_and_checked(client: TestClient) -> None:
    me = _tenant(client)
    models = client.get("/v1/models", headers=me).json()["data"]
    kinds = {m["id"]: m["kind"] for m in models}
    assert kinds == {"rag:handbook": "collection", SMALL: "llm", LARGE: "llm", "minilm-l6-v2": "embedding"}
    assert [m["id"] for m in models if m["kind"] == "llm"] == [SMALL, LARGE]  # the default first
    r = client.post("/v1/chat/completions", headers=me, json={"model": "rag:handbook", "messages": QUESTION,
                                                              "sovrag": {"llm": "gpt-4"}})
    assert r.status_code == 404 and r.json()["error"]["param"] == "sovrag.llm"
    r = client.post("/v1/chat/completions", headers=me, json={"model": SMALL, "messages": QUESTION,
                                                              "sovrag": {"llm": LARGE}})
    assert r.status_code == 400 and "different LLMs" in r.json()["error"]["message"]
    data = Path(client.app.state.ctx.settings.data_dir)  # type: ignore[attr-defined]
    for bad, message in ((f"fast, llamacpp:{SMALL}", "listed twice"), ("llamacpp:no-such-model", "no-such-model"),
                         ("ollama:llama3", "expected llamacpp")):
        with pytest.raises(ConfigError, match=message):  # at start, not when a client first picks it
            with TestClient(create_app(Settings(data_dir=data), options=ServerOptions(admin_key=ADMIN, llms=bad))):
                pass


@pytest.mark.model
@pytest.mark.slow
def test_a_rag_answer_and_a_plain_chat_from_the_chosen_llm(tmp_path: Path) -> None:
    # the second LLM is the bundled 0.5B file under another name (CI has only that model; the choice is what is
    # tested): a .gguf path is an LLM spec of its own, listed by its file name
    data = tmp_path / "data"
    data.mkdir()
    (data / "models").symlink_to(MODELS_DIR, target_is_directory=True)
    second = tmp_path / "second-llm.gguf"  # its own file (a symlink would resolve to the already loaded model)
    try:
        os.link(MODELS_DIR / SMALL / "model.gguf", second)
    except OSError:  # another file system: a copy
        shutil.copyfile(MODELS_DIR / SMALL / "model.gguf", second)
    opts = ServerOptions(admin_key=ADMIN, llms=f"llamacpp:{second}", default_max_tokens=48)
    with TestClient(create_app(Settings(data_dir=data, llm_context=2048, llm_threads=1), options=opts)) as client:
        me = _tenant(client)
        listed = [m["id"] for m in client.get("/v1/models", headers=me).json()["data"] if m["kind"] == "llm"]
        assert listed == [SMALL, "second-llm"]
        default = client.post("/v1/chat/completions", headers=me, json={"model": "rag:handbook",
                                                                        "messages": QUESTION})
        assert default.status_code == 200, default.text
        assert default.json()["sovrag"]["model"] == f"llamacpp:{SMALL}"
        chosen = client.post("/v1/chat/completions", headers=me, json={"model": "rag:handbook", "messages": QUESTION,
                                                                       "sovrag": {"llm": "second-llm"}})
        assert chosen.status_code == 200, chosen.text
        assert chosen.json()["sovrag"]["model"] == "llamacpp:second-llm.gguf"
        assert "25" in chosen.json()["choices"][0]["message"]["content"]
        plain = client.post("/v1/chat/completions", headers=me, json={
            "model": "second-llm", "max_tokens": 4, "messages": [{"role": "user", "content": "Say hi."}]})
        assert plain.status_code == 200 and plain.json()["choices"][0]["message"]["content"]
        assert client.get("/readyz").json()["llm_queue_depth"] == 0
