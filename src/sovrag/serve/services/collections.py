"""Collections per tenant: create, open (shared by requests and jobs), drop once unused, describe.

A tenant's collection is stored under the name `sovrag.tenancy` gives it, so every lookup goes through the
tenant's own prefix: another tenant's collection is simply not found (404), and retrieval can never reach it.
The API only ever shows the user-facing name.

The embedded store allows one open handle per collection, so open collections are kept in one shared
cache, used by requests and ingestion jobs alike.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sovrag import tenancy
from sovrag.collection import Collection, open_collection
from sovrag.config import Settings
from sovrag.errors import CollectionError
from sovrag.serve.apierror import APIError
from sovrag.store import open_backend
from sovrag.store.base import check_collection_name

MAX_INTERNAL_NAME = tenancy.MAX_STORE_NAME


def public_doc_id(doc_id: str) -> str:
    """Documents are keyed by their stored path; clients see a stable opaque id instead."""
    return "doc_" + hashlib.sha256(doc_id.encode()).hexdigest()[:24]


class TenantCollections:
    def __init__(self, settings: Settings, uploads: Path | None = None) -> None:
        self.settings = settings
        #: tenants' uploaded files: <uploads>/<tenant id>/files/<collection>/
        self.uploads = uploads or settings.data_dir / "tenants"
        self.backend = open_backend(settings.store, settings.data_dir)
        self._open: dict[str, Collection] = {}
        self._users: dict[str, int] = {}  # requests and jobs inside use(), per store name
        self._dropping: set[str] = set()
        self._lock = threading.Condition()

    @staticmethod
    def prefix(tenant_id: int) -> str:
        return tenancy.prefix(tenant_id)

    def internal(self, tenant_id: int, name: str, status: int = 404) -> str:
        """The store name of a tenant's collection; an invalid name is a 400 on create, else not found."""
        try:
            check_collection_name(name)
        except CollectionError as e:
            if status == 404:
                raise APIError(404, f"collection {name!r}: not found", code="collection_not_found") from e
            raise APIError(400, str(e), code="invalid_collection_name", param="name") from e
        internal = tenancy.store_name(tenant_id, name)
        if len(internal) > MAX_INTERNAL_NAME:
            longest = MAX_INTERNAL_NAME - len(self.prefix(tenant_id))
            raise APIError(status, f"collection name {name!r}: longer than {longest} characters",
                           code="invalid_collection_name" if status == 400 else "collection_not_found", param="name")
        return internal

    def files_dir(self, tenant_id: int, name: str) -> Path:
        return self.uploads / str(tenant_id) / "files" / check_collection_name(name)

    def names(self, tenant_id: int) -> list[str]:
        p = self.prefix(tenant_id)
        return [n[len(p):] for n in self.backend.list() if n.startswith(p)]

    def create(self, tenant_id: int, name: str) -> Collection:
        internal = self.internal(tenant_id, name, status=400)
        with self._lock:
            if internal in self._open or self.backend.exists(internal):
                raise APIError(409, f"collection {name!r}: already exists", code="collection_exists", param="name")
            col = open_collection(self.settings, internal, create=True)
            self._open[internal] = col
        self.files_dir(tenant_id, name).mkdir(parents=True, exist_ok=True)
        return col

    def _open_locked(self, internal: str, name: str) -> Collection:
        if internal in self._dropping:
            raise APIError(404, f"collection {name!r}: not found (being deleted)", code="collection_not_found")
        col = self._open.get(internal)
        if col is None:
            if not self.backend.exists(internal):
                raise APIError(404, f"collection {name!r}: not found", code="collection_not_found")
            col = open_collection(self.settings, internal)
            self._open[internal] = col
        return col

    def check(self, tenant_id: int, name: str) -> None:
        """404 unless the tenant has this collection."""
        with self.use(tenant_id, name):
            pass

    @contextmanager
    def use(self, tenant_id: int, name: str) -> Iterator[Collection]:
        """The open collection, guaranteed not to be closed or dropped until the block ends."""
        with self.use_store(self.internal(tenant_id, name), display=name) as col:
            yield col

    @contextmanager
    def use_store(self, internal: str, display: str | None = None, create: bool = False) -> Iterator[Collection]:
        """Any collection by its store name (a tenant's, or a CLI collection for the data directory's owner),
        through the same shared cache of open handles; `create` makes a missing one."""
        name = display or internal
        with self._lock:
            if create and internal not in self._open and not self.backend.exists(internal):
                check_collection_name(internal)
                self._open[internal] = open_collection(self.settings, internal, create=True)
            col = self._open_locked(internal, name)
            self._users[internal] = self._users.get(internal, 0) + 1
        try:
            yield col
        finally:
            with self._lock:
                self._users[internal] -= 1
                if not self._users[internal]:
                    del self._users[internal]
                    self._lock.notify_all()

    def drop(self, tenant_id: int, name: str, wait_s: float = 30.0) -> None:
        """Delete the collection once the requests using it are done; new requests already get 404."""
        self.drop_store(self.internal(tenant_id, name), name, wait_s)
        shutil.rmtree(self.files_dir(tenant_id, name), ignore_errors=True)

    def all_stores(self, select: Callable[[str], bool]) -> list[tuple[str, dict[str, Any], int]]:
        """(store name, meta, chunk count) of the data directory's collections whose store name `select` keeps
        (only those are opened)."""
        out = []
        for internal in filter(select, self.backend.list()):
            with self.use_store(internal) as col:
                out.append((internal, self.backend.meta(internal), col.store.count()))
        return out

    def drop_store(self, internal: str, display: str | None = None, wait_s: float = 30.0) -> None:
        """Delete any collection by its store name once unused (also the owner's `collections delete`)."""
        name = display or internal
        with self._lock:
            if internal in self._dropping or not self.backend.exists(internal):
                raise APIError(404, f"collection {name!r}: not found", code="collection_not_found")
            self._dropping.add(internal)
            try:
                if not self._lock.wait_for(lambda: not self._users.get(internal), timeout=wait_s):
                    raise APIError(409, f"collection {name!r}: still in use after {wait_s:.0f} s; try again",
                                   code="collection_busy")
                col = self._open.pop(internal, None)
                if col is not None:
                    col.close()
                self.backend.drop(internal)
            finally:
                self._dropping.discard(internal)

    def describe(self, tenant_id: int, name: str) -> dict[str, Any]:
        with self.use(tenant_id, name) as col:
            return {"object": "collection", "name": name, "chunks": col.store.count(),
                    "documents": len(col.store.documents()), "embedder": col.meta.get("embedder"),
                    "created": col.meta.get("created")}

    def close(self) -> None:
        with self._lock:
            for col in self._open.values():
                col.close()
            self._open.clear()
            self.backend.close()
