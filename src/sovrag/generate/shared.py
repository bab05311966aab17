"""One local model shared by many callers: one generation at a time, the others queue.

llama.cpp runs one generation per loaded model; two at once would corrupt its state or thrash the cores.
`SharedLLM` wraps any LLM behind the same protocol, so the question journey, `sovrag serve` and
`sovrag bench` all use it the same way and there is one lock, not one per caller. It loads the model on
first use, counts the callers waiting (a gauge for metrics) and refuses to queue more than `queue_max`
(`LLMBusy`, which the server answers with 503). Only generation holds the lock: token counting, retrieval and
verification run beside it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from sovrag.errors import GenerationError
from sovrag.generate.base import LLM, Generation, GenerationParams, Message, StreamEvent


class LLMBusy(GenerationError):
    """More callers are waiting for the model than the queue allows."""


class Turns:
    """One line for several models on the same cores: one generation at a time, one count of who waits.
    `parallel` > 1 is for remote hosts (vLLM batches concurrent requests; a pool has several hosts): that many
    generations at once."""

    def __init__(self, parallel: int = 1) -> None:
        self.lock: threading.Lock | threading.BoundedSemaphore = (
            threading.Lock() if parallel <= 1 else threading.BoundedSemaphore(parallel))
        self.count_lock = threading.Lock()
        self.waiting = 0


class SharedLLM:
    def __init__(self, llm: LLM | None = None, factory: Callable[[], LLM] | None = None, queue_max: int = 0,
                 on_depth: Callable[[int], None] = lambda n: None,
                 on_tokens: Callable[[int, int], None] = lambda p, c: None,
                 turns: Turns | None = None) -> None:
        """`llm`, or a `factory` that loads it on first use; `queue_max` = 0: no limit on waiting callers;
        `turns`: shared with other models on the same cores (one generation at a time, one queue for all)."""
        if (llm is None) == (factory is None):
            raise ValueError("SharedLLM: give an llm or a factory, not both")
        self._llm = llm
        self._factory = factory
        self._load_lock = threading.Lock()
        self._turns = turns or Turns()
        self._lock = self._turns.lock
        self._count_lock = self._turns.count_lock
        self.queue_max = queue_max
        self._on_depth = on_depth
        self._on_tokens = on_tokens

    @property
    def waiting(self) -> int:
        """Callers waiting for a generation (on every model sharing these turns)."""
        return self._turns.waiting

    # ------------------------------------------------------------------ the model
    @property
    def loaded(self) -> bool:
        return self._llm is not None

    def model(self) -> LLM:
        """The model, loaded on first use (blocking)."""
        if self._llm is None:
            with self._load_lock:
                if self._llm is None and self._factory is not None:
                    self._llm = self._factory()
        assert self._llm is not None
        return self._llm

    @property
    def name(self) -> str:
        return self.model().name

    @property
    def context_tokens(self) -> int:
        return self.model().context_tokens

    def count_tokens(self, text: str) -> int:
        return self.model().count_tokens(text)

    # ------------------------------------------------------------------ generation, one at a time
    @contextmanager
    def slot(self) -> Iterator[LLM]:
        """Wait for the model; `LLMBusy` when `queue_max` callers are already waiting."""
        llm = self.model()
        with self._count_lock:
            if self.queue_max and self._turns.waiting >= self.queue_max:
                raise LLMBusy(f"the LLM queue is full ({self._turns.waiting} requests waiting); retry shortly")
            self._turns.waiting += 1
            self._on_depth(self._turns.waiting)
        try:
            self._lock.acquire()
        finally:
            with self._count_lock:
                self._turns.waiting -= 1
                self._on_depth(self._turns.waiting)
        try:
            yield llm
        finally:
            self._lock.release()

    def _counted(self, gen: Generation) -> Generation:
        self._on_tokens(gen.prompt_tokens, gen.completion_tokens)
        return gen

    def chat(self, messages: Sequence[Message], params: GenerationParams | None = None) -> Generation:
        with self.slot() as llm:
            return self._counted(llm.chat(messages, params))

    def stream(self, messages: Sequence[Message], params: GenerationParams | None = None) -> Iterator[StreamEvent]:
        """The model's events; closing this iterator early stops the generation before the slot is freed."""
        with self.slot() as llm:
            events = llm.stream(messages, params)
            try:
                for ev in events:
                    if ev.done is not None:
                        self._counted(ev.done)
                    yield ev
            finally:
                close = getattr(events, "close", None)
                if close is not None:
                    close()
