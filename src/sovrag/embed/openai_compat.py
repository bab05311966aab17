"""Embeddings from any OpenAI-compatible `/v1/embeddings` host (vLLM, Ollama, llama.cpp server, ...)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import httpx
import numpy as np

from sovrag.embed.base import normalize
from sovrag.errors import EmbedError


class OpenAIEmbedder:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        batch_size: int = 64,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.5,
        count_tokens: Callable[[str], int] | None = None,
    ) -> None:
        """`count_tokens`: a local tokenizer to budget text with (a host does not say how it tokenizes);
        without one, about four bytes a token."""
        self._count = count_tokens
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"openai:{model}"
        self.batch_size = batch_size
        self.retries = retries
        self.backoff = backoff
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(timeout=timeout, headers=headers)
        self._dim: int | None = None

    def count_tokens(self, text: str) -> int:
        return self._count(text) if self._count is not None else len(text.encode()) // 4 + 1

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.embed(["dimension probe"]).shape[1])
        return self._dim

    def _post(self, batch: list[str]) -> list[list[float]]:
        url = f"{self.base_url}/embeddings"
        last = ""
        for attempt in range(self.retries + 1):
            try:
                r = self.client.post(url, json={"model": self.model, "input": batch})
            except httpx.HTTPError as e:
                last = f"{type(e).__name__}: {e}"
            else:
                if r.status_code < 400:
                    return self._parse(url, r, len(batch))
                last = f"HTTP {r.status_code}: {r.text[:200]}"
                if r.status_code < 500 and r.status_code != 429:
                    break  # a client error will not heal on retry
            if attempt < self.retries:
                time.sleep(self.backoff * 2**attempt)
        raise EmbedError(f"embeddings host {url}: {last}")

    @staticmethod
    def _parse(url: str, r: httpx.Response, expected: int) -> list[list[float]]:
        try:
            rows = sorted(r.json()["data"], key=lambda d: d["index"])
            vectors = [row["embedding"] for row in rows]
        except (ValueError, KeyError, TypeError) as e:
            raise EmbedError(f"embeddings host {url}: malformed reply ({type(e).__name__}: {e})") from e
        if len(vectors) != expected:
            raise EmbedError(f"embeddings host {url}: sent {expected} texts, got {len(vectors)} vectors")
        return vectors

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            rows.extend(self._post(list(texts[start : start + self.batch_size])))
        if not rows:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        out = normalize(np.asarray(rows, dtype=np.float32))
        self._dim = out.shape[1]
        return out
