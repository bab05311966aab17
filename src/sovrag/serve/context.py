"""What every route shares: settings, the database, the services, the shared LLM, metrics."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from sovrag.config import Settings
from sovrag.generate.shared import SharedLLM
from sovrag.serve.db import Database
from sovrag.serve.metrics import Metrics
from sovrag.serve.options import ServerOptions
from sovrag.serve.services.collections import TenantCollections
from sovrag.serve.services.feedback import Feedback
from sovrag.serve.services.files import UploadedFiles
from sovrag.serve.services.jobs import JobRunner
from sovrag.serve.services.keys import KeyStore, RateLimiter, SharedRateLimiter


@dataclass
class ServerContext:
    settings: Settings
    options: ServerOptions
    db: Database
    keys: KeyStore
    limiter: RateLimiter | SharedRateLimiter
    collections: TenantCollections
    files: UploadedFiles
    jobs: JobRunner
    llm: SharedLLM
    metrics: Metrics
    #: every LLM a client may choose, by the model name /v1/models lists; the first is `llm`, the default
    llms: dict[str, SharedLLM]
    #: the other names each listed LLM answers to (its full spec, its profile)
    llm_aliases: dict[str, list[str]]
    feedback: Feedback


def get_ctx(request: Request) -> ServerContext:
    return request.app.state.ctx  # type: ignore[no-any-return]
