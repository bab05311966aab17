"""LlamaIndex: `SovragRetriever` (a `BaseRetriever`, sync and async, returning `NodeWithScore`) and
`SovragQueryEngine` (sovrag's verified answer as a `Response` whose source nodes are the cited sources).

    from sovrag.integrations.llama_index import SovragRetriever
    retriever = SovragRetriever("docs", url="http://localhost:8000", api_key="sk-sovrag-...")
    nodes = retriever.retrieve("How many vacation days do new employees get?")

Without `url` they run on this machine's data directory (the embedded store, or the server that owns it).
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.response.schema import Response
from llama_index.core.query_engine import CustomQueryEngine
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from pydantic import Field, PrivateAttr

from sovrag.integrations.client import Client, Mode, Passage, answer_view, connect


def to_node(p: Passage) -> NodeWithScore:
    meta = p.describe()
    score = meta.pop("score")
    node = TextNode(text=p.text, id_=p.chunk_id or None, metadata=meta,
                    excluded_embed_metadata_keys=list(meta), excluded_llm_metadata_keys=[
                        k for k in meta if k not in ("source", "title", "page", "headings")])
    return NodeWithScore(node=node, score=score)


class SovragRetriever(BaseRetriever):
    """sovrag's hybrid (or dense / BM25) search over one collection."""

    def __init__(self, collection: str, *, url: str | None = None, api_key: str | None = None,
                 data_dir: str | None = None, top_k: int = 5, mode: Mode = "hybrid",
                 filters: dict[str, Any] | None = None, client: Client | None = None, **kwargs: Any) -> None:
        self.collection = collection
        self.top_k, self.mode, self.filters = top_k, mode, filters
        self.client = client or connect(url, api_key=api_key, data_dir=data_dir)
        super().__init__(**kwargs)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.client.search(self.collection, query_bundle.query_str, top_k=self.top_k, mode=self.mode,
                                  filters=self.filters)
        return [to_node(p) for p in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = await self.client.asearch(self.collection, query_bundle.query_str, top_k=self.top_k, mode=self.mode,
                                         filters=self.filters)
        return [to_node(p) for p in hits]


class SovragQueryEngine(CustomQueryEngine):
    """sovrag's grounded answer: every sentence verified against the sources, abstention when they do not cover
    the question. `response.source_nodes` are the numbered sources (`metadata["number"]` = the [n]);
    `response.metadata` has `abstained`, `abstain_reason` and `sentences` (text, supported, cited sources)."""

    collection: str
    url: str | None = None
    api_key: str | None = Field(default=None, repr=False)
    data_dir: str | None = None
    top_k: int | None = None
    mode: Mode | None = None
    filters: dict[str, Any] | None = None
    client: Any = Field(default=None, exclude=True)
    _client: Client = PrivateAttr()

    def model_post_init(self, __context: Any) -> None:
        self._client = self.client or connect(self.url, api_key=self.api_key, data_dir=self.data_dir)

    def _options(self) -> dict[str, Any]:
        return {"top_k": self.top_k, "mode": self.mode, "filters": self.filters}

    @staticmethod
    def _response(answer: Any) -> Response:
        view = answer_view(answer)
        nodes = []
        for s in view.pop("sources"):
            text, relevance = s.pop("text"), s["relevance"]
            nodes.append(NodeWithScore(node=TextNode(text=text, id_=s["chunk_id"] or None, metadata=s),
                                       score=relevance))
        return Response(response=view.pop("answer"), source_nodes=nodes, metadata=view)

    def custom_query(self, query_str: str) -> Response:
        return self._response(self._client.ask(self.collection, query_str, **self._options()))

    async def acustom_query(self, query_str: str) -> Response:
        return self._response(await self._client.aask(self.collection, query_str, **self._options()))
