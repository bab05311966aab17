"""Tenants, API keys (stored as sha256 hashes, shown once, revocable), per-key rate limits, admin routes.

A tenant key (`sk-sovrag-...`) authorises the /v1 routes for its tenant only; the admin key from
SOVRAG_ADMIN_KEY authorises /admin. Keys are looked up by hash, so the database never holds a usable key.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field, StrictInt, StrictStr

from sovrag.serve.context import ServerContext, get_ctx
from sovrag.serve.db import Database, now
from sovrag.serve.errors import APIError

KEY_PREFIX = "sk-sovrag-"


@dataclass(frozen=True)
class Principal:
    tenant_id: int
    key_id: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create_tenant(self, name: str) -> dict[str, Any]:
        try:  # the UNIQUE constraint decides: two concurrent creates of one name get 201 and 409, never a 500
            tid = self.db.run("INSERT INTO tenants(name, created) VALUES (?, ?)", (name, now()))
        except sqlite3.IntegrityError as e:
            raise APIError(409, f"tenant {name!r}: already exists", code="tenant_exists", param="name") from e
        return self.tenant(tid)

    def tenant(self, tenant_id: int) -> dict[str, Any]:
        row = self.db.one("SELECT id, name, created FROM tenants WHERE id = ?", (tenant_id,))
        if row is None:
            raise APIError(404, f"tenant {tenant_id}: not found", code="tenant_not_found")
        return row

    def tenants(self) -> list[dict[str, Any]]:
        return self.db.all(
            "SELECT t.id, t.name, t.created, COUNT(k.id) AS active_keys FROM tenants t LEFT JOIN api_keys k "
            "ON k.tenant_id = t.id AND k.revoked IS NULL GROUP BY t.id ORDER BY t.id")

    def create_key(self, tenant_id: int, name: str = "", rate_limit_rpm: int | None = None) -> dict[str, Any]:
        """A new key; the plaintext is in the result and nowhere else, ever."""
        self.tenant(tenant_id)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = "key_" + secrets.token_hex(8)
        self.db.run(
            "INSERT INTO api_keys(id, tenant_id, key_hash, prefix, name, rate_limit_rpm, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key_id, tenant_id, hash_key(key), key[: len(KEY_PREFIX) + 4], name, rate_limit_rpm, now()))
        return {"id": key_id, "tenant_id": tenant_id, "name": name, "key": key, "rate_limit_rpm": rate_limit_rpm}

    def revoke(self, key_id: str) -> None:
        if not self.db.run("UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked IS NULL", (now(), key_id)):
            raise APIError(404, f"api key {key_id!r}: not found or already revoked", code="key_not_found")

    def lookup(self, key: str) -> dict[str, Any] | None:
        return self.db.one(
            "SELECT id, tenant_id, rate_limit_rpm, revoked FROM api_keys WHERE key_hash = ?", (hash_key(key),))


class RateLimiter:
    """Token buckets per key: requests a minute, work (embedder tokens) a minute, failed sign-ins per client.

    Each bucket refills continuously at its per-minute rate and holds at most one minute's worth, so bursts
    up to the limit pass and a sustained rate above it waits."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _level(self, bucket: str, per_minute: int, t: float) -> float:
        tokens, last = self._buckets.get(bucket, (float(per_minute), t))
        return min(float(per_minute), tokens + (t - last) * per_minute / 60.0)

    def take(self, key_id: str, rpm: int, amount: float = 1.0, kind: str = "requests") -> float:
        """0 when `amount` may be spent now (it is then spent), else the seconds until it may.

        An amount larger than the whole bucket passes when the bucket is full and leaves it in debt, so
        a request bigger than a minute's allowance is slow, not impossible."""
        t = time.monotonic()
        bucket = f"{kind}:{key_id}"
        with self._lock:
            tokens = self._level(bucket, rpm, t)
            need = min(amount, float(rpm))
            if tokens >= need:
                self._buckets[bucket] = (tokens - amount, t)
                return 0.0
            self._buckets[bucket] = (tokens, t)
            return (need - tokens) * 60.0 / rpm

    def blocked(self, key_id: str, per_minute: int, kind: str) -> float:
        """Seconds until the bucket holds one token again (0 = not blocked), without spending any."""
        t = time.monotonic()
        bucket = f"{kind}:{key_id}"
        with self._lock:
            tokens = self._level(bucket, per_minute, t)
            return 0.0 if tokens >= 1.0 else (1.0 - tokens) * 60.0 / per_minute


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


def require_tenant(request: Request, ctx: Annotated[ServerContext, Depends(get_ctx)]) -> Principal:
    _check_not_throttled(request, ctx)
    try:
        key = _bearer(request)
    except APIError as e:
        raise _failed(request, ctx, e) from None
    if hmac.compare_digest(key.encode(), ctx.options.admin_key.encode()):
        raise APIError(403, "the admin key cannot call tenant routes; create a tenant key with "
                       "POST /admin/tenants/{id}/keys", code="admin_key_not_allowed")
    row = ctx.keys.lookup(key)
    if row is None:
        raise _failed(request, ctx, APIError(401, f"incorrect API key provided: {_shown(key)}",
                                             code="invalid_api_key"))
    if row["revoked"] is not None:
        raise _failed(request, ctx, APIError(401, f"API key {row['id']} has been revoked", code="revoked_api_key"))
    rpm = int(row["rate_limit_rpm"] or ctx.options.rate_limit_rpm)
    wait = ctx.limiter.take(row["id"], rpm)
    if wait > 0:
        raise APIError(429, f"rate limit reached for key {row['id']}: {rpm} requests per minute; retry in "
                       f"{wait:.1f} s", code="rate_limit_exceeded", headers={"Retry-After": str(math.ceil(wait))})
    principal = Principal(int(row["tenant_id"]), str(row["id"]))
    request.scope.setdefault("state", {})["tenant_id"] = principal.tenant_id
    return principal


def require_admin(request: Request, ctx: Annotated[ServerContext, Depends(get_ctx)]) -> None:
    _check_not_throttled(request, ctx)
    try:
        key = _bearer(request)
    except APIError as e:
        raise _failed(request, ctx, e) from None
    if not hmac.compare_digest(key.encode(), ctx.options.admin_key.encode()):
        if ctx.keys.lookup(key) is not None:
            raise APIError(403, "admin routes need the admin key (SOVRAG_ADMIN_KEY), not a tenant key",
                           code="admin_only")
        raise _failed(request, ctx, APIError(401, f"incorrect admin key provided: {_shown(key)}",
                                             code="invalid_api_key"))


def require_metrics(request: Request, ctx: Annotated[ServerContext, Depends(get_ctx)]) -> None:
    """Prometheus scrapes with the metrics key (SOVRAG_SERVE_METRICS_KEY) or the admin key; tenants cannot."""
    _check_not_throttled(request, ctx)
    try:
        key = _bearer(request)
    except APIError as e:
        raise _failed(request, ctx, e) from None
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
    name: StrictStr = Field(default="", max_length=128)
    rate_limit_rpm: StrictInt | None = Field(default=None, ge=1, le=1_000_000)


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
    return ctx.keys.create_key(tenant_id, body.name, body.rate_limit_rpm)


@admin_router.delete("/keys/{key_id}")
def revoke_key(key_id: str, ctx: Annotated[ServerContext, Depends(get_ctx)]) -> dict[str, Any]:
    ctx.keys.revoke(key_id)
    return {"id": key_id, "revoked": True}
