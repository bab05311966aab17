"""The chat completion request as sovrag reads it: OpenAI's fields, sovrag's own `sovrag` options, and the
refusal of every OpenAI field sovrag does not honour (named, never silently ignored)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from sovrag.generate import GenerationParams
from sovrag.serve.apierror import APIError
from sovrag.serve.context import ServerContext


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: StrictStr | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        parts = []
        for p in self.content:
            if p.get("type") != "text" or not isinstance(p.get("text"), str):
                raise APIError(400, f"messages: content part of type {p.get('type')!r} is not supported; "
                               "send text", code="unsupported_content", param="messages")
            parts.append(p["text"])
        return "\n".join(parts)


class StreamOptions(BaseModel):
    include_usage: StrictBool = False


FilterValue = StrictStr | StrictInt | list[StrictStr | StrictInt]


class SovragChatOptions(BaseModel):
    """sovrag's own request options, sent as `"sovrag": {...}` (`extra_body` in the openai SDK)."""

    model_config = ConfigDict(extra="forbid")
    #: Send document text, titles and answers as they are (for clients that render text safely), instead of
    #: with active markup neutralised (see sovrag.serve.sanitize).
    raw: StrictBool = False
    #: Retrieval for a `rag:` model: passages the answer may use, search mode, metadata filters (as in
    #: POST /v1/collections/{name}/search), and whether to compress them to the question's sentences.
    top_k: StrictInt | None = Field(default=None, ge=1, le=50)
    mode: Literal["hybrid", "dense", "bm25"] | None = None
    filters: dict[str, FilterValue] | None = None
    compress: StrictBool | None = None
    #: The collection to answer from, for a client that can only name the LLM as its model (a plain model name
    #: with this is the same as `rag:<collection>`).
    collection: StrictStr | None = Field(default=None, min_length=1, max_length=64)
    #: Which LLM writes a RAG answer, by a name GET /v1/models lists (when the server offers several).
    llm: StrictStr | None = Field(default=None, min_length=1, max_length=300)


#: OpenAI request fields sovrag does not honour. Accepting and ignoring them would make a client believe it got
#: tool calls, JSON mode or sampling it did not get, so each is refused by name unless it asks for the default.
UNSUPPORTED: dict[str, Any] = {
    "tools": None, "tool_choice": None, "functions": None, "function_call": None, "parallel_tool_calls": None,
    "response_format": None, "logprobs": False, "top_logprobs": None, "logit_bias": None, "audio": None,
    "modalities": None, "prediction": None, "top_p": 1, "presence_penalty": 0, "frequency_penalty": 0,
    "web_search_options": None, "reasoning_effort": None, "service_tier": None,
}
#: Fields clients send that change nothing an answer depends on (an end-user id, storage hints).
IGNORED = ("user", "store", "metadata")


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # checked by `refuse_unsupported`, so the error names the field
    model: StrictStr = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: StrictBool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: StrictInt | None = Field(default=None, ge=1)
    max_completion_tokens: StrictInt | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    seed: StrictInt | None = None
    stop: StrictStr | list[StrictStr] | None = None
    n: StrictInt | None = Field(default=None, ge=1, le=1)
    sovrag: SovragChatOptions | None = None


def refuse_unsupported(body: ChatRequest) -> None:
    """400 naming the first field sovrag would otherwise silently ignore."""
    for name, value in (body.model_extra or {}).items():
        if name in IGNORED:
            continue
        if name in UNSUPPORTED:
            if value is None or value == UNSUPPORTED[name] or value == []:
                continue
            raise APIError(400, f"'{name}': not supported by sovrag (it would be ignored, and the answer would not "
                           "be what you asked for); remove it", code="unsupported_parameter", param=name)
        raise APIError(400, f"'{name}': unknown or unsupported request field; remove it (sovrag's own options go "
                       "in 'sovrag')", code="unsupported_parameter", param=name)


def generation_params(body: ChatRequest, ctx: ServerContext) -> GenerationParams:
    max_tokens = body.max_completion_tokens or body.max_tokens or ctx.options.default_max_tokens
    if max_tokens > ctx.options.max_tokens_limit:
        raise APIError(400, f"'max_tokens': {max_tokens} is over this server's limit of "
                       f"{ctx.options.max_tokens_limit}", code="invalid_request", param="max_tokens")
    stop = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    return GenerationParams(max_tokens=max_tokens, temperature=body.temperature or 0.0,
                            seed=body.seed if body.seed is not None else 42, stop=stop)
