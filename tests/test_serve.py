"""The server, live on loopback, driven by unmodified clients: the openai SDK, LangChain and plain HTTP."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from sovrag.config import Settings
from sovrag.serve import create_app
from sovrag.serve.options import ServerOptions
from tests.conftest import MODELS_DIR

openai = pytest.importorskip("openai")
uvicorn = pytest.importorskip("uvicorn")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "docs"
ADMIN = "admin-" + secrets.token_hex(16)
QUESTION = "How many vacation days do new employees get?"
B_SECRET = "The Zephyr project launch code is ZEBRA-4471 and only tenant B knows it."


@dataclass
class Live:
    base: str
    data: Path
    a_key: str
    b_key: str
    a_job: str
    a_doc_ids: dict[str, str]

    def http(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=120)

    def oai(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base + "/v1", api_key=key, max_retries=0, timeout=120)


def _admin(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60)


def _tenant_key(base: str, name: str, **key_opts: object) -> str:
    with _admin(base) as c:
        tid = c.post("/admin/tenants", json={"name": name}).raise_for_status().json()["id"]
        return c.post(f"/admin/tenants/{tid}/keys", json=key_opts).raise_for_status().json()["key"]


def _upload(c: httpx.Client, collection: str, files: list[tuple[str, bytes]]) -> httpx.Response:
    return c.post(f"/v1/collections/{collection}/documents", files=[("files", f) for f in files])


def _wait_job(c: httpx.Client, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.get(f"/v1/jobs/{job_id}").raise_for_status().json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def _assert_error(r: httpx.Response, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    if code:
        assert err["code"] == code, err
    assert "Traceback" not in r.text
    return err


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data = tmp_path_factory.mktemp("serve") / "data"
    data.mkdir()
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    (data / "models").symlink_to(MODELS_DIR, target_is_directory=True)
    settings = Settings(data_dir=data, llm_context=2048, llm_threads=1)  # 1 thread: robust on a busy CI box
    opts = ServerOptions(admin_key=ADMIN, max_upload_file_mb=0.1, max_upload_request_mb=1.0, max_upload_files=10,
                         default_max_tokens=64, rate_limit_rpm=100_000, shutdown_grace_s=5)
    server = uvicorn.Server(uvicorn.Config(create_app(settings, options=opts), host="127.0.0.1", port=0,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    a_key, b_key = _tenant_key(base, "tenant-a"), _tenant_key(base, "tenant-b")
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {a_key}"}, timeout=60) as a:
        for name in ("docs", "a-private"):
            a.post("/v1/collections", json={"name": name}).raise_for_status()
        r = _upload(a, "docs", [(p.name, p.read_bytes()) for p in sorted(EXAMPLES.iterdir())])
        assert r.status_code == 202, r.text
        a_job = r.json()["id"]
        job = _wait_job(a, a_job)
        assert job["state"] == "succeeded" and job["files_done"] == 6, job
        assert not job["report"]["failures"], job
        _wait_job(a, _upload(a, "a-private", [("plan.md", b"# Plan\n\nProject Orion ships on 3 May.\n")])
                  .raise_for_status().json()["id"])
        docs = a.get("/v1/collections/docs/documents").raise_for_status().json()["data"]
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {b_key}"}, timeout=60) as b:
        b.post("/v1/collections", json={"name": "docs"}).raise_for_status()
        _wait_job(b, _upload(b, "docs", [("zephyr.txt", B_SECRET.encode())]).raise_for_status().json()["id"])
    yield Live(base, data, a_key, b_key, a_job, {d["name"]: d["id"] for d in docs})
    server.should_exit = True
    thread.join(15)


# ------------------------------------------------------------------ operations
def test_health_ready_openapi_and_request_ids(live: Live) -> None:
    with live.http() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {"database": True, "ingest_worker": True}
        assert "swagger" in c.get("/docs").text.lower()
        paths = c.get("/openapi.json").json()["paths"]
        assert {"/v1/chat/completions", "/v1/embeddings", "/v1/collections/{name}/documents"} <= set(paths)
        r = c.get("/healthz", headers={"X-Request-ID": "my-trace-1"})
        assert r.headers["x-request-id"] == "my-trace-1"
        assert c.get("/healthz").headers["x-request-id"].startswith("req_")


def test_admin_routes_need_the_admin_key(live: Live) -> None:
    with live.http() as c:
        _assert_error(c.get("/admin/tenants"), 401, "missing_api_key")
        _assert_error(c.get("/admin/tenants", headers={"Authorization": "Bearer nope"}), 401, "invalid_api_key")
    with live.http(live.a_key) as c:
        _assert_error(c.get("/admin/tenants"), 403, "admin_only")
    with _admin(live.base) as c:
        names = [t["name"] for t in c.get("/admin/tenants").json()["data"]]
        assert {"tenant-a", "tenant-b"} <= set(names)
        _assert_error(c.post("/admin/tenants", json={"name": "tenant-a"}), 409)
        _assert_error(c.get("/v1/models"), 403, "admin_key_not_allowed")


def test_models_lists_the_tenants_collections_only(live: Live) -> None:
    a_ids = [m.id for m in live.oai(live.a_key).models.list()]
    b_ids = [m.id for m in live.oai(live.b_key).models.list()]
    assert {"rag:docs", "rag:a-private", "qwen2.5-coder-0.5b-instruct-q4_k_m", "minilm-l6-v2"} <= set(a_ids)
    assert "rag:docs" in b_ids and "rag:a-private" not in b_ids


# ------------------------------------------------------------------ documents and search
def test_documents_listed_with_titles_and_fetched_by_id(live: Live) -> None:
    assert set(live.a_doc_ids) == {p.name for p in EXAMPLES.iterdir()}
    with live.http(live.a_key) as c:
        doc = c.get(f"/v1/collections/docs/documents/{live.a_doc_ids['handbook.md']}").json()
        assert doc["name"] == "handbook.md" and doc["chunks"] >= 1 and doc["format"] == "markdown" and doc["title"]
        assert str(live.data) not in json.dumps(doc)
        col = c.get("/v1/collections/docs").json()
        assert col["documents"] == 6 and col["name"] == "docs"
        job = c.get(f"/v1/jobs/{live.a_job}").json()
        assert job["report"]["added"] == 6 and job["files_total"] == 6


def test_search_returns_ranked_chunks_of_the_tenant(live: Live) -> None:
    with live.http(live.a_key) as c:
        r = c.post("/v1/collections/docs/search", json={"query": "vacation days for new employees", "top_k": 3})
        hits = r.raise_for_status().json()["data"]
        assert [h["rank"] for h in hits] == [1, 2, 3] and hits[0]["source"] == "handbook.md"
        assert "25" in hits[0]["text"] and hits[0]["score"] >= hits[1]["score"]
        bm25 = c.post("/v1/collections/docs/search", json={"query": "vacation", "mode": "bm25",
                                                            "filters": {"format": "markdown"}}).json()["data"]
        assert bm25 and {h["source"] for h in bm25} == {"handbook.md"}


def test_upload_replace_and_delete_a_document_then_the_collection(live: Live) -> None:
    with live.http(live.a_key) as c:
        c.post("/v1/collections", json={"name": "scratch"}).raise_for_status()
        _assert_error(c.post("/v1/collections", json={"name": "scratch"}), 409, "collection_exists")
        for text in (b"Alpha is 1.", b"Alpha is 2."):
            job = _wait_job(c, _upload(c, "scratch", [("a.txt", text)]).json()["id"])
            assert job["state"] == "succeeded"
        docs = c.get("/v1/collections/scratch/documents").json()["data"]
        assert len(docs) == 1 and docs[0]["chunks"] == 1  # replaced, not duplicated
        c.delete(f"/v1/collections/scratch/documents/{docs[0]['id']}").raise_for_status()
        assert c.get("/v1/collections/scratch/documents").json()["data"] == []
        c.delete("/v1/collections/scratch").raise_for_status()
        _assert_error(c.get("/v1/collections/scratch"), 404, "collection_not_found")


# ------------------------------------------------------------------ OpenAI clients
def test_embeddings_with_the_openai_client(live: Live) -> None:
    client = live.oai(live.a_key)
    one = client.embeddings.create(model="minilm-l6-v2", input="vacation days")  # SDK asks for base64
    assert len(one.data) == 1 and len(one.data[0].embedding) == 384
    many = client.embeddings.create(model="minilm-l6-v2", input=["a", "b", "c"], encoding_format="float")
    vecs = np.array([d.embedding for d in many.data])
    assert vecs.shape == (3, 384) and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-3)
    assert many.usage.prompt_tokens > 0
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="text-embedding-3-large", input="x")
    with pytest.raises(openai.BadRequestError, match="non-empty"):
        client.embeddings.create(model="minilm-l6-v2", input=["fine", ""])


@pytest.mark.model
@pytest.mark.slow
def test_rag_chat_with_the_openai_client(live: Live) -> None:
    resp = live.oai(live.a_key).chat.completions.create(
        model="rag:docs", messages=[{"role": "user", "content": QUESTION}], max_tokens=64)
    assert resp.object == "chat.completion" and resp.choices[0].finish_reason in ("stop", "length")
    assert "25" in resp.choices[0].message.content
    assert resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens > 0
    sov = resp.to_dict()["sovrag"]
    assert not sov["abstained"]
    cited = {c["source"] for s in sov["sentences"] for c in s["citations"]}
    assert "handbook.md" in {sov["sources"][n - 1]["chunk"]["source"] for n in cited}
    assert str(live.data) not in json.dumps(sov)


@pytest.mark.model
@pytest.mark.slow
def test_chat_requests_choose_retrieval_and_unsupported_fields_are_refused_by_name(live: Live) -> None:
    client = live.oai(live.a_key)
    msgs = [{"role": "user", "content": QUESTION}]
    resp = client.chat.completions.create(model="rag:docs", messages=msgs, max_tokens=48, extra_body={
        "sovrag": {"top_k": 2, "filters": {"format": "markdown"}, "mode": "hybrid"}})
    sources = resp.to_dict()["sovrag"]["sources"]
    assert 1 <= len(sources) <= 2 and {s["chunk"]["source"] for s in sources} == {"handbook.md"}
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    with pytest.raises(openai.BadRequestError, match="'tools': not supported"):
        client.chat.completions.create(model="rag:docs", messages=msgs, tools=tools)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError, match="'response_format': not supported"):
        client.chat.completions.create(model="rag:docs", messages=msgs, response_format={"type": "json_object"})
    with pytest.raises(openai.BadRequestError, match="'top_p': not supported"):
        client.chat.completions.create(model="rag:docs", messages=msgs, top_p=0.5)
    with pytest.raises(openai.BadRequestError, match="'frobnicate': unknown"):
        client.chat.completions.create(model="rag:docs", messages=msgs, extra_body={"frobnicate": 1})
    with pytest.raises(openai.BadRequestError, match="top_k"):
        client.chat.completions.create(model="rag:docs", messages=msgs, extra_body={"sovrag": {"top_k": 0}})
    ok = client.chat.completions.create(model="rag:docs", messages=msgs, max_tokens=16, top_p=1, user="u-1")
    assert ok.choices[0].message.content  # the defaults and an end-user id are fine
    # a client that can only name the LLM chooses the collection in the options
    plain = client.chat.completions.create(model="qwen2.5-coder-0.5b-instruct-q4_k_m", messages=msgs, max_tokens=48,
                                           extra_body={"sovrag": {"collection": "docs"}})
    assert "25" in plain.choices[0].message.content and plain.to_dict()["sovrag"]["sources"]
    with pytest.raises(openai.BadRequestError, match="name different collections"):
        client.chat.completions.create(model="rag:docs", messages=msgs, extra_body={"sovrag": {"collection": "x"}})
    with pytest.raises(openai.NotFoundError, match="no collection 'nope'"):
        client.chat.completions.create(model="qwen2.5-coder-0.5b-instruct-q4_k_m", messages=msgs,
                                       extra_body={"sovrag": {"collection": "nope"}})


@pytest.mark.model
@pytest.mark.slow
def test_rag_chat_streams_openai_chunks_with_usage_and_sources(live: Live) -> None:
    stream = live.oai(live.a_key).chat.completions.create(
        model="rag:docs", messages=[{"role": "user", "content": QUESTION}], max_tokens=64, stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and "25" in text
    sov = finals[0].model_extra["sovrag"]
    assert text == sov["text"]  # a plain streaming client shows the verified answer, citations included
    assert "[" in text and not sov["abstained"]
    assert "handbook.md" in {s["chunk"]["source"] for s in sov["sources"]} and "25" in sov["text"]
    for cite in (c for s in sov["sentences"] for c in s["citations"]):  # the evidence, in its whole passage
        assert cite["evidence"] in sov["sources"][cite["source"] - 1]["chunk"]["text"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert len({c.id for c in chunks}) == 1


@pytest.mark.model
@pytest.mark.slow
def test_rag_chat_follow_up_retrieves_with_the_conversation(live: Live) -> None:
    resp = live.oai(live.a_key).chat.completions.create(model="rag:docs", max_tokens=48, messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": "New employees get 25 vacation days per year [1]."},
        {"role": "user", "content": "Until when must they be taken?"}])
    sov = resp.to_dict()["sovrag"]
    assert sov["question"] == "Until when must they be taken?"
    assert any("31 March" in s["text"] for s in sov["sources"]), sov["sources"]


@pytest.mark.model
@pytest.mark.slow
def test_langchain_chat_openai_against_a_collection(live: Live) -> None:
    lc = pytest.importorskip("langchain_openai")
    chat = lc.ChatOpenAI(base_url=live.base + "/v1", api_key=live.a_key, model="rag:docs", max_tokens=64,
                         max_retries=0, temperature=0)
    assert "25" in chat.invoke(QUESTION).content


@pytest.mark.model
def test_plain_model_name_goes_straight_to_the_llm(live: Live) -> None:
    resp = live.oai(live.b_key).chat.completions.create(
        model="qwen2.5-coder-0.5b-instruct-q4_k_m", max_tokens=8,
        messages=[{"role": "system", "content": "Answer in one word."}, {"role": "user", "content": "Say hello."}])
    assert resp.choices[0].message.content and "sovrag" not in resp.to_dict()


@pytest.mark.model
def test_client_disconnecting_mid_stream_leaves_the_server_serving(live: Live) -> None:
    body = {"model": "qwen2.5-coder-0.5b-instruct-q4_k_m", "max_tokens": 400, "stream": True,
            "messages": [{"role": "user", "content": "Count from 1 to 200, one number per line."}]}
    with live.http(live.a_key) as c:
        with c.stream("POST", "/v1/chat/completions", json=body) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            lines = r.iter_lines()
            first = next(line for line in lines if line.startswith("data: "))
            assert json.loads(first[6:])["object"] == "chat.completion.chunk"
        t0 = time.monotonic()  # closed early; the model must be freed for the next request
        resp = live.oai(live.a_key).chat.completions.create(
            model="qwen2.5-coder-0.5b-instruct-q4_k_m", max_tokens=4, messages=[{"role": "user", "content": "Hi"}])
        assert resp.choices[0].message.content is not None and time.monotonic() - t0 < 30
        assert c.get("/readyz").json()["llm_queue_depth"] == 0


@pytest.mark.model
def test_search_stays_responsive_during_a_generation(live: Live) -> None:
    def generate() -> None:
        live.oai(live.b_key).chat.completions.create(
            model="qwen2.5-coder-0.5b-instruct-q4_k_m", max_tokens=40,
            messages=[{"role": "user", "content": "Write a long story about a robot."}], timeout=600)

    worker = threading.Thread(target=generate)
    worker.start()
    time.sleep(1.0)
    with live.http(live.a_key) as c:
        t0 = time.monotonic()
        c.post("/v1/collections/docs/search", json={"query": "vacation"}).raise_for_status()
        searched = time.monotonic() - t0
        busy = worker.is_alive()
    worker.join()
    assert searched < 5.0, f"search took {searched:.1f} s during a generation (generation still running: {busy})"


# ------------------------------------------------------------------ isolation
def test_tenant_b_cannot_reach_tenant_a(live: Live) -> None:
    handbook = live.a_doc_ids["handbook.md"]
    with live.http(live.b_key) as b:
        _assert_error(b.get(f"/v1/jobs/{live.a_job}"), 404, "job_not_found")
        _assert_error(b.get("/v1/collections/a-private"), 404, "collection_not_found")
        _assert_error(b.get("/v1/collections/a-private/documents"), 404)
        _assert_error(b.post("/v1/collections/a-private/search", json={"query": "Orion"}), 404)
        _assert_error(b.get(f"/v1/collections/docs/documents/{handbook}"), 404, "document_not_found")
        _assert_error(b.delete(f"/v1/collections/docs/documents/{handbook}"), 404, "document_not_found")
        _assert_error(b.delete("/v1/collections/a-private"), 404)
        _assert_error(_upload(b, "a-private", [("x.md", b"# x")]), 404)
        _assert_error(b.get("/v1/collections/t1--docs"), 404)  # the internal name is not reachable either
        for query in ("vacation days new employees", "Project Orion ships"):
            hits = b.post("/v1/collections/docs/search", json={"query": query, "top_k": 10}).json()["data"]
            assert {h["source"] for h in hits} <= {"zephyr.txt"}
        assert [c["name"] for c in b.get("/v1/collections").json()["data"]] == ["docs"]
    with live.http(live.a_key) as a:
        hits = a.post("/v1/collections/docs/search", json={"query": "Zephyr launch code ZEBRA", "top_k": 10}).json()
        assert all("ZEBRA" not in h["text"] for h in hits["data"])
        assert a.get("/v1/collections/docs/documents").json()["data"][0]["id"] in live.a_doc_ids.values()
    with pytest.raises(openai.NotFoundError):
        live.oai(live.b_key).chat.completions.create(model="rag:a-private", messages=[{"role": "user",
                                                                                        "content": "Orion?"}])


@pytest.mark.model
def test_tenant_b_rag_chat_never_sees_tenant_a_text(live: Live) -> None:
    resp = live.oai(live.b_key).chat.completions.create(
        model="rag:docs", messages=[{"role": "user", "content": QUESTION}], max_tokens=48)
    sov = resp.to_dict()["sovrag"]
    assert {s["chunk"]["source"] for s in sov["sources"]} <= {"zephyr.txt"}
    assert "25 vacation" not in resp.choices[0].message.content


# ------------------------------------------------------------------ bad input
def test_malformed_and_mistyped_requests_get_openai_errors(live: Live) -> None:
    ok = {"model": "rag:docs", "messages": [{"role": "user", "content": "hi"}]}
    with live.http(live.a_key) as c:
        r = c.post("/v1/chat/completions", content=b'{"model": "rag:docs", "messages": [',
                   headers={"Content-Type": "application/json"})
        assert "malformed JSON" in _assert_error(r, 400)["message"]
        for bad in ({"messages": "hi"}, {"max_tokens": "many"}, {"stream": "yes"}, {"model": 5},
                    {"messages": [{"role": "wizard", "content": "x"}]}, {"n": 3}, {"temperature": 9},
                    {"messages": []}):
            err = _assert_error(c.post("/v1/chat/completions", json={**ok, **bad}), 400)
            assert err["type"] == "invalid_request_error" and err["param"], (bad, err)
        _assert_error(c.post("/v1/collections/docs/search", json={"query": "x", "top_k": 0}), 400)
        _assert_error(c.post("/v1/collections", json={"name": "../etc"}), 400, "invalid_collection_name")
        _assert_error(c.get("/v1/nothing-here"), 404)
        _assert_error(c.post("/v1/chat/completions", json={**ok, "model": "gpt-4o"}), 404, "model_not_found")
        _assert_error(c.post("/v1/chat/completions", json={**ok, "model": "rag:nope"}), 404, "model_not_found")
        _assert_error(c.post("/v1/chat/completions", json={**ok, "max_tokens": 100_000}), 400)
        _assert_error(c.post("/v1/embeddings", json={"model": "minilm-l6-v2", "input": [1, 2, 3]}), 400)
    with pytest.raises(openai.NotFoundError) as e:
        live.oai(live.a_key).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert e.value.code == "model_not_found"


def test_missing_invalid_and_revoked_keys(live: Live) -> None:
    with live.http() as c:
        _assert_error(c.get("/v1/models"), 401, "missing_api_key")
        _assert_error(c.get("/v1/models", headers={"Authorization": "Basic abc"}), 401, "invalid_api_key")
    with pytest.raises(openai.AuthenticationError):
        live.oai("sk-sovrag-not-a-real-key").models.list()
    with _admin(live.base) as adm:
        tid = adm.get("/admin/tenants").json()["data"][0]["id"]
        created = adm.post(f"/admin/tenants/{tid}/keys", json={"name": "temp"}).json()
        assert created["key"].startswith("sk-sovrag-")
        assert live.oai(created["key"]).models.list().data
        adm.delete(f"/admin/keys/{created['id']}").raise_for_status()
        _assert_error(adm.delete(f"/admin/keys/{created['id']}"), 404)
    with live.http(created["key"]) as c:
        _assert_error(c.get("/v1/models"), 401, "revoked_api_key")
    db = (live.data / "server.db").read_bytes()
    assert created["key"].encode() not in db and live.a_key.encode() not in db  # only hashes are stored


def test_upload_limits_names_and_types(live: Live) -> None:
    with live.http(live.a_key) as c:
        err = _assert_error(_upload(c, "docs", [("big.txt", b"x" * 200_000)]), 413, "file_too_large")
        assert "big.txt" in err["message"]
        _assert_error(_upload(c, "docs", [("tool.exe", b"MZ\x90\x00")]), 415, "unsupported_file_type")
        _assert_error(c.post("/v1/collections/docs/documents", content=b"x" * (2 * 2**20),
                             headers={"Content-Type": "multipart/form-data; boundary=zz"}), 413, "request_too_large")
        _assert_error(_upload(c, "docs", [(f"f{i}.txt", b"x") for i in range(11)]), 413, "too_many_files")
        _assert_error(c.post("/v1/collections/docs/documents", data={"x": "y"}), 415, "unsupported_media_type")
        _assert_error(c.post("/v1/collections/docs/documents", files={"note": (None, "y")}), 400, "no_files")
        _assert_error(_upload(c, "nope", [("a.md", b"# a")]), 404)
        c.post("/v1/collections", json={"name": "uploads"}).raise_for_status()
        r = _upload(c, "uploads", [("../../../../escape.md", b"# Escape\n\nNot outside."),
                                   ("virus.exe", b"MZ"), ("..\\..\\win.txt", b"windows path")])
        assert r.status_code == 202, r.text
        files = {f["filename"]: f for f in r.json()["files"]}
        assert files["../../../../escape.md"]["name"] == "escape.md"
        assert files["..\\..\\win.txt"]["name"] == "win.txt"
        assert files["virus.exe"]["status"] == "rejected" and files["virus.exe"]["code"] == "unsupported_file_type"
        assert _wait_job(c, r.json()["id"])["state"] == "succeeded"
        names = {d["name"] for d in c.get("/v1/collections/uploads/documents").json()["data"]}
        assert names == {"escape.md", "win.txt"}
    assert not list(live.data.parent.rglob("escape.md"))[1:], "a copy escaped the files folder"
    assert all("files/uploads" in str(p) for p in live.data.rglob("escape.md"))


def test_unicode_upload_names_stay_distinct_and_nothing_is_overwritten(live: Live) -> None:
    with live.http(live.a_key) as c:
        c.post("/v1/collections", json={"name": "unicode"}).raise_for_status()
        r = _upload(c, "unicode", [("日本.md", b"# Japan\n\nTokyo is the capital of Japan."),
                                   ("中文.md", b"# China\n\nBeijing is the capital of China.")])
        assert r.status_code == 202, r.text
        assert [f["status"] for f in r.json()["files"]] == ["accepted", "accepted"], r.json()
        assert _wait_job(c, r.json()["id"])["state"] == "succeeded"
        r = _upload(c, "unicode", [("café.md", b"# Cafe\n\nCoffee costs 3 euros.")])
        assert _wait_job(c, r.json()["id"])["state"] == "succeeded"
        names = {d["name"] for d in c.get("/v1/collections/unicode/documents").json()["data"]}
        assert names == {"日本.md", "中文.md", "café.md"}


def test_an_oversized_body_without_content_length_gets_413(live: Live) -> None:
    def chunked(total: int) -> Iterator[bytes]:
        for _ in range(total // 65536):
            yield b" " * 65536

    with live.http(live.a_key) as c:  # the JSON limit is 4 MB; a chunked body declares no length
        r = c.post("/v1/chat/completions", content=chunked(6 * 2**20), headers={"Content-Type": "application/json"})
        _assert_error(r, 413, "request_too_large")
        assert c.get("/v1/collections").status_code == 200


def test_a_flood_beyond_the_rate_limit_gets_429_and_others_keep_going(live: Live) -> None:
    limited = _tenant_key(live.base, "tenant-flood", rate_limit_rpm=5)
    with live.http(limited) as c:
        statuses = [c.get("/v1/collections").status_code for _ in range(12)]
        assert statuses[:5] == [200] * 5 and statuses.count(429) >= 6
        r = c.get("/v1/collections")
        err = _assert_error(r, 429, "rate_limit_exceeded")
        assert err["type"] == "rate_limit_error" and int(r.headers["retry-after"]) >= 1
    with pytest.raises(openai.RateLimitError):
        live.oai(limited).models.list()
    with live.http(live.a_key) as c:
        assert c.get("/v1/collections").status_code == 200


def test_metrics_report_requests_latency_tokens_queue_and_jobs(live: Live) -> None:
    with live.http() as c:
        _assert_error(c.get("/metrics"), 401, "missing_api_key")
    with live.http(live.a_key) as c:
        _assert_error(c.get("/metrics"), 401, "invalid_api_key")  # a tenant cannot read server-wide numbers
    with live.http(ADMIN) as c:
        text = c.get("/metrics").text
    assert 'sovrag_http_requests_total{method="GET",route="/v1/jobs/{job_id}",status="200"}' in text
    assert "sovrag_http_request_seconds_bucket" in text and 'status="429"' in text
    assert "sovrag_llm_queue_depth 0.0" in text and "sovrag_ingest_jobs_in_progress 0.0" in text
    assert 'sovrag_ingest_files_total{status="added"}' in text
    assert "sovrag_llm_tokens_total" in text


def _samples(live: Live) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    with live.http(ADMIN) as c:
        text = c.get("/metrics").text
    assert "_created" not in text  # no creation-time series next to every counter and histogram
    return {s.name + json.dumps(s.labels, sort_keys=True): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


@pytest.mark.model
def test_metrics_of_the_question_journey_and_the_process(live: Live) -> None:
    before = _samples(live)
    assert before["process_resident_memory_bytes{}"] > 0 and before["process_cpu_seconds_total{}"] > 0
    assert any(k.startswith("python_info") for k in before) and any(k.startswith("python_gc_") for k in before)
    client = live.oai(live.a_key)
    client.chat.completions.create(model="rag:docs", messages=[{"role": "user", "content": QUESTION}])
    stream = client.chat.completions.create(model="rag:docs", stream=True, messages=[
        {"role": "user", "content": "What is the launch code of the Zephyr project?"}])  # tenant B's secret
    assert "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)
    after = _samples(live)

    def grew(name: str, labels: str = "{}") -> float:
        return after.get(name + labels, 0.0) - before.get(name + labels, 0.0)

    assert grew("sovrag_answers_total", '{"outcome": "answered"}') >= 1
    assert grew("sovrag_answers_total", '{"outcome": "abstained"}') >= 1
    assert grew("sovrag_answer_sentences_total", '{"verdict": "supported"}') >= 1
    for hist in ("sovrag_answer_first_text_seconds", "sovrag_retrieval_seconds", "sovrag_verification_seconds"):
        assert grew(hist + "_count") >= 2, hist
    assert grew("sovrag_llm_first_token_seconds_count") >= 1
    assert 0 < grew("sovrag_retrieval_seconds_sum") < grew("sovrag_answer_first_text_seconds_sum")


def test_metric_labels_do_not_grow_with_client_chosen_methods_or_paths(live: Live) -> None:
    with live.http(live.a_key) as c:
        for i in range(3):
            assert c.request(f"BREW{i}", "/healthz").status_code == 405
            assert c.get(f"/v1/collections/no-such-{i}").status_code == 404
            assert c.get(f"/no/such/path/{i}").status_code == 404
    with live.http(ADMIN) as c:
        text = c.get("/metrics").text
    assert "BREW" not in text and 'method="other",route="/healthz",status="405"' in text
    assert "no-such" not in text and "/no/such" not in text and 'route="unmatched"' in text
