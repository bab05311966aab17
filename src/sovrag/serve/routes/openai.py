"""OpenAI-compatible routes: /v1/models, /v1/chat/completions (RAG on `rag:<collection>`), /v1/embeddings.

Bodies and SSE chunks follow the OpenAI API's shapes so unmodified SDKs (openai, LangChain) work. RAG
answers carry sovrag's full Answer (sources, citations, abstention) in an extra top-level `sovrag`
field, which SDKs ignore.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import numpy as np
from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from sovrag.answer import AnswerOptions, AnswerPipeline
from sovrag.answer.followup import Turn
from sovrag.config import Settings
from sovrag.embed import create_embedder
from sovrag.errors import SovragError
from sovrag.generate import PROFILES, Generation, GenerationParams, Message
from sovrag.generate.shared import SharedLLM
from sovrag.serve.apierror import APIError, error_body, sovrag_error_to_api
from sovrag.serve.context import ServerContext, get_ctx
from sovrag.serve.routes.auth import Tenant
from sovrag.serve.routes.chat_request import ChatRequest, SovragChatOptions, generation_params, refuse_unsupported
from sovrag.serve.routes.limits import charge_work, check_query, token_count
from sovrag.serve.sanitize import StreamNeutralizer, neutralize, neutralize_answer
from sovrag.serve.services.collections import public_doc_id
from sovrag.serve.services.keys import Principal
from sovrag.serve.threads import iterate_in_thread
from sovrag.types import Answer, Context

log = logging.getLogger("sovrag.serve")
router = APIRouter(prefix="/v1", tags=["openai"])
Ctx = Annotated[ServerContext, Depends(get_ctx)]
RAG_PREFIX = "rag:"


def spec_names(given: str) -> list[str]:
    """Names a client may use for the LLM of this spec or profile; the first is the one /v1/models lists."""
    base, plus, adapter = given.partition("+lora:")
    spec = PROFILES.get(base, base) + plus + adapter
    scheme, _, rest = spec.partition(":")
    if scheme == "llamacpp":
        rest, plus, adapter = rest.partition("+lora:")
        short = Path(rest).stem if rest.endswith(".gguf") or "/" in rest else rest
        short += f"+lora:{Path(adapter).stem if '/' in adapter else adapter}" if plus else ""
    else:
        short = spec.rsplit("model=", 1)[-1] if "model=" in spec else spec
    return [short, spec, given]


def choose_llm(ctx: ServerContext, name: str) -> SharedLLM | None:
    """The LLM a client named (any of its names), or None."""
    for listed, shared in ctx.llms.items():
        if name == listed or name in ctx.llm_aliases.get(listed, ()):
            return shared
    return None


def embedder_model_names(settings: Settings) -> list[str]:
    spec = settings.embedder
    return [spec.partition(":")[2] if spec.startswith("onnx:") and "/" not in spec else spec, spec]


def _model(id_: str, kind: str) -> dict[str, Any]:
    """OpenAI's model object, and what it is here: a collection (`rag:`), an LLM, or the embedding model."""
    return {"id": id_, "object": "model", "created": 0, "owned_by": "sovrag", "kind": kind}


@router.get("/models")
def list_models(me: Tenant, ctx: Ctx) -> dict[str, Any]:
    rag = [_model(RAG_PREFIX + n, "collection") for n in ctx.collections.names(me.tenant_id)]
    s = ctx.settings
    return {"object": "list", "data": [*rag, *(_model(n, "llm") for n in ctx.llms),
                                       _model(embedder_model_names(s)[0], "embedding")]}


@router.get("/models/{model_id:path}")
def get_model(model_id: str, me: Tenant, ctx: Ctx) -> dict[str, Any]:
    for m in list_models(me, ctx)["data"]:
        if m["id"] == model_id:
            return m
    raise APIError(404, f"model {model_id!r}: does not exist", code="model_not_found", param="model")


# ------------------------------------------------------------------ chat
def public_answer(ans: Answer, raw: bool = False) -> dict[str, Any]:
    """Answer.to_dict() with file names and opaque document ids instead of server paths, and active markup
    neutralised unless `raw`.

    Each source's chunk also carries its whole text and index, so a client can show a citation's evidence
    sentence in the passage it comes from (the source's own `text` is only what the model was shown)."""
    d = ans.to_dict()
    for src, source in zip(d["sources"], ans.sources, strict=True):
        ch = src["chunk"]
        ch["source"] = Path(ch["source"]).name
        ch["doc_id"] = public_doc_id(ch["doc_id"])
        ch["text"] = source.chunk.text
        ch["chunk_index"] = source.chunk.index
    return d if raw else neutralize_answer(d)


class _Completion:
    """Builds chat.completion bodies and chat.completion.chunk SSE lines sharing one id."""

    def __init__(self, model: str, include_usage: bool = False) -> None:
        self.id = "chatcmpl-" + secrets.token_hex(12)
        self.created = int(time.time())
        self.model = model
        self.include_usage = include_usage

    @staticmethod
    def usage(prompt: int, completion: int) -> dict[str, int]:
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def body(self, text: str, finish: str, usage: dict[str, int], extra: dict[str, Any]) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                             "finish_reason": finish}],
                "usage": usage, **extra}

    def chunk(self, delta: dict[str, Any], finish: str | None = None, extra: dict[str, Any] | None = None,
              usage: dict[str, int] | None = None, choices: bool = True) -> str:
        out: dict[str, Any] = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                               "model": self.model,
                               "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
                               if choices else []}
        if self.include_usage:
            out["usage"] = usage
        return f"data: {json.dumps({**out, **(extra or {})}, ensure_ascii=False)}\n\n"


class _SSEResponse(StreamingResponse):
    """A StreamingResponse that always closes its event generator when the response ends.

    Starlette cancels the sending task when the client disconnects; if that lands while the generator waits at
    a `yield` (a slow client, send blocked), the generator is merely abandoned, keeping the LLM slot (and the
    model) busy until garbage collection. Closing it here frees them at once.
    """

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            close = getattr(self.body_iterator, "aclose", None)
            if close is not None:
                with anyio.CancelScope(shield=True):
                    await close()


def _sse(events: AsyncIterator[str]) -> StreamingResponse:
    return _SSEResponse(events, media_type="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _error_event(e: Exception) -> str:
    if isinstance(e, SovragError):
        api = sovrag_error_to_api(e)
    elif isinstance(e, APIError):
        api = e
    else:
        log.exception("unhandled error while streaming")
        api = APIError(500, "internal server error while streaming", code="internal_error")
    return f"data: {json.dumps(error_body(api.message, api.type, api.code))}\n\n"


@router.post("/chat/completions", response_model=None)
async def chat_completions(body: ChatRequest, me: Tenant, ctx: Ctx) -> dict[str, Any] | StreamingResponse:
    refuse_unsupported(body)
    params = generation_params(body, ctx)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    comp = _Completion(body.model, include_usage)
    opts = body.sovrag or SovragChatOptions()
    if body.model.startswith(RAG_PREFIX):
        name = body.model[len(RAG_PREFIX):]
        if opts.collection is not None and opts.collection != name:
            raise APIError(400, f"'sovrag.collection' {opts.collection!r} and model {body.model!r} name different "
                           "collections; give one of them", code="invalid_request", param="sovrag.collection")
        return await _rag(body, params, comp, me, ctx, name, _queue(_answering_llm(ctx, opts.llm)))
    llm = choose_llm(ctx, body.model)
    if llm is None:
        raise APIError(404, f"model {body.model!r}: does not exist; see GET /v1/models (collections are "
                       f"'{RAG_PREFIX}<name>')", code="model_not_found", param="model")
    if opts.llm is not None and choose_llm(ctx, opts.llm) is not llm:
        raise APIError(400, f"'sovrag.llm' {opts.llm!r} and model {body.model!r} name different LLMs; give one of "
                       "them", code="invalid_request", param="sovrag.llm")
    _queue(llm)
    if opts.collection is not None:
        return await _rag(body, params, comp, me, ctx, opts.collection, llm)
    messages = []
    for m in body.messages:
        if m.role == "tool":
            raise APIError(400, "messages: role 'tool' is not supported", code="unsupported_role", param="messages")
        messages.append(Message("system" if m.role == "developer" else m.role, m.text()))
    await anyio.to_thread.run_sync(llm.model)  # loaded on first use, off the event loop
    if not body.stream:
        gen = await anyio.to_thread.run_sync(llm.chat, messages, params)
        return comp.body(gen.text, gen.finish_reason or "stop", comp.usage(gen.prompt_tokens, gen.completion_tokens),
                         {})

    async def events() -> AsyncIterator[str]:
        gen: Generation | None = None
        try:
            yield comp.chunk({"role": "assistant", "content": ""})
            async with aclosing(iterate_in_thread(lambda: llm.stream(messages, params))) as stream:
                async for ev in stream:
                    if ev.done is not None:
                        gen = ev.done
                    elif ev.delta:
                        yield comp.chunk({"content": ev.delta})
            yield comp.chunk({}, finish=(gen.finish_reason if gen else "") or "stop")
            if include_usage and gen is not None:
                yield comp.chunk({}, usage=comp.usage(gen.prompt_tokens, gen.completion_tokens), choices=False)
        except Exception as e:
            yield _error_event(e)
        yield "data: [DONE]\n\n"

    return _sse(events())


def _answering_llm(ctx: ServerContext, name: str | None) -> SharedLLM:
    """The LLM a RAG answer is written by: `sovrag.llm` when given, else the default."""
    if name is None:
        return ctx.llm
    llm = choose_llm(ctx, name)
    if llm is None:
        raise APIError(404, f"'sovrag.llm' {name!r}: no such LLM here; see GET /v1/models", code="model_not_found",
                       param="sovrag.llm")
    return llm


def _queue(llm: SharedLLM) -> SharedLLM:
    """`llm`, unless its queue is full (503 with Retry-After)."""
    if llm.waiting >= llm.queue_max:
        raise APIError(503, f"the LLM queue is full ({llm.waiting} waiting); retry shortly", code="server_busy",
                       headers={"Retry-After": "5"})
    return llm


async def _rag(body: ChatRequest, params: GenerationParams, comp: _Completion, me: Principal,
               ctx: ServerContext, name: str, llm: SharedLLM) -> dict[str, Any] | StreamingResponse:
    """A RAG answer through the question journey: retrieval while the collection is in use, then
    `AnswerPipeline.stream` on that Context (generation queued by the SharedLLM, then verification)."""
    tenant_id = me.tenant_id
    raw = bool(body.sovrag and body.sovrag.raw)
    last_user = max((i for i, m in enumerate(body.messages) if m.role == "user"), default=-1)
    question = body.messages[last_user].text() if last_user >= 0 else ""
    # Earlier user/assistant turns make a follow-up retrievable ("and for part-timers?"); system text is ignored:
    # sovrag writes the RAG prompt itself.
    history = [Turn(m.role, m.text()) for m in body.messages[:last_user] if m.role in ("user", "assistant")]
    if not question.strip():
        raise APIError(400, "messages: no user message with text to answer", code="invalid_request",
                       param="messages")
    try:  # an unknown collection is a 404 before any model is loaded
        await anyio.to_thread.run_sync(ctx.collections.check, tenant_id, name)
    except APIError as e:
        raise APIError(404, f"model {body.model!r}: no collection {name!r}; see GET /v1/models",
                       code="model_not_found", param="model") from e
    await anyio.to_thread.run_sync(llm.model)
    chosen = body.sovrag or SovragChatOptions()
    retrieval = {k: v for k, v in (("top_k", chosen.top_k), ("mode", chosen.mode), ("filters", chosen.filters),
                                   ("compress", chosen.compress)) if v is not None}
    opts = AnswerOptions.of(ctx.settings, max_tokens=params.max_tokens, params=params, **retrieval)

    def retrieve() -> tuple[AnswerPipeline, Context]:
        # Only retrieval reads the collection; the rest of the journey needs its embedder alone, so a collection
        # deleted meanwhile does not break an answer already being written.
        try:
            with ctx.collections.use(tenant_id, name) as col:
                check_query(ctx, me, col.embedder, question, "messages")
                pipeline = AnswerPipeline(col, llm, opts)
                return pipeline, pipeline.retrieve(question, history)
        except APIError as e:
            if e.status != 404:
                raise
            raise APIError(404, f"model {body.model!r}: no collection {name!r}; see GET /v1/models",
                           code="model_not_found", param="model") from e

    pipeline, context = await anyio.to_thread.run_sync(retrieve)
    include_usage = comp.include_usage

    def usage(ans: Answer) -> dict[str, int]:
        return comp.usage(ans.prompt_tokens, ans.completion_tokens)

    def finish_reason(ans: Answer) -> str:
        return ans.finish_reason or "stop"

    if not body.stream:
        ans = await anyio.to_thread.run_sync(pipeline.answer, question, history, context)
        ctx.metrics.observe_answer(ans)
        return comp.body(ans.text if raw else neutralize(ans.text), finish_reason(ans), usage(ans),
                         {"sovrag": public_answer(ans, raw)})

    async def events() -> AsyncIterator[str]:
        safe = StreamNeutralizer(raw)
        ans: Answer | None = None
        streamed = False
        try:
            yield comp.chunk({"role": "assistant", "content": ""})
            journey = iterate_in_thread(lambda: pipeline.stream(question, history, context))
            async with aclosing(journey) as items:
                async for item in items:
                    if isinstance(item, Answer):
                        ans = item
                    elif piece := safe.feed(item):
                        streamed = True
                        yield comp.chunk({"content": piece})
            if tail := safe.flush():
                streamed = True
                yield comp.chunk({"content": tail})
            assert ans is not None
            ctx.metrics.observe_answer(ans)
            if not streamed:  # nothing was generated (an abstention before the model): the answer is the text
                yield comp.chunk({"content": ans.text if raw else neutralize(ans.text)})
            yield comp.chunk({}, finish=finish_reason(ans), extra={"sovrag": public_answer(ans, raw)})
            if include_usage:
                yield comp.chunk({}, usage=usage(ans), choices=False)
        except Exception as e:
            yield _error_event(e)
        yield "data: [DONE]\n\n"

    return _sse(events())


# ------------------------------------------------------------------ embeddings
class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: StrictStr = Field(min_length=1)
    input: StrictStr | list[StrictStr] | list[StrictInt] | list[list[StrictInt]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: StrictInt | None = Field(default=None, ge=1)


@router.post("/embeddings")
async def embeddings(body: EmbeddingsRequest, me: Tenant, ctx: Ctx) -> dict[str, Any]:
    s = ctx.settings
    if body.model not in embedder_model_names(s):
        raise APIError(404, f"model {body.model!r}: not an embedding model here (use "
                       f"{embedder_model_names(s)[0]!r})", code="model_not_found", param="model")
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise APIError(400, "'input': give a non-empty string or a non-empty list of non-empty strings "
                       "(token arrays are not supported)", code="invalid_request", param="input")
    if len(texts) > ctx.options.embeddings_max_inputs:
        raise APIError(400, f"'input': {len(texts)} items, over the limit of {ctx.options.embeddings_max_inputs}",
                       code="invalid_request", param="input")

    def run() -> tuple[np.ndarray, int]:
        emb = create_embedder(s)
        if body.dimensions is not None and body.dimensions != emb.dim:
            raise APIError(400, f"'dimensions': {body.dimensions} is not supported; {emb.name} gives {emb.dim}",
                           code="invalid_request", param="dimensions")
        per_input = [token_count(emb, t) for t in texts]
        opts = ctx.options
        for i, n in enumerate(per_input):
            if n > opts.embeddings_max_input_tokens:
                raise APIError(413, f"'input'[{i}]: {n} tokens, over the limit of {opts.embeddings_max_input_tokens} "
                               "per input (embeddings_max_input_tokens); split the text", code="input_too_large",
                               param="input")
        tokens = sum(per_input)
        if tokens > opts.embeddings_max_request_tokens:
            raise APIError(413, f"'input': {tokens} tokens in all, over the limit of "
                           f"{opts.embeddings_max_request_tokens} per request (embeddings_max_request_tokens); send "
                           "fewer inputs per request", code="input_too_large", param="input")
        charge_work(ctx, me, tokens)
        return emb.embed(texts), tokens  # type: ignore[arg-type]

    vectors, tokens = await anyio.to_thread.run_sync(run)
    data = []
    for i, v in enumerate(vectors):
        if body.encoding_format == "base64":
            value: Any = base64.b64encode(np.asarray(v, dtype="<f4").tobytes()).decode()
        else:
            value = [float(x) for x in v]
        data.append({"object": "embedding", "index": i, "embedding": value})
    return {"object": "list", "data": data, "model": body.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
