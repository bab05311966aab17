"""The LLM protocol: chat messages in, text (whole or streamed) out, with token counts and timings."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class GenerationParams:
    max_tokens: int = 256
    temperature: float = 0.0
    seed: int = 42
    stop: tuple[str, ...] = ()
    #: Constrain the output to JSON matching this schema (llama.cpp grammar / OpenAI json_schema).
    json_schema: dict[str, Any] | None = None
    #: Backend-specific request fields passed through as they are (e.g. llama.cpp's cache_prompt).
    extra: dict[str, Any] = field(default_factory=dict)
    #: Return the log-probabilities of this many most likely tokens at each generated position (0 = none).
    top_logprobs: int = 0

    def request_fields(self) -> dict[str, Any]:
        body: dict[str, Any] = {"max_tokens": self.max_tokens, "temperature": self.temperature, "seed": self.seed,
                                **self.extra}
        if self.top_logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = self.top_logprobs
        if self.stop:
            body["stop"] = list(self.stop)
        if self.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": self.json_schema, "strict": True},
            }
        return body


@dataclass
class Generation:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""
    seconds: float = 0.0
    #: Engine-reported timings where the backend has them (llama.cpp: prompt_ms, predicted_ms, ...).
    timings: dict[str, float] = field(default_factory=dict)
    #: Per generated token, the most likely tokens and their log-probabilities (when asked: top_logprobs).
    logprobs: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class StreamEvent:
    """A piece of streamed text; the last event carries the finished Generation instead."""

    delta: str = ""
    done: Generation | None = None


class LLM(Protocol):
    name: str

    @property
    def context_tokens(self) -> int:
        """Tokens of context one request may use (prompt + completion)."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def chat(self, messages: Sequence[Message], params: GenerationParams | None = None) -> Generation: ...

    def stream(self, messages: Sequence[Message], params: GenerationParams | None = None) -> Iterator[StreamEvent]:
        ...
