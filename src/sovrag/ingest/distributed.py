"""Ingestion on a Ray cluster: the heavy steps of a document's journey (parse, chunk, embed) on the cluster's
workers, everything that decides what to write on the driver.

The driver (`sovrag ingest --ray ADDRESS`) walks the paths, reads and hashes each file and compares it with the
store exactly as a local run does (unchanged files are skipped, `--sync` deletes vanished ones); only the files
that need indexing travel, as bytes and in batches of files, to `Preparer` actors spread over the cluster's
nodes (one per CPU the cluster offers, up to `max_actors`). Each actor holds the collection's embedder and
parses in its own isolated child process like a local run; it returns the chunks and their vectors (one
embedding call per batch), which the driver writes to the store.
So the store sees the same chunks, ids and report as a local run (tested on a two-node local cluster), and
works with any store, embedded or shared.

Every Ray node needs sovrag installed and the embedder's model in the same data directory (`sovrag models
pull`): nothing is downloaded at run time. Ray's usage statistics are switched off here before Ray starts
(RAY_USAGE_STATS_ENABLED=0); start the cluster's own nodes with `ray start --disable-usage-stats`.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from sovrag.config import Settings
from sovrag.errors import ConfigError, LoadError, SovragError
from sovrag.types import Chunk

#: Files per Ray call, and bytes: a batch goes out when either is reached.
BATCH_FILES = 32
BATCH_BYTES = 4 * 2**20
#: Batches queued at each actor at once.
IN_FLIGHT = 2


@dataclass(frozen=True)
class Task:
    """One file to index: what the driver already knows about it, and its bytes."""

    source: str
    path: str  # as the driver found it (the parser names the document by it; the bytes travel with the task)
    data: bytes
    doc_id: str
    version: str
    context: Any  # the driver's own bookkeeping (the document's state in the store), handed back untouched


@dataclass(frozen=True)
class Prepared:
    task: Task
    chunks: list[Chunk]
    vectors: Any  # np.ndarray, one row per chunk
    error: str = ""
    node: str = ""  # the Ray node that prepared it


def prepare_file(settings: Settings, count_tokens: Any, parser: Any, task: Task) -> list[Chunk]:
    """Parse and chunk one file: the same code for a local run (ingest/sync.py) and a Ray worker."""
    from pathlib import Path

    from sovrag.ingest.chunker import chunk_document

    max_bytes = int(settings.max_file_mb * 1024 * 1024)
    doc = parser.load(Path(task.path), task.data, max_bytes, int(settings.max_unpacked_mb * 1024 * 1024))
    chunks = chunk_document(doc, task.doc_id, task.version, count_tokens, chunk_tokens=settings.chunk_tokens,
                            overlap=settings.chunk_overlap, mode=settings.chunk_mode,
                            document_max_tokens=settings.document_max_tokens)
    if not chunks:
        raise LoadError(task.source, "no text content")
    return [replace(c, version=task.version, chunk_count=len(chunks), format=doc.format,
                    metadata={**c.metadata, **doc.metadata}) for c in chunks]


class _Worker:
    """The body of a Ray actor: one embedder and one parser process, reused for every file it is given."""

    def __init__(self, settings: Settings, embedder_spec: str, embedder_name: str) -> None:
        from sovrag.embed import create_embedder
        from sovrag.ingest import isolate

        # onnxruntime sizes its thread pool by the machine's cores, not by the one CPU Ray gave this actor: two
        # actors on one machine would each start a pool as wide as the machine
        self.settings = replace(settings, embed_threads=1)
        self.embedder = create_embedder(self.settings, embedder_spec)
        if self.embedder.name != embedder_name:
            raise ConfigError(f"Ray worker: embedder {self.embedder.name}, but the collection's is {embedder_name}")
        self.parser = isolate.worker(settings.parse_memory_mb, settings.parse_timeout_s)

    def prepare(self, tasks: list[Task]) -> list[Prepared]:
        """A batch of files: each parsed and chunked on its own (one bad file fails alone), all their chunks
        embedded in one call, as a local run batches them."""
        import ray

        node = ray.get_runtime_context().get_node_id()
        done: list[Prepared] = []
        ready: list[tuple[Task, list[Chunk]]] = []
        for task in tasks:
            try:
                ready.append((task, prepare_file(self.settings, self.embedder.count_tokens, self.parser, task)))
            except SovragError as e:
                done.append(Prepared(task, [], None, e.reason if isinstance(e, LoadError) else str(e), node))
            except Exception as e:  # a bug of ours on one odd file must not cost the rest of the batch
                done.append(Prepared(task, [], None, f"internal error on a Ray worker: {type(e).__name__}: {e}", node))
        try:
            vectors = self.embedder.embed([c.text for _, chunks in ready for c in chunks]) if ready else None
        except SovragError as e:
            return done + [Prepared(t, [], None, f"embedding failed: {e}", node) for t, _ in ready]
        offset = 0
        for task, chunks in ready:
            done.append(Prepared(task, chunks, vectors[offset : offset + len(chunks)], "", node))
            offset += len(chunks)
        return done


class RayPreparer:
    """Actors on a Ray cluster that turn Tasks into Prepared files; `submit` as files come, `results` to drain."""

    def __init__(self, settings: Settings, address: str, embedder_spec: str, embedder_name: str,
                 max_actors: int = 64) -> None:
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # no usage statistics leave the building
        try:
            import ray
        except ImportError as e:
            raise ConfigError(f"--ray: Ray is not installed: pip install 'sovrag[ray]' ({e})") from e
        self._ray = ray
        try:
            ray.init(address=address, log_to_driver=False, logging_level="warning", ignore_reinit_error=True)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ConfigError(f"--ray {address}: no Ray cluster there ({str(e).splitlines()[0]}); start one with "
                              "`ray start --head --disable-usage-stats`, or give its address") from e
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.nodes = len([n for n in ray.nodes() if n.get("Alive")])
        actor = ray.remote(num_cpus=1)(_Worker)
        env = {"env_vars": {"OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}}
        self.actors = [actor.options(scheduling_strategy="SPREAD", runtime_env=env).remote(
            settings, embedder_spec, embedder_name) for _ in range(max(1, min(cpus, max_actors)))]
        # two batches per actor: one it works on, the next waiting, so it never idles while the driver writes
        self._free = deque(self.actors * IN_FLIGHT)
        self._busy: dict[Any, Any] = {}  # object ref -> actor
        self._pending: list[Task] = []
        self._pending_bytes = 0

    def submit(self, task: Task) -> Iterator[Prepared]:
        """Queue a file; files go out in batches (up to BATCH_FILES files or BATCH_BYTES bytes, so the embedder
        sees full batches and Ray's per-call cost is shared). Yields the results that had to be collected to make
        room (back-pressure: at most IN_FLIGHT batches per actor, so memory stays bounded)."""
        self._pending.append(task)
        self._pending_bytes += len(task.data)
        if len(self._pending) >= BATCH_FILES or self._pending_bytes >= BATCH_BYTES:
            yield from self._dispatch()

    def _dispatch(self) -> Iterator[Prepared]:
        while not self._free:
            yield from self._collect()
        actor = self._free.popleft()
        self._busy[actor.prepare.remote(self._pending)] = actor
        self._pending, self._pending_bytes = [], 0

    def results(self) -> Iterator[Prepared]:
        """Everything still queued or in flight."""
        if self._pending:
            yield from self._dispatch()
        while self._busy:
            yield from self._collect()

    def _collect(self) -> Iterator[Prepared]:
        ready, _ = self._ray.wait(list(self._busy), num_returns=1)
        for ref in ready:
            self._free.append(self._busy.pop(ref))
            try:
                yield from self._ray.get(ref)
            except self._ray.exceptions.RayError as e:  # the actor died (its node lost)
                raise SovragError(f"--ray: a worker failed: {str(e).splitlines()[0]}") from e

    def close(self) -> None:
        for a in self.actors:
            self._ray.kill(a)
        self._ray.shutdown()
