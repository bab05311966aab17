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
        self.logprobs: list[dict[str, float]] = []

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
            self.logprobs.extend(top_logprobs(choice))
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
            logprobs=self.logprobs,
        )


def top_logprobs(choice: dict[str, Any]) -> list[dict[str, float]]:
    """Per token of a choice, {token: log-probability} of its most likely alternatives (OpenAI's shape)."""
    out = []
    for item in ((choice.get("logprobs") or {}).get("content") or []):
        alts: dict[str, float] = {}
        for alt in item.get("top_logprobs") or [{"token": item.get("token", ""), "logprob": item.get("logprob")}]:
            if isinstance(alt, dict) and alt.get("logprob") is not None and alt.get("token") not in alts:
                alts[str(alt.get("token"))] = float(alt["logprob"])
        out.append(alts)
    return out


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
        logprobs=top_logprobs(choice),
    )
