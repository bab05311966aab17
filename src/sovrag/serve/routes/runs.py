"""Saved `sovrag eval` / `sovrag bench` runs, as a tenant sees them: its own collections' runs only.

Runs live under `<data dir>/reports/<run id>/` (see sovrag.reports) and name the collection by its store
name (`t<tenant id>--<name>`); a tenant is shown the runs on its own collections, with the user-facing
name. Anything else, including a malformed id, is simply not found.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from sovrag import reports
from sovrag.serve.apierror import APIError
from sovrag.serve.context import ServerContext, get_ctx
from sovrag.serve.routes.auth import Tenant

router = APIRouter(prefix="/v1", tags=["reports"])
Ctx = Annotated[ServerContext, Depends(get_ctx)]

#: The report is data, not part of the app: no scripts, no same-origin access, even if opened directly.
REPORT_CSP = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _store_names(ctx: ServerContext, tenant_id: int) -> dict[str, str]:
    """The tenant's collections: store name -> user-facing name."""
    prefix = ctx.collections.prefix(tenant_id)
    return {prefix + n: n for n in ctx.collections.names(tenant_id)}


def _view(summary: reports.RunSummary, name: str) -> dict[str, Any]:
    return {"object": "report", **summary.to_dict(), "collection": name}


def _find(ctx: ServerContext, tenant_id: int, run_id: str) -> tuple[reports.RunSummary, str]:
    missing = APIError(404, f"report {run_id!r}: not found", code="report_not_found")
    if not reports.is_run_id(run_id):
        raise missing
    summary = reports.load_summary(reports.reports_dir(ctx.settings.data_dir) / run_id)
    names = _store_names(ctx, tenant_id)
    if summary is None or summary.id != run_id or summary.collection not in names:
        raise missing
    return summary, names[summary.collection]


@router.get("/reports")
async def list_reports(me: Tenant, ctx: Ctx) -> dict[str, Any]:
    """Finished eval and bench runs on the caller's collections, newest first."""
    def run() -> list[dict[str, Any]]:
        names = _store_names(ctx, me.tenant_id)
        return [_view(s, names[s.collection]) for s in reports.list_runs(ctx.settings.data_dir, set(names))]

    return {"object": "list", "data": await anyio.to_thread.run_sync(run)}


@router.get("/reports/{run_id}")
async def get_report(run_id: str, me: Tenant, ctx: Ctx) -> dict[str, Any]:
    summary, name = await anyio.to_thread.run_sync(_find, ctx, me.tenant_id, run_id)
    return _view(summary, name)


@router.get("/reports/{run_id}/report.html", response_class=HTMLResponse)
async def get_report_html(run_id: str, me: Tenant, ctx: Ctx) -> HTMLResponse:
    """The run's self-contained HTML report (send the key in the Authorization header)."""
    def read() -> str:
        _find(ctx, me.tenant_id, run_id)
        path = reports.reports_dir(ctx.settings.data_dir) / run_id / "report.html"
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise APIError(404, f"report {run_id!r}: the run has no HTML report", code="report_not_found") from e

    html = await anyio.to_thread.run_sync(read)
    return HTMLResponse(html, headers={"Content-Security-Policy": REPORT_CSP, "X-Content-Type-Options": "nosniff",
                                       "Cache-Control": "no-store"})
