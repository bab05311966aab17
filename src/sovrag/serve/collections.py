"""Collections per tenant, and the collection and search routes.

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
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr

from sovrag import tenancy
from sovrag.collection import Collection, open_collection
from sovrag.config import Settings
from sovrag.errors import CollectionError
from sovrag.retrieve import search
from sovrag.serve.auth import Tenant
from sovrag.serve.context import ServerContext, get_ctx
from sovrag.serve.errors import APIError
from sovrag.serve.limits import check_query
from sovrag.serve.sanitize import neutralize
from sovrag.store import open_backend
from sovrag.store.base import check_collection_name
from sovrag.types import Chunk

MAX_INTERNAL_NAME = tenancy.MAX_STORE_NAME


def public_doc_id(doc_id: str) -> str:
    """Documents are keyed by their stored path; clients see a stable opaque id instead."""
    return "doc_" + hashlib.sha256(doc_id.encode()).hexdigest()[:24]


class TenantCollections:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
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
        return self.settings.data_dir / "tenants" / str(tenant_id) / "files" / check_collection_name(name)

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
        internal = self.internal(tenant_id, name)
        with self._lock:
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
        internal = self.internal(tenant_id, name)
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
        shutil.rmtree(self.files_dir(tenant_id, name), ignore_errors=True)

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


def chunk_view(chunk: Chunk, raw: bool = False) -> dict[str, Any]:
    """A chunk as clients see it: file name instead of the server path, opaque document id, and active markup
    in its text and title neutralised unless `raw` (see sovrag.serve.sanitize)."""
    meta = {k: v for k, v in chunk.metadata.items() if k not in ("version", "chunk_count")}
    clean = (lambda t: t) if raw else neutralize
    return {"id": chunk.id, "document_id": public_doc_id(chunk.doc_id), "source": Path(chunk.source).name,
            "title": clean(chunk.title), "page": chunk.page, "headings": [clean(h) for h in chunk.headings],
            "chunk_index": chunk.index, "text": clean(chunk.text), "metadata": meta}


# ------------------------------------------------------------------ routes
router = APIRouter(prefix="/v1", tags=["collections"])
Ctx = Annotated[ServerContext, Depends(get_ctx)]


class CollectionIn(BaseModel):
    name: StrictStr = Field(min_length=1, max_length=64)


FilterValue = StrictStr | StrictInt | list[StrictStr | StrictInt]


class SearchIn(BaseModel):
    query: StrictStr = Field(min_length=1, max_length=4000)
    top_k: StrictInt = Field(default=5, ge=1, le=100)
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    filters: dict[str, FilterValue] | None = None
    #: Passages and titles as stored, for clients that render text safely (default: active markup neutralised).
    raw: StrictBool = False


@router.post("/collections", status_code=201)
def create_collection(body: CollectionIn, me: Tenant, ctx: Ctx) -> dict[str, Any]:
    ctx.collections.create(me.tenant_id, body.name)
    return ctx.collections.describe(me.tenant_id, body.name)


@router.get("/collections")
def list_collections(me: Tenant, ctx: Ctx) -> dict[str, Any]:
    data = []
    for n in ctx.collections.names(me.tenant_id):
        try:
            data.append(ctx.collections.describe(me.tenant_id, n))
        except APIError as e:  # deleted between listing and describing
            if e.status != 404:
                raise
    return {"object": "list", "data": data}


@router.get("/collections/{name}")
def get_collection(name: str, me: Tenant, ctx: Ctx) -> dict[str, Any]:
    return ctx.collections.describe(me.tenant_id, name)


@router.delete("/collections/{name}")
def delete_collection(name: str, me: Tenant, ctx: Ctx) -> dict[str, Any]:
    ctx.collections.internal(me.tenant_id, name)
    if ctx.jobs.active(me.tenant_id, name):
        raise APIError(409, f"collection {name!r}: an ingestion job is queued or running; delete it when the job "
                       "is done", code="collection_busy")
    ctx.collections.drop(me.tenant_id, name)
    ctx.db.run("DELETE FROM files WHERE tenant_id = ? AND collection = ?", (me.tenant_id, name))
    return {"object": "collection.deleted", "name": name, "deleted": True}


@router.post("/collections/{name}/search")
async def search_collection(name: str, body: SearchIn, me: Tenant, ctx: Ctx) -> dict[str, Any]:
    def run() -> list[dict[str, Any]]:
        with ctx.collections.use(me.tenant_id, name) as col:
            check_query(ctx, me, col.embedder, body.query, "query")
            hits = search(col, body.query, top_k=body.top_k, mode=body.mode, filters=body.filters)
        return [{"rank": h.rank, "score": h.score, **chunk_view(h.chunk, body.raw)} for h in hits]

    t0 = time.perf_counter()
    data = await anyio.to_thread.run_sync(run)
    return {"object": "list", "collection": name, "query": body.query, "mode": body.mode, "data": data,
            "seconds": round(time.perf_counter() - t0, 4)}
