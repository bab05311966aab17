"""Answer feedback routes: rate an answer (up / down, optional comment), change or delete the rating, list a
collection's feedback, and export it as a `sovrag eval` dataset (JSONL)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from sovrag.serve.apierror import APIError
from sovrag.serve.context import ServerContext, get_ctx
from sovrag.serve.routes.auth import Tenant

router = APIRouter(prefix="/v1", tags=["feedback"])
Ctx = Annotated[ServerContext, Depends(get_ctx)]
Rating = Literal["up", "down"]


class CitedSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: StrictInt = Field(ge=1)
    source: StrictStr = Field(max_length=1000)
    text: StrictStr = Field(default="", max_length=8000)


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    collection: StrictStr = Field(min_length=1, max_length=64)
    question: StrictStr = Field(min_length=1, max_length=20_000)
    answer: StrictStr = Field(max_length=20_000)
    rating: Rating
    comment: StrictStr = Field(default="", max_length=2000)
    #: the answer's cited sources (what a liked answer's reference contexts become)
    sources: list[CitedSource] = Field(default=[], max_length=20)
    #: the chat completion's id, to tie the rating to the request's logs
    answer_id: StrictStr = Field(default="", max_length=100)


class FeedbackPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rating: Rating | None = None
    comment: StrictStr | None = Field(default=None, max_length=2000)


@router.post("/feedback", status_code=201)
def add_feedback(body: FeedbackIn, me: Tenant, ctx: Ctx) -> dict[str, Any]:
    if not body.question.strip():
        raise APIError(400, "'question': empty", code="invalid_request", param="question")
    ctx.collections.check(me.tenant_id, body.collection)
    return ctx.feedback.add(me.tenant_id, me.key_id, body.collection, body.question, body.answer, body.rating,
                            body.comment, [s.model_dump() for s in body.sources], body.answer_id)


@router.patch("/feedback/{feedback_id}")
def update_feedback(feedback_id: str, body: FeedbackPatch, me: Tenant, ctx: Ctx) -> dict[str, Any]:
    return ctx.feedback.update(me.tenant_id, feedback_id, body.rating, body.comment)


@router.delete("/feedback/{feedback_id}")
def delete_feedback(feedback_id: str, me: Tenant, ctx: Ctx) -> dict[str, Any]:
    ctx.feedback.delete(me.tenant_id, feedback_id)
    return {"object": "feedback.deleted", "id": feedback_id, "deleted": True}


@router.get("/feedback")
def list_feedback(me: Tenant, ctx: Ctx, collection: str | None = None, rating: Rating | None = None,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """The tenant's feedback, newest first (one collection's with `collection`)."""
    return {"object": "list", "data": ctx.feedback.list(me.tenant_id, collection, rating, limit)}


@router.get("/feedback/export", response_class=StreamingResponse, responses={200: {
    "description": "JSONL, one sovrag eval dataset line per rating",
    "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}})
async def export_feedback(me: Tenant, ctx: Ctx, collection: str, rating: Rating | None = None) -> StreamingResponse:
    """A collection's feedback as a `sovrag eval` dataset, one JSON object per line: liked answers as references
    with their cited passages, disliked ones as questions with what they got."""
    await anyio.to_thread.run_sync(ctx.collections.check, me.tenant_id, collection)
    lines = await anyio.to_thread.run_sync(lambda: list(ctx.feedback.export(me.tenant_id, collection, rating)))
    return StreamingResponse(iter(lines), media_type="application/x-ndjson", headers={
        "Content-Disposition": f'attachment; filename="feedback-{collection}.jsonl"'})
