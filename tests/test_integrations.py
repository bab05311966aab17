"""sovrag inside other frameworks, with the real packages: LangChain and LlamaIndex retrievers and answerers and
the MCP server (the official SDK's client), against a live server and on an embedded data directory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sovrag.config import Settings
from sovrag.errors import SovragError
from sovrag.integrations.client import LocalClient, connect
from tests.conftest import MODELS_DIR
from tests.test_serve import QUESTION, Live, live  # noqa: F401  (the live server fixture)

lc_retrievers = pytest.importorskip("sovrag.integrations.langchain")
li = pytest.importorskip("sovrag.integrations.llama_index")
mcp_client = pytest.importorskip("mcp.client")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "docs"
SOVRAG = [sys.executable, "-c", "from sovrag.cli import app; app()"]


# ------------------------------------------------------------------ LangChain
def test_langchain_retriever_sync_and_async_against_a_server(live: Live) -> None:
    r = lc_retrievers.SovragRetriever(collection="docs", url=live.base, api_key=live.a_key, top_k=3)
    docs = r.invoke(QUESTION)
    assert len(docs) == 3
    top = docs[0]
    assert top.metadata["source"] == "handbook.md" and "25" in top.page_content
    assert top.metadata["rank"] == 1 and top.metadata["score"] > 0 and top.id
    assert {"title", "page", "headings", "document_id", "chunk_id", "collection"} <= set(top.metadata)
    assert isinstance(top.metadata["headings"], list)
    adocs = asyncio.run(r.ainvoke(QUESTION))
    assert [d.id for d in adocs] == [d.id for d in docs]
    bm25 = lc_retrievers.SovragRetriever(collection="docs", url=live.base, api_key=live.a_key, top_k=2, mode="bm25")
    assert bm25.invoke(QUESTION)[0].metadata["source"] == "handbook.md"


def test_langchain_retriever_sees_its_tenants_collections_only(live: Live) -> None:
    b = lc_retrievers.SovragRetriever(collection="docs", url=live.base, api_key=live.b_key, top_k=5)
    texts = [d.page_content for d in b.invoke("launch code")]
    assert texts and all("vacation" not in t for t in texts) and any("ZEBRA-4471" in t for t in texts)
    a = lc_retrievers.SovragRetriever(collection="docs", url=live.base, api_key=live.a_key, top_k=5)
    assert all("ZEBRA" not in d.page_content for d in a.invoke("Zephyr launch code"))
    with pytest.raises(SovragError, match=r"collection 'nope'.*HTTP 404"):
        lc_retrievers.SovragRetriever(collection="nope", url=live.base, api_key=live.a_key).invoke("x")
    with pytest.raises(SovragError, match="HTTP 401"):
        lc_retrievers.SovragRetriever(collection="docs", url=live.base, api_key="sk-sovrag-wrong").invoke("x")


def test_a_server_client_serves_several_event_loops_and_names_stay_names(live: Live) -> None:
    client = connect(live.base, api_key=live.a_key)
    first = asyncio.run(client.asearch("docs", QUESTION, top_k=1))
    again = asyncio.run(client.asearch("docs", QUESTION, top_k=1))  # a second asyncio.run: a new loop
    assert first == again and first[0].source == "handbook.md"
    with pytest.raises(SovragError, match=r"collection '\.\./\.\./admin/tenants'.*HTTP 404"):
        client.search("../../admin/tenants", "x")  # one path segment, never another route
    client.close()


def test_a_server_client_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOVRAG_API_KEY", raising=False)
    with pytest.raises(SovragError, match="no API key"):
        connect("http://127.0.0.1:9")


def test_an_unreachable_server_is_one_clear_error() -> None:
    r = lc_retrievers.SovragRetriever(collection="docs", url="http://127.0.0.1:9", api_key="k")
    with pytest.raises(SovragError, match="did not answer"):
        r.invoke("x")


@pytest.mark.model
def test_langchain_chain_with_the_retriever_and_the_servers_llm(live: Live) -> None:
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnablePassthrough
    from langchain_openai import ChatOpenAI

    retriever = lc_retrievers.SovragRetriever(collection="docs", url=live.base, api_key=live.a_key, top_k=2)
    prompt = ChatPromptTemplate.from_messages([
        ("system", "Answer from the context only, in one short sentence.\n\nContext:\n{context}"),
        ("user", "{question}")])
    llm = ChatOpenAI(base_url=live.base + "/v1", api_key=live.a_key, model="qwen2.5-coder-0.5b-instruct-q4_k_m",
                     max_tokens=48, temperature=0, max_retries=0)
    chain = ({"context": retriever | (lambda docs: "\n\n".join(d.page_content for d in docs)),
              "question": RunnablePassthrough()} | prompt | llm | StrOutputParser())
    assert "25" in chain.invoke(QUESTION)


@pytest.mark.model
def test_langchain_answerer_returns_the_verified_answer_with_its_sources(live: Live) -> None:
    qa = lc_retrievers.SovragAnswerer("docs", url=live.base, api_key=live.a_key)
    out = qa.invoke(QUESTION)
    assert not out["abstained"] and "25" in out["answer"]
    supported = [s for s in out["sentences"] if s["supported"]]
    assert supported and all(s["sources"] for s in supported)
    numbers = {d.metadata["number"] for d in out["source_documents"]}
    assert {n for s in supported for n in s["sources"]} <= numbers
    cited = [d for d in out["source_documents"] if d.metadata["number"] in supported[0]["sources"]]
    assert cited[0].metadata["source"] == "handbook.md" and "25" in cited[0].page_content
    again = asyncio.run(qa.ainvoke({"question": QUESTION}))
    assert not again["abstained"] and "25" in again["answer"]
    unknown = qa.invoke("What is the launch code of the Zephyr project?")  # tenant B's secret
    assert unknown["abstained"] and "ZEBRA" not in unknown["answer"]


# ------------------------------------------------------------------ LlamaIndex
def test_llama_index_retriever_sync_and_async_against_a_server(live: Live) -> None:
    r = li.SovragRetriever("docs", url=live.base, api_key=live.a_key, top_k=3)
    nodes = r.retrieve(QUESTION)
    assert len(nodes) == 3 and nodes[0].score > 0
    top = nodes[0].node
    assert top.metadata["source"] == "handbook.md" and "25" in top.get_content()
    assert top.node_id and top.metadata["rank"] == 1
    # the text an LLM sees carries the citation fields, not the ids
    llm_text = top.get_content(metadata_mode="llm")
    assert "handbook.md" in llm_text and top.metadata["chunk_id"] not in llm_text
    anodes = asyncio.run(r.aretrieve(QUESTION))
    assert [n.node.node_id for n in anodes] == [n.node.node_id for n in nodes]


@pytest.mark.model
def test_llama_index_query_engine_returns_the_verified_answer(live: Live) -> None:
    engine = li.SovragQueryEngine(collection="docs", url=live.base, api_key=live.a_key)
    response = engine.query(QUESTION)
    assert "25" in str(response) and response.metadata["abstained"] is False
    assert any(n.node.metadata["source"] == "handbook.md" for n in response.source_nodes)
    assert all("number" in n.node.metadata for n in response.source_nodes)
    aresponse = asyncio.run(engine.aquery(QUESTION))
    assert "25" in str(aresponse) and aresponse.source_nodes


# ------------------------------------------------------------------ embedded: a data directory here
@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("embedded") / "data"
    data.mkdir()
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    (data / "models").symlink_to(MODELS_DIR, target_is_directory=True)
    env = {**os.environ, "SOVRAG_DATA_DIR": str(data)}
    done = subprocess.run([*SOVRAG, "ingest", str(EXAMPLES), "-c", "handbook"], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return data


def test_embedded_retrievers_on_a_data_directory(data_dir: Path) -> None:
    with LocalClient(Settings(data_dir=data_dir)) as client:
        assert client.collections() == ["handbook"]
        docs = lc_retrievers.SovragRetriever(collection="handbook", client=client, top_k=2).invoke(QUESTION)
        assert "25" in docs[0].page_content and docs[0].metadata["source"].endswith("handbook.md")
        nodes = asyncio.run(li.SovragRetriever("handbook", client=client, top_k=2).aretrieve(QUESTION))
        assert [n.node.node_id for n in nodes] == [d.id for d in docs]
        with pytest.raises(SovragError, match="collection 'nope': does not exist"):
            client.search("nope", "x")


# ------------------------------------------------------------------ MCP
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _mcp_over_http(live: Live, api_key: str | None) -> Iterator[str]:
    """`sovrag mcp --transport http --url <live server>` in a subprocess, serving one tenant (`api_key`) or, with
    none, passing each MCP client's own key on; yields the endpoint once it answers."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "SOVRAG_API_KEY"}
    if api_key:
        env["SOVRAG_API_KEY"] = api_key
    proc = subprocess.Popen([*SOVRAG, "mcp", "--transport", "http", "--port", str(port), "--url", live.base], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "sovrag mcp did not start"
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.fixture
def mcp_http(live: Live) -> Iterator[str]:
    with _mcp_over_http(live, live.a_key) as url:
        yield url


@pytest.mark.model
def test_mcp_over_streamable_http_searches_and_answers_a_tenants_collections(mcp_http: str) -> None:
    async def session() -> None:
        async with mcp_client.Client(mcp_http) as c:
            tools = {t.name: t for t in (await c.list_tools()).tools}
            assert set(tools) == {"list_collections", "search", "ask"}
            assert "question" in tools["ask"].input_schema["properties"]
            listed = await c.call_tool("list_collections", {})
            assert set(listed.structured_content["collections"]) == {"docs", "a-private"}  # tenant A's only
            found = await c.call_tool("search", {"collection": "docs", "query": QUESTION, "top_k": 2})
            assert not found.is_error
            top = found.structured_content["passages"][0]
            assert top["source"] == "handbook.md" and "25" in top["text"] and top["score"] > 0
            answered = await c.call_tool("ask", {"collection": "docs", "question": QUESTION})
            answer = answered.structured_content
            assert not answer["abstained"] and "25" in answer["answer"]
            assert any(s["supported"] and s["sources"] for s in answer["sentences"])
            assert answer["sources"][0]["source"].endswith(".md")
            missing = await c.call_tool("search", {"collection": "nope", "query": "x"})
            assert missing.is_error and "nope" in missing.content[0].text
            bad = await c.call_tool("search", {"collection": "docs", "query": "x", "top_k": 500})
            assert bad.is_error and "top_k" in bad.content[0].text

    asyncio.run(session())


def test_mcp_over_http_passes_each_clients_own_key_on(live: Live) -> None:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    with _mcp_over_http(live, None) as url:
        async def collections(key: str | None) -> tuple[bool, object]:
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
                async with mcp_client.Client(streamable_http_client(url, http_client=http)) as c:
                    r = await c.call_tool("list_collections", {})
                    return r.is_error, r.structured_content if not r.is_error else r.content[0].text

        failed, got = asyncio.run(collections(live.a_key))
        assert not failed and sorted(got["collections"]) == ["a-private", "docs"]  # type: ignore[index]
        assert asyncio.run(collections(live.b_key)) == (False, {"collections": ["docs"]})
        failed, message = asyncio.run(collections(None))
        assert failed and "Authorization: Bearer" in str(message)
        failed, message = asyncio.run(collections("sk-sovrag-wrong"))
        assert failed and "401" in str(message)


def test_mcp_over_stdio_on_a_data_directory(data_dir: Path) -> None:
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(command=SOVRAG[0], args=[*SOVRAG[1:], "--data-dir", str(data_dir), "mcp"],
                                   env={**os.environ, "SOVRAG_DATA_DIR": str(data_dir)})

    async def session() -> None:
        async with mcp_client.Client(params) as c:
            listed = await c.call_tool("list_collections", {})
            assert listed.structured_content["collections"] == ["handbook"]
            found = await c.call_tool("search", {"collection": "handbook", "query": QUESTION, "top_k": 1,
                                                 "mode": "bm25"})
            assert "25" in found.structured_content["passages"][0]["text"]

    asyncio.run(session())


def test_mcp_needs_a_valid_transport() -> None:
    done = subprocess.run([*SOVRAG, "mcp", "--transport", "sse"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "--transport 'sse'" in done.stderr and "Traceback" not in done.stderr

