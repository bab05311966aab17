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
    """A token bucket per key: `rpm` requests a minute on average, bursts up to `rpm`."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key_id: str, rpm: int) -> float:
        """0 when the request may go ahead, else the seconds until it may."""
        rate = rpm / 60.0
        t = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (float(rpm), t))
            tokens = min(float(rpm), tokens + (t - last) * rate)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, t)
                return 0.0
            self._buckets[key_id] = (tokens, t)
            return (1.0 - tokens) / rate


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
    key = _bearer(request)
    if hmac.compare_digest(key.encode(), ctx.options.admin_key.encode()):
        raise APIError(403, "the admin key cannot call tenant routes; create a tenant key with "
                       "POST /admin/tenants/{id}/keys", code="admin_key_not_allowed")
    row = ctx.keys.lookup(key)
    if row is None:
        raise APIError(401, f"incorrect API key provided: {_shown(key)}", code="invalid_api_key")
    if row["revoked"] is not None:
        raise APIError(401, f"API key {row['id']} has been revoked", code="revoked_api_key")
    rpm = int(row["rate_limit_rpm"] or ctx.options.rate_limit_rpm)
    wait = ctx.limiter.take(row["id"], rpm)
    if wait > 0:
        raise APIError(429, f"rate limit reached for key {row['id']}: {rpm} requests per minute; retry in "
                       f"{wait:.1f} s", code="rate_limit_exceeded", headers={"Retry-After": str(math.ceil(wait))})
    principal = Principal(int(row["tenant_id"]), str(row["id"]))
    request.scope.setdefault("state", {})["tenant_id"] = principal.tenant_id
    return principal


def require_admin(request: Request, ctx: Annotated[ServerContext, Depends(get_ctx)]) -> None:
    key = _bearer(request)
    if not hmac.compare_digest(key.encode(), ctx.options.admin_key.encode()):
        if ctx.keys.lookup(key) is not None:
            raise APIError(403, "admin routes need the admin key (SOVRAG_ADMIN_KEY), not a tenant key",
                           code="admin_only")
        raise APIError(401, f"incorrect admin key provided: {_shown(key)}", code="invalid_api_key")


def require_metrics(request: Request, ctx: Annotated[ServerContext, Depends(get_ctx)]) -> None:
    """Prometheus scrapes with the metrics key (SOVRAG_SERVE_METRICS_KEY) or the admin key; tenants cannot."""
    key = _bearer(request)
    allowed = [k for k in (ctx.options.metrics_key, ctx.options.admin_key) if k]
    if not any(hmac.compare_digest(key.encode(), k.encode()) for k in allowed):
        raise APIError(401, f"/metrics needs the metrics key (SOVRAG_SERVE_METRICS_KEY) or the admin key, got "
                       f"{_shown(key)}", code="invalid_api_key")


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
