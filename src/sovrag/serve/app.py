"""The FastAPI app: OpenAI-compatible RAG over each tenant's collections, plus admin, jobs and operations.

`create_app(settings)` wires the parts; `sovrag serve` runs it under uvicorn. Startup opens the server
database and the default embedder; the LLM is loaded on the first chat (or passed in, for tests).
Shutdown stops accepting jobs, gives the running one a grace period, then closes the collections.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sovrag import __version__
from sovrag.config import OPENAI_SCHEMES, Settings
from sovrag.embed import create_embedder
from sovrag.errors import ConfigError, SovragError
from sovrag.generate import LLM, create_llm
from sovrag.generate.shared import SharedLLM, Turns
from sovrag.models import get_spec
from sovrag.serve.context import ServerContext, get_ctx
from sovrag.serve.db import open_database
from sovrag.serve.errors import install_error_handlers
from sovrag.serve.metrics import Metrics, RequestMiddleware
from sovrag.serve.openapi import install_docs
from sovrag.serve.options import ServerOptions
from sovrag.serve.routes import auth, collections, documents, feedback, jobs, local, openai, runs, webui
from sovrag.serve.routes.openai import spec_names
from sovrag.serve.services.collections import TenantCollections
from sovrag.serve.services.feedback import Feedback
from sovrag.serve.services.files import UploadedFiles
from sovrag.serve.services.jobs import JobRunner
from sovrag.serve.services.keys import KeyStore, RateLimiter, SharedRateLimiter

#: Stores that live in one machine's data directory (not shareable by workers on one database).
EMBEDDED_STORES = ("qdrant-edge", "qdrant-local")

log = logging.getLogger("sovrag.serve")


def _llms(settings: Settings, llm: LLM | None, opts: ServerOptions,
          metrics: Metrics) -> tuple[dict[str, SharedLLM], dict[str, list[str]]]:
    """The default LLM (`llm`, else the `llm` setting) and the `llms` option's, each loaded on first use, by the
    name /v1/models lists; they take turns (one generation at a time, one queue: they share the cores). A
    bundled model's name is checked now, not when a client first picks it."""
    turns = Turns()  # the local models take turns on this machine's cores
    llms: dict[str, SharedLLM] = {}
    aliases: dict[str, list[str]] = {}

    for i, spec in enumerate([settings.llm, *opts.extra_llms()]):
        full = spec_names(spec)[1]
        remote = full.partition(":")[0] in OPENAI_SCHEMES
        # a remote host (or a pool of them, '|'-joined) runs requests side by side: its own, wider line
        line = Turns(parallel=opts.remote_llm_parallel * (full.count("|") + 1)) if remote else turns
        name, *others = spec_names(spec)
        if i > 0:
            _check_llm_spec(others[0])
        if name in llms:
            raise ConfigError(f"setting llms: {spec!r} is {name}, listed twice")
        instance = llm if i == 0 else None
        factory = None if instance is not None else (lambda spec=spec: create_llm(settings, spec))
        llms[name] = SharedLLM(instance, factory, queue_max=opts.llm_queue_max, on_depth=metrics.llm_queue.set,
                               on_tokens=metrics.add_tokens, turns=line)
        aliases[name] = others
    return llms, aliases


def _check_llm_spec(spec: str) -> None:
    """A `llamacpp:` spec names a bundled model or a .gguf file (and maybe `+lora:ADAPTER`); anything else is
    checked on first use."""
    scheme, _, rest = spec.partition(":")
    rest = rest.partition("+lora:")[0]
    if scheme == "llamacpp" and rest and not (rest.endswith(".gguf") or "/" in rest):
        try:
            get_spec(rest)
        except SovragError as e:
            raise ConfigError(f"setting llms: {spec!r}: {e}") from e
    elif scheme != "llamacpp" and scheme not in OPENAI_SCHEMES:
        raise ConfigError(f"setting llms: {spec!r}: expected llamacpp:NAME|PATH.gguf, openai://..., or a profile")


def create_app(settings: Settings, llm: LLM | None = None, options: ServerOptions | None = None) -> FastAPI:
    """The app; `options` default to SOVRAG_SERVE_* / SOVRAG_ADMIN_KEY from the environment."""
    opts = (options or ServerOptions.from_env()).check()
    metrics = Metrics()
    holder: dict[str, ServerContext] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = opts.threadpool
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = open_database(opts.database, settings.data_dir)
        if db.shared and settings.store.partition(":")[0] in EMBEDDED_STORES:
            db.close()
            raise ConfigError(f"[serve] database is shared ({db.where}) but the store {settings.store!r} is this "
                              "machine's own: workers on one database need one store too (--store postgresql://... "
                              "or qdrant://...)")
        cols = TenantCollections(settings, Path(opts.uploads_dir).expanduser() if opts.uploads_dir else None)
        files = UploadedFiles(db)
        llms, aliases = _llms(settings, llm, opts, metrics)
        jobs = JobRunner(settings, db, cols, files, metrics, workers=opts.ingest_workers, lease_s=opts.job_lease_s)
        ctx = ServerContext(
            settings=settings, options=opts, db=db, keys=KeyStore(db),
            limiter=SharedRateLimiter(db) if db.shared else RateLimiter(), collections=cols, files=files, jobs=jobs,
            llm=next(iter(llms.values())), metrics=metrics, feedback=Feedback(db), llms=llms, llm_aliases=aliases,
        )
        app.state.ctx = holder["ctx"] = ctx
        await anyio.to_thread.run_sync(create_embedder, settings)  # fail at start, not on the first request
        log.info("sovrag %s serving data dir %s", __version__, settings.data_dir)
        try:
            yield
        finally:
            log.info("shutting down: waiting up to %.0f s for the running ingestion job", opts.shutdown_grace_s)
            await anyio.to_thread.run_sync(ctx.jobs.shutdown, opts.shutdown_grace_s)
            cols.close()
            db.close()

    app = FastAPI(title="sovrag", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Self-hosted RAG with an OpenAI-compatible API. Chat with `model: rag:<collection>` "
                  "for grounded, cited answers; authenticate with `Authorization: Bearer <tenant key>`.")
    install_error_handlers(app)
    install_docs(app)
    for router in (auth.admin_router, local.router, openai.router, collections.router, documents.router, jobs.router,
                   runs.router, feedback.router, webui.router):
        app.include_router(router)

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], response_model=None)
    def readyz() -> dict[str, Any] | JSONResponse:
        """Ready for traffic: database open, ingestion worker alive, not shutting down."""
        ctx = holder.get("ctx")
        checks = {"database": ctx is not None, "ingest_worker": bool(ctx and ctx.jobs.alive)}
        body = {"status": "ready" if all(checks.values()) else "not ready", "checks": checks,
                "llm_loaded": bool(ctx and ctx.llm.loaded), "llm_queue_depth": ctx.llm.waiting if ctx else 0}
        hosts = getattr(ctx.llm.model(), "status", None) if ctx and ctx.llm.loaded else None
        if hosts is not None:  # a pool of LLM hosts: which are up, their load and last errors
            body["llm_hosts"] = hosts()
        return body if all(checks.values()) else JSONResponse(body, status_code=503)

    @app.get("/metrics", tags=["operations"], response_class=Response, dependencies=[Depends(auth.require_metrics)])
    def prometheus() -> Response:
        """Prometheus metrics; scrape with `Authorization: Bearer <metrics key or admin key>`."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/tenant", tags=["collections"])
    def whoami(me: auth.Tenant, ctx: Annotated[ServerContext, Depends(get_ctx)]) -> dict[str, Any]:
        """The calling key's tenant, and the upload limits a client should batch its files by."""
        limits = {"max_upload_file_mb": opts.max_upload_file_mb, "max_upload_request_mb": opts.max_upload_request_mb,
                  "max_upload_files": opts.max_upload_files}
        return {**ctx.keys.tenant(me.tenant_id), "key_id": me.key_id, "limits": limits}

    def limit_for(path: str) -> int:
        mb = opts.max_upload_request_mb if path.endswith("/documents") else opts.max_json_mb
        return int(mb * 2**20)

    app.add_middleware(RequestMiddleware, metrics=metrics, limit_for=limit_for, routes=app.routes)
    return app
