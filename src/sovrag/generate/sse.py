"""Folding OpenAI-style chat completion chunks into text deltas and one final Generation."""

from __future__ import annotations

from typing import Any

from sovrag.generate.base import Generation


class ChunkFolder:
    """Accumulates `chat.completion.chunk` dicts (llama.cpp callbacks and SSE lines share this shape)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.finish_reason = ""
        self.usage: dict[str, Any] = {}
        self.timings: dict[str, float] = {}

    def add(self, chunk: dict[str, Any]) -> str:
        """Fold one chunk in; returns the text it adds."""
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        if chunk.get("timings"):
            self.timings = chunk["timings"]
        delta = ""
        for choice in chunk.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                delta += piece
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        if delta:
            self.parts.append(delta)
        return delta

    def generation(self, seconds: float) -> Generation:
        return Generation(
            text="".join(self.parts),
            prompt_tokens=int(self.usage.get("prompt_tokens") or self.timings.get("prompt_n") or 0),
            completion_tokens=int(self.usage.get("completion_tokens") or self.timings.get("predicted_n") or 0),
            finish_reason=self.finish_reason,
            seconds=seconds,
            timings=dict(self.timings),
        )


def from_completion(body: dict[str, Any], seconds: float) -> Generation:
    """A non-streamed `chat.completion` body to a Generation; raises KeyError/TypeError if malformed."""
    choice = body["choices"][0]
    usage = body.get("usage") or {}
    return Generation(
        text=choice["message"].get("content") or "",
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        finish_reason=choice.get("finish_reason") or "",
        seconds=seconds,
        timings=dict(body.get("timings") or {}),
    )
