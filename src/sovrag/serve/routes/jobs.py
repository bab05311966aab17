"""The job route: an ingestion job's state and per-file progress, for its own tenant."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from sovrag.serve.context import ServerContext, get_ctx
from sovrag.serve.routes.auth import Tenant

router = APIRouter(prefix="/v1", tags=["jobs"])


@router.get("/jobs/{job_id}")
def get_job(job_id: str, me: Tenant, ctx: Annotated[ServerContext, Depends(get_ctx)]) -> dict[str, Any]:
    return ctx.jobs.get(me.tenant_id, job_id)
