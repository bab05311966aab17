"""The owner's routes: the CLI's ingest, search, ask, eval and collections, through the server that owns the data
directory (`sovrag.serve.owner`). Reached only over the owner's Unix socket; over TCP they do not exist (404).

Collections are named as on the command line: a plain name is a CLI collection, `tenant` (a tenant's name)
reaches that tenant's collection of that name. They are opened through the server's shared collection
cache, so a collection a tenant is using is the same open handle, never a second one.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr

from sovrag import tenancy
from sovrag.answer import AnswerOptions, AnswerPipeline
from sovrag.answer.followup import Turn
from sovrag.ingest.sync import ingest
from sovrag.reranker import reranker_of
from sovrag.retrieve import search
from sovrag.serve.apierror import APIError
from sovrag.serve.context import ServerContext, get_ctx
from sovrag.serve.owner import is_local
from sovrag.serve.threads import iterate_in_thread
from sovrag.types import Answer


def require_local(request: Request) -> None:
    if not is_local(request.scope):
        raise APIError(404, f"route {request.method} {request.url.path}: not found")


router = APIRouter(prefix="/local", tags=["local"], include_in_schema=False, dependencies=[Depends(require_local)])
Ctx = Annotated[ServerContext, Depends(get_ctx)]
FilterValue = StrictStr | StrictInt | list[StrictStr | StrictInt]


def _tenant_id(ctx: ServerContext, tenant: str) -> int:
    for t in ctx.keys.tenants():
        if t["name"] == tenant:
            return int(t["id"])
    raise APIError(404, f"tenant {tenant!r}: not found", code="tenant_not_found")


def _store_name(ctx: ServerContext, collection: str, tenant: str | None) -> str:
    return collection if tenant is None else tenancy.store_name(_tenant_id(ctx, tenant), collection)


class Target(BaseModel):
    collection: StrictStr = Field(min_length=1)
    tenant: StrictStr | None = None


class IngestIn(Target):
    paths: list[StrictStr] = Field(min_length=1)
    include: list[StrictStr] = []
    exclude: list[StrictStr] = []
    sync: StrictBool = False
    chunk_mode: StrictStr | None = None
    chunk_tokens: StrictInt | None = None
    document_max_tokens: StrictInt | None = None


class SearchIn(Target):
    query: StrictStr = Field(min_length=1)
    top_k: StrictInt = Field(default=5, ge=1, le=1000)
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    filters: dict[str, FilterValue] | None = None
    rerank: StrictBool = False


class HistoryTurn(BaseModel):
    role: Literal["user", "assistant"]
    text: StrictStr


class AskIn(Target):
    question: StrictStr = Field(min_length=1)
    #: earlier turns of a conversation (`sovrag chat`), oldest first
    history: list[HistoryTurn] = []
    top_k: StrictInt = Field(default=6, ge=1, le=50)
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    filters: dict[str, FilterValue] | None = None
    compress: StrictBool = True
    max_tokens: StrictInt = Field(default=256, ge=1, le=4096)


class EvalIn(BaseModel):
    store: StrictStr = Field(min_length=1)  # the collection's store name (the CLI resolves --tenant)
    dataset: StrictStr = Field(min_length=1)
    limit: StrictInt | None = None
    metrics: list[StrictStr] = Field(min_length=1)
    k: StrictInt = 10
    top_k: StrictInt = 6
    strictness: StrictInt = 3
    max_tokens: StrictInt = 256
    judge: StrictBool = True
    out_dir: StrictStr | None = None


@router.get("/collections")
def list_collections(ctx: Ctx, tenant: str | None = None) -> dict[str, Any]:
    """The collections of the CLI namespace (or of one tenant), as `sovrag collections list` shows them."""
    prefix = tenancy.prefix(_tenant_id(ctx, tenant)) if tenant else None

    def mine(name: str) -> bool:
        return name.startswith(prefix) if prefix else tenancy.split_store_name(name) is None

    return {"data": [{"name": name[len(prefix):] if prefix else name, "meta": meta, "chunks": count}
                     for name, meta, count in ctx.collections.all_stores(mine)]}


@router.delete("/collections/{name}")
def delete_collection(name: str, ctx: Ctx, tenant: str | None = None) -> dict[str, Any]:
    if tenant is None:
        ctx.collections.drop_store(name)
    else:  # as the tenant's own DELETE does: its uploaded files and their records go too
        tid = _tenant_id(ctx, tenant)
        if ctx.jobs.active(tid, name):
            raise APIError(409, f"collection {name!r}: an ingestion job is queued or running; delete it when the job "
                           "is done", code="collection_busy")
        ctx.collections.drop(tid, name)
        ctx.files.delete_collection(tid, name)
        ctx.feedback.delete_collection(tid, name)
    return {"deleted": name}


@router.post("/ingest")
def ingest_paths(body: IngestIn, ctx: Ctx) -> dict[str, Any]:
    """Ingest local paths (the owner's files, read by the server) exactly as `sovrag ingest` would."""
    s = ctx.settings.with_overrides(chunk_mode=body.chunk_mode, chunk_tokens=body.chunk_tokens,
                                    document_max_tokens=body.document_max_tokens)
    with ctx.collections.use_store(_store_name(ctx, body.collection, body.tenant), create=True) as col:
        report = ingest(s, col, [Path(p) for p in body.paths], body.include, body.exclude, body.sync)
    return report.to_dict()


@router.post("/search")
def search_collection(body: SearchIn, ctx: Ctx) -> dict[str, Any]:
    with ctx.collections.use_store(_store_name(ctx, body.collection, body.tenant)) as col:
        hits = search(col, body.query, top_k=body.top_k, mode=body.mode, filters=body.filters,
                      reranker=reranker_of(ctx.settings) if body.rerank else None)
    return {"data": [{"rank": h.rank, "score": h.score, "id": h.chunk.id, **h.chunk.payload()} for h in hits]}


@router.post("/ask")
async def ask(body: AskIn, ctx: Ctx) -> StreamingResponse:
    """The question journey, streamed as JSON lines: {"delta": text}..., then {"answer": Answer.to_dict()}."""
    await anyio.to_thread.run_sync(ctx.llm.model)
    opts = AnswerOptions.of(ctx.settings, top_k=body.top_k, mode=body.mode, filters=body.filters,
                            compress=body.compress, max_tokens=body.max_tokens)
    store = _store_name(ctx, body.collection, body.tenant)
    history = [Turn(t.role, t.text) for t in body.history]

    def retrieve() -> tuple[AnswerPipeline, Any]:
        with ctx.collections.use_store(store) as col:
            if col.store.count() == 0:
                raise APIError(400, f"collection {body.collection!r}: is empty; ingest documents into it first")
            pipeline = AnswerPipeline(col, ctx.llm, opts)
            return pipeline, pipeline.retrieve(body.question, history)

    pipeline, context = await anyio.to_thread.run_sync(retrieve)

    async def lines() -> AsyncIterator[str]:
        try:
            journey = iterate_in_thread(lambda: pipeline.stream(body.question, history, context=context))
            async with aclosing(journey) as items:
                async for item in items:
                    if isinstance(item, Answer):
                        ctx.metrics.observe_answer(item)
                        yield json.dumps({"answer": item.to_dict()}) + "\n"
                    else:
                        yield json.dumps({"delta": item}) + "\n"
        except Exception as e:  # the CLI prints it as its one-line error
            yield json.dumps({"error": str(e)}) + "\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.post("/eval")
async def evaluate(body: EvalIn, ctx: Ctx) -> dict[str, Any]:
    """`sovrag eval` for the owner's CLI: the server's model answers (and judges), the run is saved as usual."""
    from sovrag.evaluate import session

    def run() -> dict[str, Any]:
        ds = session.load(Path(body.dataset), body.limit)
        ctx.llm.model()  # loaded on first use
        judge = ctx.llm if body.judge and session.wants_judge(None, body.metrics) else None
        with ctx.collections.use_store(body.store) as col:
            return session.run(ctx.settings, col, ctx.llm, judge, ds, Path(body.dataset), metrics=body.metrics,
                               k=body.k, top_k=body.top_k, strictness=body.strictness, max_tokens=body.max_tokens,
                               out_dir=Path(body.out_dir) if body.out_dir else None)

    return await anyio.to_thread.run_sync(run)
