"""What every route shares: settings, the database, keys, collections, jobs, the shared LLM, metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from sovrag.config import Settings
from sovrag.serve.options import ServerOptions

if TYPE_CHECKING:
    from sovrag.generate.shared import SharedLLM
    from sovrag.serve.auth import KeyStore, RateLimiter
    from sovrag.serve.collections import TenantCollections
    from sovrag.serve.db import Database
    from sovrag.serve.jobs import JobRunner
    from sovrag.serve.metrics import Metrics


@dataclass
class ServerContext:
    settings: Settings
    options: ServerOptions
    db: Database
    keys: KeyStore
    limiter: RateLimiter
    collections: TenantCollections
    jobs: JobRunner
    llm: SharedLLM
    metrics: Metrics


def get_ctx(request: Request) -> ServerContext:
    return request.app.state.ctx  # type: ignore[no-any-return]
