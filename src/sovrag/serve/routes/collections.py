"""Collection routes: create, list, describe, delete, and hybrid search over a tenant's collection."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr

from sovrag.reranker import reranker_of
from sovrag.retrieve import search
from sovrag.serve.apierror import APIError
from sovrag.serve.context import ServerContext, get_ctx
from sovrag.serve.routes.auth import Tenant
from sovrag.serve.routes.limits import check_query
from sovrag.serve.sanitize import neutralize
from sovrag.serve.services.collections import public_doc_id
from sovrag.types import Chunk


def chunk_view(chunk: Chunk, raw: bool = False) -> dict[str, Any]:
    """A chunk as clients see it: file name instead of the server path, opaque document id, and active markup
    in its text and title neutralised unless `raw` (see sovrag.serve.sanitize)."""
    meta = {**chunk.metadata, "format": chunk.format}
    clean = (lambda t: t) if raw else neutralize
    return {"id": chunk.id, "document_id": public_doc_id(chunk.doc_id), "source": Path(chunk.source).name,
            "title": clean(chunk.title), "page": chunk.page, "headings": [clean(h) for h in chunk.headings],
            "chunk_index": chunk.index, "text": clean(chunk.text), "metadata": meta}


router = APIRouter(prefix="/v1", tags=["collections"])
Ctx = Annotated[ServerContext, Depends(get_ctx)]


class CollectionIn(BaseModel):
    name: StrictStr = Field(min_length=1, max_length=64)


FilterValue = StrictStr | StrictInt | list[StrictStr | StrictInt]


class SearchIn(BaseModel):
    query: StrictStr = Field(min_length=1, max_length=4000)
    top_k: StrictInt = Field(default=5, ge=1, le=100)
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    filters: dict[str, FilterValue] | None = None
    #: Passages and titles as stored, for clients that render text safely (default: active markup neutralised).
    raw: StrictBool = False
    #: Reorder hybrid search's best 20 with the trained reranker (scores become P(the chunk answers the query)).
    rerank: StrictBool = False


@router.post("/collections", status_code=201)
def create_collection(body: CollectionIn, me: Tenant, ctx: Ctx) -> dict[str, Any]:
    ctx.collections.create(me.tenant_id, body.name)
    return ctx.collections.describe(me.tenant_id, body.name)


@router.get("/collections")
def list_collections(me: Tenant, ctx: Ctx) -> dict[str, Any]:
    data = []
    for n in ctx.collections.names(me.tenant_id):
        try:
            data.append(ctx.collections.describe(me.tenant_id, n))
        except APIError as e:  # deleted between listing and describing
            if e.status != 404:
                raise
    return {"object": "list", "data": data}


@router.get("/collections/{name}")
def get_collection(name: str, me: Tenant, ctx: Ctx) -> dict[str, Any]:
    return ctx.collections.describe(me.tenant_id, name)


@router.delete("/collections/{name}")
def delete_collection(name: str, me: Tenant, ctx: Ctx) -> dict[str, Any]:
    ctx.collections.internal(me.tenant_id, name)
    if ctx.jobs.active(me.tenant_id, name):
        raise APIError(409, f"collection {name!r}: an ingestion job is queued or running; delete it when the job "
                       "is done", code="collection_busy")
    ctx.collections.drop(me.tenant_id, name)
    ctx.files.delete_collection(me.tenant_id, name)
    ctx.feedback.delete_collection(me.tenant_id, name)
    return {"object": "collection.deleted", "name": name, "deleted": True}


@router.post("/collections/{name}/search")
async def search_collection(name: str, body: SearchIn, me: Tenant, ctx: Ctx) -> dict[str, Any]:
    def run() -> list[dict[str, Any]]:
        with ctx.collections.use(me.tenant_id, name) as col:
            check_query(ctx, me, col.embedder, body.query, "query")
            hits = search(col, body.query, top_k=body.top_k, mode=body.mode, filters=body.filters,
                          reranker=reranker_of(ctx.settings) if body.rerank else None)
        return [{"rank": h.rank, "score": h.score, **chunk_view(h.chunk, body.raw)} for h in hits]

    t0 = time.perf_counter()
    data = await anyio.to_thread.run_sync(run)
    return {"object": "list", "collection": name, "query": body.query, "mode": body.mode, "data": data,
            "seconds": round(time.perf_counter() - t0, 4)}
