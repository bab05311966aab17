"""Who may call: the bearer-key dependencies of every route (tenant, admin, metrics), failed sign-ins
throttled per client address, per-key request limits; and the admin routes for tenants and keys."""

from __future__ import annotations

import hmac
import math
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from sovrag.serve.apierror import APIError
from sovrag.serve.context import ServerContext, get_ctx
from sovrag.serve.services.keys import Principal


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _check_not_throttled(request: Request, ctx: ServerContext) -> None:
    wait = ctx.limiter.blocked(_client(request), ctx.options.auth_failures_per_minute, kind="auth-failures")
    if wait > 0:
        raise APIError(429, f"too many failed sign-ins from {_client(request)}: "
                       f"{ctx.options.auth_failures_per_minute} a minute (auth_failures_per_minute); retry in "
                       f"{wait:.1f} s", code="too_many_failed_sign_ins", headers={"Retry-After": str(math.ceil(wait))})


def _failed(request: Request, ctx: ServerContext, error: APIError) -> APIError:
    """Count a failed sign-in against the client's address, and hand the error back to raise."""
    ctx.limiter.take(_client(request), ctx.options.auth_failures_per_minute, kind="auth-failures")
    return error


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise APIError(401, "missing API key: send 'Authorization: Bearer <key>'", code="missing_api_key")
    if scheme.lower() != "bearer" or not token.strip():
        raise APIError(401, "malformed Authorization header: expected 'Bearer <key>'", code="invalid_api_key")
    return token.strip()


def _shown(key: str) -> str:
    return key[:12] + "…" if len(key) > 12 else "…"


def _presented_key(request: Request, ctx: ServerContext) -> str:
    """The bearer key of a client not throttled for failed sign-ins; a malformed header counts as one."""
    _check_not_throttled(request, ctx)
    try:
        return _bearer(request)
    except APIError as e:
        raise _failed(request, ctx, e) from None


def require_tenant(request: Request, ctx: Annotated[ServerContext, Depends(get_ctx)]) -> Principal:
    key = _presented_key(request, ctx)
    if hmac.compare_digest(key.encode(), ctx.options.admin_key.encode()):
        raise APIError(403, "the admin key cannot call tenant routes; create a tenant key with "
                       "POST /admin/tenants/{id}/keys", code="admin_key_not_allowed")
    row = ctx.keys.lookup(key)
    if row is None:
        raise _failed(request, ctx, APIError(401, f"incorrect API key provided: {_shown(key)}",
                                             code="invalid_api_key"))
    if row["revoked"] is not None:
        raise _failed(request, ctx, APIError(401, f"API key {row['id']} has been revoked", code="revoked_api_key"))
    if row["expires"] is not None and row["expires"] <= time.time():
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row["expires"]))
        raise _failed(request, ctx, APIError(401, f"API key {row['id']} expired at {when}; ask an admin for a new one",
                                             code="expired_api_key"))
    rpm = int(row["rate_limit_rpm"] or ctx.options.rate_limit_rpm)
    wait = ctx.limiter.take(row["id"], rpm)
    if wait > 0:
        raise APIError(429, f"rate limit reached for key {row['id']}: {rpm} requests per minute; retry in "
                       f"{wait:.1f} s", code="rate_limit_exceeded", headers={"Retry-After": str(math.ceil(wait))})
    principal = Principal(int(row["tenant_id"]), str(row["id"]))
    request.scope.setdefault("state", {})["tenant_id"] = principal.tenant_id
    return principal


def require_admin(request: Request, ctx: Annotated[ServerContext, Depends(get_ctx)]) -> None:
    key = _presented_key(request, ctx)
    if not hmac.compare_digest(key.encode(), ctx.options.admin_key.encode()):
        if ctx.keys.lookup(key) is not None:
            raise APIError(403, "admin routes need the admin key (SOVRAG_ADMIN_KEY), not a tenant key",
                           code="admin_only")
        raise _failed(request, ctx, APIError(401, f"incorrect admin key provided: {_shown(key)}",
                                             code="invalid_api_key"))


def require_metrics(request: Request, ctx: Annotated[ServerContext, Depends(get_ctx)]) -> None:
    """Prometheus scrapes with the metrics key (SOVRAG_SERVE_METRICS_KEY) or the admin key; tenants cannot."""
    key = _presented_key(request, ctx)
    allowed = [k for k in (ctx.options.metrics_key, ctx.options.admin_key) if k]
    if not any(hmac.compare_digest(key.encode(), k.encode()) for k in allowed):
        raise _failed(request, ctx, APIError(
            401, f"/metrics needs the metrics key (SOVRAG_SERVE_METRICS_KEY) or the admin key, got {_shown(key)}",
            code="invalid_api_key"))


Tenant = Annotated[Principal, Depends(require_tenant)]


# ------------------------------------------------------------------ admin routes
class TenantIn(BaseModel):
    name: StrictStr = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@ -]*$")


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: StrictStr = Field(default="", max_length=128)
    rate_limit_rpm: StrictInt | None = Field(default=None, ge=1, le=1_000_000)
    #: When the key stops working: unix seconds, or a number of days from now (not both). Default: never.
    expires_at: StrictFloat | StrictInt | None = Field(default=None, allow_inf_nan=False, gt=0, lt=1e11)
    expires_in_days: StrictFloat | StrictInt | None = Field(default=None, gt=0, le=36_500)

    def expires(self) -> float | None:
        if self.expires_at is not None and self.expires_in_days is not None:
            raise APIError(400, "expires_at and expires_in_days: give one of them", code="invalid_request",
                           param="expires_in_days")
        if self.expires_in_days is not None:
            return time.time() + float(self.expires_in_days) * 86400
        return float(self.expires_at) if self.expires_at is not None else None


admin_router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


@admin_router.post("/tenants", status_code=201)
def create_tenant(body: TenantIn, ctx: Annotated[ServerContext, Depends(get_ctx)]) -> dict[str, Any]:
    return ctx.keys.create_tenant(body.name)


@admin_router.get("/tenants")
def list_tenants(ctx: Annotated[ServerContext, Depends(get_ctx)]) -> dict[str, Any]:
    return {"object": "list", "data": ctx.keys.tenants()}


@admin_router.post("/tenants/{tenant_id}/keys", status_code=201)
def create_key(tenant_id: int, ctx: Annotated[ServerContext, Depends(get_ctx)],
               body: KeyIn | None = None) -> dict[str, Any]:
    """The key is in this response only; store it now."""
    body = body or KeyIn()
    return ctx.keys.create_key(tenant_id, body.name, body.rate_limit_rpm, body.expires())


@admin_router.get("/tenants/{tenant_id}/keys")
def list_keys(tenant_id: int, ctx: Annotated[ServerContext, Depends(get_ctx)]) -> dict[str, Any]:
    """The tenant's keys (active, expired and revoked) with their ids, names and first characters: how a lost
    key is found and revoked. The keys themselves are never stored."""
    return {"object": "list", "data": ctx.keys.keys(tenant_id)}


@admin_router.delete("/tenants/{tenant_id}")
def delete_tenant(tenant_id: int, ctx: Annotated[ServerContext, Depends(get_ctx)],
                  confirm: str = "") -> dict[str, Any]:
    """Delete a tenant with all its collections, uploaded files and keys. `?confirm=<the tenant's name>` is
    required: this cannot be undone."""
    tenant = ctx.keys.tenant(tenant_id)
    if confirm != tenant["name"]:
        raise APIError(400, f"tenant {tenant_id}: deleting it removes its collections, files and keys for good; "
                       f"repeat its name to confirm (?confirm={tenant['name']})", code="confirmation_required",
                       param="confirm")
    names = ctx.collections.names(tenant_id)
    busy = [n for n in names if ctx.jobs.active(tenant_id, n)]
    if busy:
        raise APIError(409, f"tenant {tenant_id}: ingestion jobs are queued or running on {busy}; delete it when "
                       "they are done", code="tenant_busy")
    ctx.keys.revoke_all(tenant_id)  # first: nothing new can be created while its collections go
    for name in ctx.collections.names(tenant_id):
        ctx.collections.drop(tenant_id, name)  # a collection still in use after 30 s: 409, retry the delete
        ctx.files.delete_collection(tenant_id, name)
        ctx.feedback.delete_collection(tenant_id, name)
    ctx.feedback.delete_tenant(tenant_id)
    ctx.jobs.forget_tenant(tenant_id)
    ctx.keys.delete_tenant(tenant_id)
    return {"object": "tenant.deleted", "id": tenant_id, "name": tenant["name"], "deleted": True,
            "collections": names}


@admin_router.delete("/keys/{key_id}")
def revoke_key(key_id: str, ctx: Annotated[ServerContext, Depends(get_ctx)]) -> dict[str, Any]:
    ctx.keys.revoke(key_id)
    return {"id": key_id, "revoked": True}
