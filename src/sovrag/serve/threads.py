"""Blocking work handed to the event loop as it happens: the question journey and the shared LLM's streams.

The model is shared through `sovrag.generate.shared.SharedLLM` (one generation at a time, waiters counted,
`LLMBusy` past the queue limit); its streams and the question journey (`AnswerPipeline.stream`) are plain
iterators, so the server runs each on a thread of its own and relays the items. Search, embeddings and
uploads stay responsive meanwhile: they never wait for the model.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio

log = logging.getLogger("sovrag.serve")

_END = object()


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
