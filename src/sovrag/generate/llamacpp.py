"""The embedded default LLM: llama.cpp in-process through xllamacpp, on a GGUF file.

The model is loaded once per process (keyed by file and settings) and reused by every request. It is
run with its own chat template from the GGUF. xllamacpp always starts llama.cpp's HTTP listener as well;
sovrag binds it to loopback on a random port and protects it with a random per-process API key, and uses
it only for tokenisation, which the Python binding does not expose.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from sovrag.errors import GenerationError, ModelError
from sovrag.generate.base import Generation, GenerationParams, Message, StreamEvent
from sovrag.generate.sse import ChunkFolder, from_completion
from sovrag.models.registry import check_gguf

log = logging.getLogger(__name__)

_loaded: dict[tuple, LlamaCppLLM] = {}
_load_lock = threading.Lock()

#: n-gram speculation: the n-gram looked up, and how many tokens after it are drafted (benchmarks/speculative.py)
NGRAM_N = 4
NGRAM_M = 16


def load_llamacpp(path: Path, name: str, context: int = 4096, threads: int = 0, parallel: int = 1,
                  speculative: str = "off", lora: Sequence[tuple[str, float]] = ()) -> LlamaCppLLM:
    """The process-wide instance for this model file, adapters and settings, loading it on first use."""
    key = (str(Path(path).resolve()), context, threads, parallel, speculative, tuple(lora))
    with _load_lock:
        if key not in _loaded:
            _loaded[key] = LlamaCppLLM(path, name, context, threads, parallel, speculative, lora)
        return _loaded[key]


class LlamaCppLLM:
    def __init__(self, path: Path, name: str, context: int = 4096, threads: int = 0, parallel: int = 1,
                 speculative: str = "off", lora: Sequence[tuple[str, float]] = ()) -> None:
        import xllamacpp as xlc

        from sovrag.machine import available_cores

        path = check_gguf(path)
        p = xlc.CommonParams()
        p.model.path = str(path)
        p.n_ctx = context * parallel  # the KV cache is split across parallel slots
        p.n_parallel = parallel
        p.kv_unified = False
        n = threads or available_cores()
        p.cpuparams.n_threads = n
        p.cpuparams_batch.n_threads = n
        p.verbosity = -1
        if speculative == "ngram":
            # Prompt-lookup drafting: after the last NGRAM_N tokens recur in the prompt or the answer so far, the
            # NGRAM_M tokens that followed them are verified in one batch. At temperature 0 the text is nearly
            # always plain decoding's (95 of 100 benchmark prompts; the batch's arithmetic can tip a close call).
            p.speculative.types = [xlc.common_speculative_type.COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE]
            p.speculative.ngram_simple.size_n = NGRAM_N
            p.speculative.ngram_simple.size_m = NGRAM_M
        elif speculative != "off":
            raise ModelError(f"speculative={speculative!r}: expected 'ngram' or 'off'")
        # LoRA adapters (sovrag tune), applied by llama.cpp on top of the unchanged quantized weights; checked
        # against their base by models.adapters before they get here.
        p.lora_adapters = [xlc.CommonAdapterLoraInfo(str(a), float(scale)) for a, scale in lora]
        p.hostnames = ["127.0.0.1"]
        p.port = 0
        self._key = secrets.token_hex(16)
        p.api_keys = [self._key]
        t0 = time.perf_counter()
        try:
            self.server = xlc.Server(p)
        except (RuntimeError, ValueError) as e:
            with_lora = f" with adapter(s) {', '.join(str(a) for a, _ in lora)}" if lora else ""
            raise ModelError(
                f"GGUF model {path}{with_lora}: llama.cpp cannot load it ({e}); the file may be corrupt or "
                "truncated, or the architecture unsupported by this llama.cpp build"
            ) from e
        self.load_seconds = time.perf_counter() - t0
        self.name = name
        self.path = path
        self.lora = tuple(lora)
        self._context = context
        self._http = httpx.Client(base_url=self.server.listening_address, timeout=120,
                                  headers={"Authorization": f"Bearer {self._key}"})
        log.info("loaded %s in %.1f s (%d threads, n_ctx %d)", path, self.load_seconds, n, context)

    @property
    def context_tokens(self) -> int:
        return self._context

    def count_tokens(self, text: str) -> int:
        try:
            r = self._http.post("/tokenize", json={"content": text})
            r.raise_for_status()
        except httpx.HTTPError as e:
            raise GenerationError(f"llama.cpp ({self.name}): cannot count tokens ({e})") from e
        return len(r.json()["tokens"])

    def _body(self, messages: Sequence[Message], params: GenerationParams | None) -> dict[str, Any]:
        if not messages:
            raise GenerationError("chat: no messages to send")
        return {"messages": [m.as_dict() for m in messages], **(params or GenerationParams()).request_fields()}

    def _check(self, result: Any) -> dict[str, Any]:
        if isinstance(result, dict) and "error" in result:
            err = result["error"]
            msg = err.get("message", err) if isinstance(err, dict) else err
            raise GenerationError(f"llama.cpp ({self.name}): {msg}")
        if not isinstance(result, dict):
            raise GenerationError(f"llama.cpp ({self.name}): unexpected reply {result!r:.200}")
        return result

    def chat(self, messages: Sequence[Message], params: GenerationParams | None = None) -> Generation:
        body = self._body(messages, params)
        t0 = time.perf_counter()
        try:
            result = self.server.handle_chat_completions(body)
        except ValueError as e:
            raise GenerationError(f"llama.cpp ({self.name}): {e}") from e
        return from_completion(self._check(result), time.perf_counter() - t0)

    def stream(self, messages: Sequence[Message], params: GenerationParams | None = None) -> Iterator[StreamEvent]:
        """Tokens as they are generated; leaving the loop early cancels the generation."""
        body = {**self._body(messages, params), "stream": True, "stream_options": {"include_usage": True}}
        q: queue.Queue[Any] = queue.Queue()
        end = object()
        cancel = threading.Event()

        def on_chunk(chunk: Any) -> bool:
            q.put(chunk)
            return cancel.is_set()

        def run() -> None:
            try:
                self.server.handle_chat_completions(body, on_chunk)
            except ValueError as e:
                q.put({"error": {"message": str(e)}})
            finally:
                q.put(end)

        t0 = time.perf_counter()
        worker = threading.Thread(target=run, name="llamacpp-stream", daemon=True)
        worker.start()
        folder = ChunkFolder()
        try:
            while (item := q.get()) is not end:
                delta = folder.add(self._check(item))
                if delta:
                    yield StreamEvent(delta=delta)
            yield StreamEvent(done=folder.generation(time.perf_counter() - t0))
        finally:
            cancel.set()
            if worker.is_alive():  # drain so the engine's callback never blocks
                while q.get() is not end:
                    pass
