"""LangChain: `SovragRetriever` (a `BaseRetriever`, sync and async) and `SovragAnswerer` (a Runnable that
returns sovrag's verified answer with its cited sources as Documents).

    from sovrag.integrations.langchain import SovragRetriever
    retriever = SovragRetriever(collection="docs", url="http://localhost:8000", api_key="sk-sovrag-...")
    docs = retriever.invoke("How many vacation days do new employees get?")

Without `url` they run on this machine's data directory (the embedded store, or the server that owns it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr

from sovrag.answer.followup import Turn
from sovrag.integrations.client import Client, Mode, Passage, answer_view, connect


def _client(url: str | None, api_key: SecretStr | None, data_dir: str | None) -> Client:
    return connect(url, api_key=api_key.get_secret_value() if api_key else None, data_dir=data_dir)


def to_document(p: Passage) -> Document:
    return Document(page_content=p.text, metadata=p.describe(), id=p.chunk_id or None)


class SovragRetriever(BaseRetriever):
    """sovrag's hybrid (or dense / BM25) search over one collection, as LangChain Documents whose metadata holds
    source, title, page, headings, score, rank, document and chunk ids and the chunk's own metadata."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    collection: str
    url: str | None = None  #: a sovrag server (else: this machine's data directory)
    api_key: SecretStr | None = None  #: the tenant key for `url` (else $SOVRAG_API_KEY)
    data_dir: str | None = None
    top_k: int = Field(default=5, ge=1, le=100)
    mode: Mode = "hybrid"
    filters: dict[str, Any] | None = None
    client: Any = Field(default=None, exclude=True)  #: a ready sovrag.integrations.client.Client, if you have one
    _client: Client = PrivateAttr()

    def model_post_init(self, __context: Any) -> None:
        self._client = self.client or _client(self.url, self.api_key, self.data_dir)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        hits = self._client.search(self.collection, query, top_k=self.top_k, mode=self.mode, filters=self.filters)
        return [to_document(p) for p in hits]

    async def _aget_relevant_documents(self, query: str, *,
                                       run_manager: AsyncCallbackManagerForRetrieverRun) -> list[Document]:
        hits = await self._client.asearch(self.collection, query, top_k=self.top_k, mode=self.mode,
                                          filters=self.filters)
        return [to_document(p) for p in hits]


def _question(value: str | Mapping[str, Any]) -> tuple[str, list[Turn]]:
    if isinstance(value, str):
        return value, []
    if isinstance(value, Mapping):
        q = value.get("question", value.get("input"))
        if isinstance(q, str):
            history = [Turn(str(m["role"]), str(m["content"])) for m in value.get("history", ())]
            return q, history
    raise TypeError(f"SovragAnswerer: input must be a question (str) or a dict with 'question'; got {value!r:.80}")


class SovragAnswerer(Runnable[Any, dict[str, Any]]):
    """sovrag's grounded answer: every sentence verified against the sources, abstention when they do not cover
    the question. Input: the question, or {"question": ..., "history": [{"role", "content"}, ...]}. Output: a
    dict with `answer`, `abstained`, `abstain_reason`, `sentences` (text, supported, cited source numbers,
    evidence) and `source_documents` (the numbered sources as Documents, `metadata["number"]` = the [n])."""

    def __init__(self, collection: str, *, url: str | None = None, api_key: str | None = None,
                 data_dir: str | None = None, top_k: int | None = None, mode: Mode | None = None,
                 filters: dict[str, Any] | None = None, client: Client | None = None) -> None:
        self.collection = collection
        self.options: dict[str, Any] = {"top_k": top_k, "mode": mode, "filters": filters}
        self.client = client or connect(url, api_key=api_key, data_dir=data_dir)

    @staticmethod
    def _view(answer: Any) -> dict[str, Any]:
        view = answer_view(answer)
        view["source_documents"] = [Document(page_content=s.pop("text"), metadata=s) for s in view.pop("sources")]
        return view

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        question, history = _question(input)
        return self._call_with_config(
            lambda q: self._view(self.client.ask(self.collection, q, history=history, **self.options)),
            question, config, run_type="chain")

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> dict[str, Any]:
        question, history = _question(input)

        async def run(q: str) -> dict[str, Any]:
            return self._view(await self.client.aask(self.collection, q, history=history, **self.options))

        return await self._acall_with_config(run, question, config, run_type="chain")
