"""The single local LLM, shared through a queue: one generation at a time, waiters counted for metrics.

Waiting happens on an asyncio lock, so a queued chat holds no worker thread and search, embeddings and
uploads stay responsive while a long generation runs. Only the generation itself holds the lock;
retrieval, token counting and citation verification run outside it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing, asynccontextmanager
from typing import Any

import anyio

from sovrag.config import Settings
from sovrag.generate import LLM, Generation, GenerationParams, Message
from sovrag.serve.errors import APIError

log = logging.getLogger("sovrag.serve")

_END = object()


class LLMGate:
    def __init__(self, settings: Settings, llm: LLM | None, queue_max: int,
                 on_depth: Callable[[int], None] = lambda n: None,
                 on_tokens: Callable[[int, int], None] = lambda p, c: None) -> None:
        self.settings = settings
        self._llm = llm
        self._load_lock = threading.Lock()
        self._lock = asyncio.Lock()
        self.queue_max = queue_max
        self.waiting = 0
        self._on_depth = on_depth
        self._on_tokens = on_tokens

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    def get(self) -> LLM:
        """The model, loaded on first use (blocking; call from a worker thread)."""
        if self._llm is None:
            with self._load_lock:
                if self._llm is None:
                    from sovrag.generate import create_llm

                    self._llm = create_llm(self.settings)
        return self._llm

    async def model(self) -> LLM:
        return self._llm if self._llm is not None else await anyio.to_thread.run_sync(self.get)

    def count(self, gen: Generation | None) -> None:
        if gen is not None:
            self._on_tokens(gen.prompt_tokens, gen.completion_tokens)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for the model; 503 when the queue is full."""
        if self.waiting >= self.queue_max:
            raise APIError(503, f"the LLM queue is full ({self.waiting} requests waiting); retry shortly",
                           code="server_busy", headers={"Retry-After": "5"})
        self.waiting += 1
        self._on_depth(self.waiting)
        try:
            await self._lock.acquire()
        finally:
            self.waiting -= 1
            self._on_depth(self.waiting)
        try:
            yield
        finally:
            self._lock.release()

    async def chat(self, llm: LLM, messages: list[Message], params: GenerationParams) -> Generation:
        async with self.slot():
            gen = await anyio.to_thread.run_sync(llm.chat, messages, params)
        self.count(gen)
        return gen

    async def stream(self, llm: LLM, messages: list[Message], params: GenerationParams) -> AsyncIterator[Any]:
        """Text deltas, then the finished Generation. Leaving early (a client gone) stops the model."""
        async with self.slot():
            # aclosing: when this generator is closed at its yield (the route's aclosing, a client gone), the
            # thread's generation must be stopped *before* the slot releases the lock, not whenever the
            # abandoned inner generator happens to be finalised, or the next request runs the model concurrently.
            async with aclosing(iterate_in_thread(lambda: _events(llm, messages, params))) as items:
                async for item in items:
                    if isinstance(item, Generation):
                        self.count(item)
                    yield item


def _events(llm: LLM, messages: list[Message], params: GenerationParams) -> Iterator[str | Generation]:
    for ev in llm.stream(messages, params):
        if ev.done is not None:
            yield ev.done
        elif ev.delta:
            yield ev.delta


async def iterate_in_thread(make: Callable[[], Iterator[Any]]) -> AsyncIterator[Any]:
    """Run a blocking iterator on its own thread, handing items to the event loop as they come.

    When the consumer stops early (cancelled by a disconnect, or closed), the thread is told to stop,
    the iterator is closed on its own thread (which cancels a llama.cpp generation) and we wait for it,
    shielded, so the model is free before the LLM lock is released.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    stop = threading.Event()
    done = asyncio.Event()

    def put(item: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    def produce() -> None:
        it = None
        try:
            it = make()
            for item in it:
                if stop.is_set():
                    break
                put(item)
        except BaseException as e:  # handed to the consumer, which re-raises it
            put(e)
        finally:
            if it is not None and hasattr(it, "close"):
                try:
                    it.close()
                except Exception:
                    log.exception("closing a stream")
            put(_END)
            loop.call_soon_threadsafe(done.set)

    threading.Thread(target=produce, name="sovrag-stream", daemon=True).start()
    try:
        while (item := await queue.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        with anyio.CancelScope(shield=True):
            await done.wait()
