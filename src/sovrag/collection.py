"""A collection bound to its store backend and the embedder it was built with.

The embedder's identity and dimension are recorded when a collection is created; opening it later
with another embedder is refused, because vectors from two models are not comparable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sovrag import __version__
from sovrag.config import Settings
from sovrag.embed import Embedder, create_embedder
from sovrag.errors import CollectionError
from sovrag.store import Store, StoreBackend, open_backend


@dataclass
class Collection:
    name: str
    store: Store
    embedder: Embedder
    meta: dict[str, Any]
    backend: StoreBackend

    def close(self) -> None:
        self.store.close()
        self.backend.close()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_collection(settings: Settings, name: str, create: bool = False) -> Collection:
    backend = open_backend(settings.store, settings.data_dir)
    try:
        if backend.exists(name):
            meta = backend.meta(name)
            embedder = create_embedder(settings, meta.get("embedder_spec") or settings.embedder)
            if meta.get("embedder") != embedder.name or int(meta.get("dim", -1)) != embedder.dim:
                raise CollectionError(
                    f"collection {name!r}: built with embedder {meta.get('embedder')} "
                    f"({meta.get('dim')} dims), but the configured embedder is {embedder.name} "
                    f"({embedder.dim} dims); use the same embedder or re-ingest into a new collection"
                )
            store = backend.open(name)
        elif create:
            embedder = create_embedder(settings)
            meta = {
                "embedder": embedder.name,
                "embedder_spec": settings.embedder,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "sovrag_version": __version__,
            }
            store = backend.create(name, embedder.dim, meta)
            meta = backend.meta(name)
        else:
            known = ", ".join(backend.list()) or "none yet"
            raise CollectionError(
                f"collection {name!r}: does not exist (collections: {known}); create it with `sovrag ingest`"
            )
    except BaseException:
        backend.close()
        raise
    return Collection(name, store, embedder, meta, backend)


def list_collections(settings: Settings) -> list[tuple[str, dict[str, Any], int]]:
    backend = open_backend(settings.store, settings.data_dir)
    try:
        out = []
        for name in backend.list():
            store = backend.open(name)
            try:
                out.append((name, backend.meta(name), store.count()))
            finally:
                store.close()
        return out
    finally:
        backend.close()


def drop_collection(settings: Settings, name: str) -> None:
    backend = open_backend(settings.store, settings.data_dir)
    try:
        backend.drop(name)
    finally:
        backend.close()
