"""Any OpenAI-compatible `/v1/chat/completions` host: vLLM, Ollama, llama.cpp's server, Together, Fireworks.

Timeouts on every request, retries with exponential backoff on connection errors, 429 and 5xx (never on
other 4xx, which will not heal), and a clear GenerationError naming the host for everything else:
malformed JSON, a stream cut before its end, an error object inside a stream.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from sovrag.errors import GenerationError, HostUnavailable
from sovrag.generate.base import Generation, GenerationParams, Message, StreamEvent
from sovrag.generate.sse import ChunkFolder, from_completion


class OpenAICompatLLM:
    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 120.0,
        retries: int = 3,
        backoff: float = 0.5,
        context: int = 8192,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"openai:{model}"
        self.retries = retries
        self.backoff = backoff
        self._context = context
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # connect fails fast; read allows a long generation but not forever.
        self.client = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)), headers=headers)

    @property
    def context_tokens(self) -> int:
        return self._context

    def count_tokens(self, text: str) -> int:
        """Hosts have no common tokenize route: estimate (about 4 characters per token, rounded up)."""
        return max(1, (len(text) + 3) // 4)

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def _body(self, messages: Sequence[Message], params: GenerationParams | None, stream: bool) -> dict[str, Any]:
        if not messages:
            raise GenerationError("chat: no messages to send")
        body = {"model": self.model, "messages": [m.as_dict() for m in messages],
                **(params or GenerationParams()).request_fields()}
        if stream:
            body.update(stream=True, stream_options={"include_usage": True})
        return body

    def _retrying(self, send: Any) -> Any:
        last = ""
        for attempt in range(self.retries + 1):
            try:
                return send()
            except _Retry as e:
                last = str(e)
            except httpx.TimeoutException as e:
                last = f"timed out ({type(e).__name__})"
            except httpx.TransportError as e:
                last = f"{type(e).__name__}: {e}"
            if attempt < self.retries:
                time.sleep(self.backoff * 2**attempt)
        raise HostUnavailable(f"LLM host {self.url}: {last} (after {self.retries + 1} attempts)")

    def _raise_for_status(self, r: httpx.Response) -> None:
        if r.status_code < 400:
            return
        text = r.read().decode(errors="replace")[:300] if not r.is_closed else r.text[:300]
        if r.status_code == 429 or r.status_code >= 500:
            raise _Retry(f"HTTP {r.status_code}: {text}")
        raise GenerationError(f"LLM host {self.url}: HTTP {r.status_code}: {text}")

    def chat(self, messages: Sequence[Message], params: GenerationParams | None = None) -> Generation:
        body = self._body(messages, params, stream=False)

        def send() -> Generation:
            t0 = time.perf_counter()
            r = self.client.post(self.url, json=body)
            self._raise_for_status(r)
            try:
                return from_completion(r.json(), time.perf_counter() - t0)
            except (ValueError, KeyError, IndexError, TypeError) as e:
                raise GenerationError(f"LLM host {self.url}: malformed reply ({type(e).__name__}: {e})") from e

        return self._retrying(send)  # type: ignore[no-any-return]

    def stream(self, messages: Sequence[Message], params: GenerationParams | None = None) -> Iterator[StreamEvent]:
        """Server-sent events. Retries happen only before the first token; a cut after it is an error."""
        body = self._body(messages, params, stream=True)
        t0 = time.perf_counter()

        def open_stream() -> tuple[Any, httpx.Response]:
            ctx = self.client.stream("POST", self.url, json=body)
            r = ctx.__enter__()
            try:
                self._raise_for_status(r)
            except BaseException:
                ctx.__exit__(None, None, None)
                raise
            return ctx, r

        ctx, r = self._retrying(open_stream)
        folder = ChunkFolder()
        finished = False
        try:
            for line in r.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    finished = True
                    break
                try:
                    chunk = json.loads(data)
                except ValueError as e:
                    raise GenerationError(f"LLM host {self.url}: malformed stream event {data[:100]!r}") from e
                if "error" in chunk:
                    raise GenerationError(f"LLM host {self.url}: error in stream: {chunk['error']}")
                delta = folder.add(chunk)
                if delta:
                    yield StreamEvent(delta=delta)
        except httpx.HTTPError as e:
            raise GenerationError(f"LLM host {self.url}: stream broken ({type(e).__name__}: {e})") from e
        finally:
            ctx.__exit__(None, None, None)
        if not finished:
            raise GenerationError(f"LLM host {self.url}: stream ended before [DONE] (connection cut midway)")
        yield StreamEvent(done=folder.generation(time.perf_counter() - t0))


class _Retry(Exception):
    """A failure worth retrying (429, 5xx)."""
