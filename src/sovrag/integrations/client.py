"""One way to reach sovrag from other frameworks: a running server (URL + tenant key) or a data directory here.

The LangChain and LlamaIndex retrievers and the MCP server are thin shapes over this module, so all of them
search and answer the same way:

- `connect("http://host:8000", api_key=...)` talks to `sovrag serve` over its public API (a tenant's
  collections; search is POST /v1/collections/{name}/search, an answer is a `rag:` chat completion whose
  `sovrag` field is the verified Answer);
- `connect()` / `connect(data_dir=...)` runs in this process on the embedded store with the configured
  models, exactly as `sovrag search` / `sovrag ask` do; when a `sovrag serve` owns that data directory, the
  requests go to it over its Unix socket instead (the server holds the store's lock), as the CLI's do.

Every method has an async twin (`asearch`, `aask`): native httpx async for a server, a worker thread here.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import quote

import httpx

from sovrag.answer.followup import Turn
from sovrag.config import Settings, load_settings
from sovrag.errors import SovragError
from sovrag.types import Answer

Mode = Literal["hybrid", "dense", "bm25"]
FilterValue = str | int | Sequence[str | int]


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk as integrations hand it on: its text, where it comes from and how it scored."""

    text: str
    score: float
    rank: int
    source: str  # the file name (a server never reveals its paths) or, embedded, the path as ingested
    title: str = ""
    page: int | None = None
    headings: tuple[str, ...] = ()
    document_id: str = ""
    chunk_id: str = ""
    chunk_index: int = 0
    collection: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """The metadata a framework's document carries (everything but the text)."""
        return {"source": self.source, "title": self.title, "page": self.page, "headings": list(self.headings),
                "score": self.score, "rank": self.rank, "document_id": self.document_id,
                "chunk_id": self.chunk_id, "chunk_index": self.chunk_index, "collection": self.collection,
                **{k: v for k, v in self.metadata.items() if k not in _CORE}}


_CORE = {"text", "source", "title", "page", "headings", "doc_id", "document_id", "chunk_index", "id", "rank",
         "score", "version", "chunk_count", "chunk_id", "collection"}


class Client(Protocol):
    """What integrations need from sovrag."""

    def collections(self) -> list[str]: ...

    def search(self, collection: str, query: str, *, top_k: int = 5, mode: Mode = "hybrid",
               filters: Mapping[str, FilterValue] | None = None) -> list[Passage]: ...

    async def asearch(self, collection: str, query: str, *, top_k: int = 5, mode: Mode = "hybrid",
                      filters: Mapping[str, FilterValue] | None = None) -> list[Passage]: ...

    def ask(self, collection: str, question: str, *, top_k: int | None = None, mode: Mode | None = None,
            filters: Mapping[str, FilterValue] | None = None, history: Sequence[Turn] = ()) -> Answer: ...

    async def aask(self, collection: str, question: str, *, top_k: int | None = None, mode: Mode | None = None,
                   filters: Mapping[str, FilterValue] | None = None, history: Sequence[Turn] = ()) -> Answer: ...

    def close(self) -> None: ...


def connect(url: str | None = None, *, api_key: str | None = None, data_dir: str | Path | None = None,
            settings: Settings | None = None, timeout: float = 300.0,
            headers: Mapping[str, str] | None = None) -> Client:
    """A client for a sovrag server at `url` (its tenant key from `api_key` or $SOVRAG_API_KEY), or, without a
    URL, for the data directory here (`data_dir`, else the configured one: $SOVRAG_DATA_DIR, config file)."""
    if url:
        key = api_key or os.environ.get("SOVRAG_API_KEY")
        if not key:
            raise SovragError(f"sovrag server {url}: no API key; pass api_key= or set SOVRAG_API_KEY")
        return HTTPClient(url, key, timeout=timeout, headers=headers)
    if api_key:
        raise SovragError("api_key: only used with a server URL; a data directory here needs none")
    s = settings or load_settings()
    if data_dir is not None:
        s = s.with_overrides(data_dir=Path(data_dir))
    # One client per data directory in a process: the embedded store lets one opener at a time use a collection,
    # so a retriever and an answerer made separately share it (and the loaded LLM).
    with _LOCAL_LOCK:
        if s not in _LOCAL:
            _LOCAL[s] = LocalClient(s)
        return _LOCAL[s]


_LOCAL: dict[Settings, LocalClient] = {}
_LOCAL_LOCK = threading.Lock()


# ------------------------------------------------------------------ a server, over its public API
def _error(r: httpx.Response, what: str) -> SovragError:
    try:
        message = r.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = r.text[:300] or r.reason_phrase
    return SovragError(f"{what}: {message} (HTTP {r.status_code})")


def _passage(d: Mapping[str, Any], collection: str) -> Passage:
    return Passage(text=d["text"], score=float(d["score"]), rank=int(d["rank"]), source=d.get("source", ""),
                   title=d.get("title", ""), page=d.get("page"), headings=tuple(d.get("headings") or ()),
                   document_id=d.get("document_id") or d.get("doc_id", ""), chunk_id=d.get("id", ""),
                   chunk_index=int(d.get("chunk_index", 0)), collection=collection,
                   metadata=d.get("metadata") or {k: v for k, v in d.items() if k not in _CORE})


def _options(top_k: int | None, mode: str | None, filters: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (("top_k", top_k), ("mode", mode),
                              ("filters", _filters(filters))) if v is not None}


def _seg(name: str) -> str:
    """A collection name as one URL path segment ("../x" stays a name, never a different route)."""
    return quote(name, safe="")


def _filters(filters: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not filters:
        return None
    return {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in filters.items()}


class HTTPClient:
    """A tenant's collections on a running `sovrag serve` (sync and async httpx clients, made on first use)."""

    def __init__(self, url: str, api_key: str, timeout: float = 300.0,
                 headers: Mapping[str, str] | None = None) -> None:
        base = url.rstrip("/")
        self.base = base[: -len("/v1")] if base.endswith("/v1") else base
        self._headers = {**(headers or {}), "Authorization": f"Bearer {api_key}"}
        self._timeout = httpx.Timeout(timeout, connect=10.0)
        self._sync: httpx.Client | None = None
        self._async: httpx.AsyncClient | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"HTTPClient({self.base!r})"

    @property
    def http(self) -> httpx.Client:
        if self._sync is None:
            self._sync = httpx.Client(base_url=self.base, headers=self._headers, timeout=self._timeout)
        return self._sync

    @property
    def ahttp(self) -> httpx.AsyncClient:
        """The async client of the running event loop (a client's pool belongs to the loop that made it: a
        script calling asyncio.run twice gets a fresh one the second time)."""
        loop = asyncio.get_running_loop()
        if self._async is None or self._async_loop is not loop:
            self._async = httpx.AsyncClient(base_url=self.base, headers=self._headers, timeout=self._timeout)
            self._async_loop = loop
        return self._async

    def _send(self, what: str, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self.http.request(method, path, **kw)
        except httpx.HTTPError as e:
            raise SovragError(f"{what}: sovrag server {self.base} did not answer: {e}") from e
        if r.status_code >= 400:
            raise _error(r, what)
        return r.json()

    async def _asend(self, what: str, method: str, path: str, **kw: Any) -> Any:
        try:
            r = await self.ahttp.request(method, path, **kw)
        except httpx.HTTPError as e:
            raise SovragError(f"{what}: sovrag server {self.base} did not answer: {e}") from e
        if r.status_code >= 400:
            raise _error(r, what)
        return r.json()

    def collections(self) -> list[str]:
        return [c["name"] for c in self._send("collections", "GET", "/v1/collections")["data"]]

    @staticmethod
    def _search_body(query: str, top_k: int, mode: str, filters: Mapping[str, Any] | None) -> dict[str, Any]:
        return {"query": query, "top_k": top_k, "mode": mode, "filters": _filters(filters), "raw": True}

    def search(self, collection: str, query: str, *, top_k: int = 5, mode: Mode = "hybrid",
               filters: Mapping[str, FilterValue] | None = None) -> list[Passage]:
        out = self._send(f"collection {collection!r}", "POST", f"/v1/collections/{_seg(collection)}/search",
                         json=self._search_body(query, top_k, mode, filters))
        return [_passage(d, collection) for d in out["data"]]

    async def asearch(self, collection: str, query: str, *, top_k: int = 5, mode: Mode = "hybrid",
                      filters: Mapping[str, FilterValue] | None = None) -> list[Passage]:
        out = await self._asend(f"collection {collection!r}", "POST",
                                f"/v1/collections/{_seg(collection)}/search",
                                json=self._search_body(query, top_k, mode, filters))
        return [_passage(d, collection) for d in out["data"]]

    @staticmethod
    def _chat_body(collection: str, question: str, opts: dict[str, Any], history: Sequence[Turn]) -> dict[str, Any]:
        messages = [{"role": t.role, "content": t.text} for t in history] + [{"role": "user", "content": question}]
        return {"model": f"rag:{collection}", "messages": messages, "sovrag": {**opts, "raw": True}}

    def ask(self, collection: str, question: str, *, top_k: int | None = None, mode: Mode | None = None,
            filters: Mapping[str, FilterValue] | None = None, history: Sequence[Turn] = ()) -> Answer:
        out = self._send(f"collection {collection!r}", "POST", "/v1/chat/completions",
                         json=self._chat_body(collection, question, _options(top_k, mode, filters), history))
        return Answer.from_dict(out["sovrag"])

    async def aask(self, collection: str, question: str, *, top_k: int | None = None, mode: Mode | None = None,
                   filters: Mapping[str, FilterValue] | None = None, history: Sequence[Turn] = ()) -> Answer:
        out = await self._asend(f"collection {collection!r}", "POST", "/v1/chat/completions",
                                json=self._chat_body(collection, question, _options(top_k, mode, filters), history))
        return Answer.from_dict(out["sovrag"])

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None
        self._async = None  # its connections belong to its event loop, which closes them with itself
        self._async_loop = None

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()
            self._async = None
        self.close()


# ------------------------------------------------------------------ a data directory, in this process
class LocalClient:
    """The CLI namespace of a data directory: the embedded store and the configured models in this process, or
    the server that owns the directory (over its Unix socket) while one runs. Collections stay open (the embedded
    store's lock is held) until `close()`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()  # one caller at a time on the embedded store and the LLM
        self._open: dict[str, Any] = {}
        self._llm: Any = None
        self._server: Any = None
        self._server_key: tuple[str, Any] | None = None

    def __repr__(self) -> str:
        return f"LocalClient({str(self.settings.data_dir)!r})"

    def _owner(self) -> Any:
        """The client of the server that owns the data directory (kept while that server runs), or None."""
        from sovrag.serve.localclient import ServerClient
        from sovrag.serve.owner import running_server

        info = running_server(self.settings.data_dir)
        key = None if info is None else (str(info.get("socket")), info.get("pid"))
        if key != self._server_key:
            if self._server is not None:
                self._server.close()
            self._server = None if key is None else ServerClient(*key)
            self._server_key = key
        return self._server

    def _collection(self, name: str) -> Any:
        from sovrag.collection import open_collection

        if name not in self._open:
            self._open[name] = open_collection(self.settings, name)
        return self._open[name]

    def collections(self) -> list[str]:
        server = self._owner()
        if server is not None:
            return [c["name"] for c in server.collections(None)]
        from sovrag.store import open_backend
        from sovrag.tenancy import split_store_name

        backend = open_backend(self.settings.store, self.settings.data_dir)
        try:
            return [n for n in backend.list() if split_store_name(n) is None]
        finally:
            backend.close()

    def search(self, collection: str, query: str, *, top_k: int = 5, mode: Mode = "hybrid",
               filters: Mapping[str, FilterValue] | None = None) -> list[Passage]:
        server = self._owner()
        if server is not None:
            rows = server.search({"collection": collection, "query": query, "top_k": top_k, "mode": mode,
                                  "filters": _filters(filters)})
            return [_passage(d, collection) for d in rows]
        from sovrag.retrieve import search

        with self._lock:
            hits = search(self._collection(collection), query, top_k=top_k, mode=mode, filters=_filters(filters))
        return [_passage({"rank": h.rank, "score": h.score, "id": h.chunk.id, **h.chunk.payload()}, collection)
                for h in hits]

    async def asearch(self, collection: str, query: str, *, top_k: int = 5, mode: Mode = "hybrid",
                      filters: Mapping[str, FilterValue] | None = None) -> list[Passage]:
        return await asyncio.to_thread(self.search, collection, query, top_k=top_k, mode=mode, filters=filters)

    def ask(self, collection: str, question: str, *, top_k: int | None = None, mode: Mode | None = None,
            filters: Mapping[str, FilterValue] | None = None, history: Sequence[Turn] = ()) -> Answer:
        opts = _options(top_k, mode, filters)
        server = self._owner()
        if server is not None:
            answer: Answer | None = None
            turns = [{"role": t.role, "text": t.text} for t in history]
            for item in server.ask({"collection": collection, "question": question, "history": turns, **opts}):
                if "answer" in item:
                    answer = Answer.from_dict(item["answer"])
            if answer is None:
                raise SovragError(f"collection {collection!r}: the server sent no answer")
            return answer
        from sovrag.answer import AnswerOptions, AnswerPipeline
        from sovrag.generate import create_llm

        with self._lock:
            col = self._collection(collection)
            if col.store.count() == 0:
                raise SovragError(f"collection {collection!r}: is empty; ingest documents into it first")
            if self._llm is None:
                self._llm = create_llm(self.settings)
            options = AnswerOptions.of(self.settings, **opts)
            return AnswerPipeline(col, self._llm, options).answer(question, history)

    async def aask(self, collection: str, question: str, *, top_k: int | None = None, mode: Mode | None = None,
                   filters: Mapping[str, FilterValue] | None = None, history: Sequence[Turn] = ()) -> Answer:
        return await asyncio.to_thread(self.ask, collection, question, top_k=top_k, mode=mode, filters=filters,
                                       history=history)

    def close(self) -> None:
        with self._lock:
            for col in self._open.values():
                col.close()
            self._open.clear()
            self._llm = None  # llama.cpp models stay loaded for the process (generate/llamacpp.py: load_llamacpp)
            if self._server is not None:
                self._server.close()
            self._server = self._server_key = None

    def __enter__(self) -> LocalClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------ answers as integrations return them
def answer_view(answer: Answer) -> dict[str, Any]:
    """A verified answer as plain data: the text, whether sovrag abstained and why, each sentence with whether
    the sources support it and the numbers of the sources that do, and the numbered sources."""
    return {
        "answer": answer.text,
        "abstained": answer.abstained,
        "abstain_reason": answer.abstain_reason,
        "sentences": [{"text": s.text, "supported": s.supported, "sources": [c.source for c in s.citations],
                       "evidence": [c.evidence for c in s.citations], "contradicted_by": list(s.contradicted_by)}
                      for s in answer.sentences],
        "sources": [source_view(s) for s in answer.sources],
    }


def source_view(source: Any) -> dict[str, Any]:
    c = source.chunk
    return {"number": source.number, "text": source.text, "source": Path(c.source).name if c.source else "",
            "title": c.title, "page": c.page, "headings": list(c.headings), "relevance": source.relevance,
            "chunk_id": c.id, "document_id": c.doc_id}
